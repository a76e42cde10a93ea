// bgp-announce configuration: [speaker], [[peer]], [[group]] tables of a TOML file.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "bgp/session.hpp"
#include "commands.hpp"

namespace bgp_announce {

struct HealthCheck {
    enum class Kind { command, tcp, http } kind = Kind::command;
    std::string command;        // run with /bin/sh -c; exit 0 = healthy
    net::Endpoint target;       // tcp / http
    std::string http_path = "/";
    std::string http_host;
    int expect_status = 200;
    double interval_s = 2;
    double timeout_s = 1;
    int rise = 2;
    int fall = 2;
    enum class OnFailure { withdraw, med, prepend } on_failure = OnFailure::withdraw;
    uint32_t failure_med = 1000;
    int failure_prepend = 3;
};

struct Group {
    std::string name;
    std::vector<net::Prefix> prefixes;
    std::vector<bgp::FlowSpec> flows;
    RouteAttrs attrs;
    std::optional<HealthCheck> health;
};

struct Peer {
    bgp::PeerConfig bgp;
    std::optional<net::IpAddr> next_hop_self;   // IPv4 "self" instead of the session's local address
    std::optional<net::IpAddr> next_hop_self6;  // IPv6 "self" (default: local v6 address, or v4-mapped)
};

struct Config {
    std::string path;
    uint32_t local_as = 0;
    uint32_t router_id = 0;
    std::vector<net::Endpoint> listen;
    std::optional<uint16_t> graceful_restart;
    std::string control_socket;
    std::optional<net::Endpoint> metrics;
    std::string shutdown_message = "bgp-announce shutting down";
    std::vector<Peer> peers;
    std::vector<Group> groups;
};

// Throws edge::UsageError "FILE:LINE: why" on any problem.
Config load_config(const std::string& path);

}  // namespace bgp_announce
