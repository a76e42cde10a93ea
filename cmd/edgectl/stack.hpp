// The edgectl stack file: one TOML description of the whole edge (anycast prefixes,
// VIPs, PoPs with their BGP peers and backends, guard, cache and Maglev settings).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/toml.hpp"
#include "net/addr.hpp"

namespace edgectl {

struct Service {
    uint16_t port = 0;
    std::string proto;  // "tcp" | "udp"
};

struct Vip {
    edge::net::IpAddr address;
    std::vector<Service> services;
};

struct Backend {
    edge::net::IpAddr address;
    uint32_t weight = 1;  // 0 = drained
};

struct Peer {
    std::string name;
    edge::net::IpAddr address;
    uint32_t remote_as = 0;
    std::optional<edge::net::IpAddr> local_address;
    std::optional<edge::net::IpAddr> next_hop6;  // IPv6 next hop: carries IPv6 prefixes over an IPv4 session
    bool passive = false;
    bool carries_v4() const { return address.is_v4(); }
    bool carries_v6() const { return address.is_v6() || next_hop6.has_value(); }
};

struct Pop {
    std::string name;
    uint32_t asn = 0;
    edge::net::IpAddr router_id;
    std::string health;  // http://..., tcp:ADDR:PORT, or a shell command; empty = none
    std::optional<uint32_t> med;  // MULTI_EXIT_DISC on this PoP's announcements (none: no MED)
    int prepend = 0;               // extra copies of the PoP's AS on its AS path (0..32)
    std::vector<Peer> peers;
    std::vector<Backend> backends;
};

struct Stack {
    std::string path;  // where it came from (for messages)
    std::string name = "edge";
    std::vector<edge::net::Prefix> prefixes;
    std::vector<Vip> vips;
    // maglev
    uint32_t table_size = 65537;
    std::string hash_key = "000102030405060708090a0b0c0d0e0f";
    // lb
    uint32_t conntrack_size = 262144;
    std::string encap_source_v4 = "172.16.0.0/16";
    std::string encap_source_v6 = "fd00:e:1b::/96";
    // bgp
    uint32_t hold_time = 90;
    std::vector<std::string> communities;
    double health_interval = 2;
    int health_rise = 2, health_fall = 3;
    // guard
    std::string urpf = "loose";
    uint64_t src_pps = 2000;
    double factor = 4, floor_syn_pps = 1000;
    uint64_t syn_pps = 0, flood_syn_pps = 0;
    std::string cookie = "auto";
    std::vector<std::string> allow, deny;
    // cache
    std::string origin;
    uint16_t cache_port = 80;
    std::string admin;
    std::string cache_size = "512M", max_object_size = "64M";
    uint32_t threads = 0;
    bool proxy_protocol = false;

    std::vector<Pop> pops;
};

// Loads and checks a stack file ("" = the built-in examples/edge.toml, "-" = stdin).
// Throws edge::UsageError "FILE:LINE: key: why" on the first problem.
Stack load_stack(const std::string& path);
Stack parse_stack(const edge::config::Document& doc);

// The display name of where the stack came from.
std::string stack_name(const std::string& path);

}  // namespace edgectl
