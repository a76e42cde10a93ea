// xdp-lb's control-plane core: the lb.toml model, and the code that turns it into
// the BPF maps of bpf/xdp_lb.bpf.c (layout in bpf/include/edge/lb.h).
// Header-only so the BPF fixture tests (tests/bpf/test_xdp_lb.cpp) fill the maps with
// exactly the code the tool runs.
#pragma once
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bpf/maps.hpp"
#include "bpf/prog.hpp"
#include "cli/tool.hpp"
#include "cli/error.hpp"
#include "config/toml.hpp"
#include "edge/lb.h"
#include "hash/flow_hash.hpp"
#include "maglev/maglev.hpp"
#include "net/addr.hpp"
#include "net/flow.hpp"

namespace xlb {

using edge::net::IpAddr;
using edge::net::Prefix;
using Mac = std::array<uint8_t, 6>;

struct BackendCfg {
    IpAddr addr;
    uint32_t weight = 1;  // 0 = drained: no new flows, established flows stay
    std::optional<Mac> mac;
    std::optional<uint32_t> server_id;  // QUIC server id; default: backend id + 1
    std::string interface;              // backend behind another interface: devmap redirect
};

struct ServiceCfg {
    IpAddr vip;
    uint16_t port = 0;
    uint8_t proto = 6;
    bool quic = false;
    bool daisy_chain = false;  // daisy chaining: mid-flow packets carry the slot's previous backend (GUE)
    std::vector<BackendCfg> backends;
    std::string name() const {
        return fmt::format("{}:{}/{}", vip.is_v6() ? "[" + vip.to_string() + "]" : vip.to_string(), port,
                           edge::net::proto_to_string(proto));
    }
};

struct LbConfig {
    uint32_t table_size = edge::maglev::default_size;
    edge::hash::Key hash_key;
    uint32_t conntrack_size = 262144;
    uint32_t max_services = XLB_MAX_SERVICES_DEFAULT;
    Prefix encap_source_v4 = Prefix::parse("172.16.0.0/16").value();
    Prefix encap_source_v6 = Prefix::parse("fd00:e:1b::/96").value();
    std::optional<Mac> next_hop_mac;
    uint8_t quic_server_id_bytes = 2;
    uint8_t quic_config_id = 0;
    std::vector<ServiceCfg> services;
};

inline std::optional<Mac> parse_mac(std::string_view s) {
    Mac m{};
    if (s.size() != 17) return std::nullopt;
    for (int i = 0; i < 6; i++) {
        auto hex = [](char c) -> int {
            if (c >= '0' && c <= '9') return c - '0';
            if (c >= 'a' && c <= 'f') return c - 'a' + 10;
            if (c >= 'A' && c <= 'F') return c - 'A' + 10;
            return -1;
        };
        int h = hex(s[i * 3]), l = hex(s[i * 3 + 1]);
        if (h < 0 || l < 0 || (i < 5 && s[i * 3 + 2] != ':')) return std::nullopt;
        m[i] = static_cast<uint8_t>(h * 16 + l);
    }
    return m;
}

inline std::string format_mac(const Mac& m) {
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5]);
}

// "ADDR" or "ADDR=WEIGHT" (the shorthand in `backends = [...]`).
inline BackendCfg parse_backend_text(const edge::config::Table& t, std::string_view key, const std::string& s) {
    BackendCfg b;
    std::string a = s;
    if (auto eq = s.rfind('='); eq != std::string::npos) {
        a = s.substr(0, eq);
        std::string w = s.substr(eq + 1);
        char* end = nullptr;
        errno = 0;
        unsigned long v = std::strtoul(w.c_str(), &end, 10);
        if (w.empty() || *end || errno || v > 1000000)
            t.fail(key, fmt::format("bad weight in '{}': expected ADDR=WEIGHT with WEIGHT 0..1000000", s));
        b.weight = static_cast<uint32_t>(v);
    }
    auto ip = IpAddr::parse(a);
    if (!ip) t.fail(key, fmt::format("bad backend address '{}': {}", a, ip.error()));
    b.addr = *ip;
    return b;
}

// Reads [lb] and [[service]] from a document. Errors name FILE:LINE and the key.
inline LbConfig parse_config(const edge::config::Document& doc) {
    using edge::config::Table;
    LbConfig c;
    Table root(doc);
    if (auto lb = root.table("lb")) {
        lb->only({"table_size", "hash_key", "conntrack_size", "max_services", "encap_source_v4", "encap_source_v6",
                  "next_hop_mac", "quic_server_id_bytes", "quic_config_id"});
        if (auto m = lb->integer("table_size", edge::maglev::min_size, edge::maglev::max_size)) {
            if (!edge::maglev::is_prime(static_cast<uint64_t>(*m))) {
                auto [lo, hi] = edge::maglev::nearest_primes(static_cast<uint64_t>(*m));
                lb->fail("table_size", fmt::format("{} is not prime (nearest primes: {} and {})", *m, lo, hi));
            }
            c.table_size = static_cast<uint32_t>(*m);
        }
        if (auto k = lb->str("hash_key")) {
            auto key = edge::hash::parse_key(*k);
            if (!key) lb->fail("hash_key", "expected 32 hex digits (the same key as maglev-calc --hash-key)");
            c.hash_key = *key;
        }
        if (auto v = lb->integer("conntrack_size", 1024, 1 << 26)) c.conntrack_size = static_cast<uint32_t>(*v);
        if (auto v = lb->integer("max_services", 1, 4096)) c.max_services = static_cast<uint32_t>(*v);
        if (auto s = lb->str("encap_source_v4")) {
            auto p = Prefix::parse(*s);
            if (!p || !p->addr().is_v4()) lb->fail("encap_source_v4", "expected an IPv4 prefix such as 172.16.0.0/16");
            c.encap_source_v4 = *p;
        }
        if (auto s = lb->str("encap_source_v6")) {
            auto p = Prefix::parse(*s);
            if (!p || !p->addr().is_v6() || p->length() < 96)
                lb->fail("encap_source_v6", "expected an IPv6 prefix of length 96..128 such as fd00:e:1b::/96");
            c.encap_source_v6 = *p;
        }
        if (auto s = lb->str("next_hop_mac")) {
            c.next_hop_mac = parse_mac(*s);
            if (!c.next_hop_mac) lb->fail("next_hop_mac", "expected a MAC address such as 02:00:00:00:00:01");
        }
        if (auto v = lb->integer("quic_server_id_bytes", 0, 4)) c.quic_server_id_bytes = static_cast<uint8_t>(*v);
        if (auto v = lb->integer("quic_config_id", 0, 6)) c.quic_config_id = static_cast<uint8_t>(*v);
    }
    std::set<std::tuple<IpAddr, uint16_t, uint8_t>> seen;
    std::map<uint32_t, IpAddr> sids;
    for (auto& st : root.tables("service")) {
        st.only({"vip", "port", "proto", "quic", "daisy_chain", "backends", "backend"});
        ServiceCfg s;
        auto vip = st.str("vip");
        if (!vip) st.fail("vip", "missing: every [[service]] needs vip = \"ADDR\"");
        auto ip = IpAddr::parse(*vip);
        if (!ip) st.fail("vip", fmt::format("bad address '{}': {}", *vip, ip.error()));
        s.vip = *ip;
        auto port = st.integer("port", 1, 65535);
        if (!port) st.fail("port", "missing: every [[service]] needs port = 1..65535");
        s.port = static_cast<uint16_t>(*port);
        std::string proto = st.str("proto").value_or("tcp");
        if (proto == "tcp") s.proto = 6;
        else if (proto == "udp") s.proto = 17;
        else st.fail("proto", fmt::format("'{}': expected \"tcp\" or \"udp\"", proto));
        s.quic = st.boolean("quic").value_or(false);
        if (s.quic && s.proto != 17) st.fail("quic", "QUIC services are UDP: set proto = \"udp\"");
        s.daisy_chain = st.boolean("daisy_chain").value_or(false);
        if (s.daisy_chain && s.proto != 6)
            st.fail("daisy_chain", "daisy chaining follows TCP connections: set proto = \"tcp\" or drop daisy_chain");
        for (auto& b : st.strings("backends")) s.backends.push_back(parse_backend_text(st, "backends", b));
        for (auto& bt : st.tables("backend")) {
            bt.only({"address", "weight", "mac", "server_id", "interface"});
            auto a = bt.str("address");
            if (!a) bt.fail("address", "missing: every [[service.backend]] needs address = \"ADDR\"");
            BackendCfg b = parse_backend_text(bt, "address", *a);
            if (auto w = bt.integer("weight", 0, 1000000)) b.weight = static_cast<uint32_t>(*w);
            if (auto m = bt.str("mac")) {
                b.mac = parse_mac(*m);
                if (!b.mac) bt.fail("mac", "expected a MAC address such as 02:00:00:00:00:01");
            }
            if (auto v = bt.integer("server_id", 1, 0xffffffff)) {
                uint64_t lim = c.quic_server_id_bytes >= 4 ? (1ull << 32) : (1ull << (8 * c.quic_server_id_bytes));
                if (static_cast<uint64_t>(*v) >= lim)
                    bt.fail("server_id", fmt::format("{} does not fit in quic_server_id_bytes = {}", *v,
                                                     c.quic_server_id_bytes));
                auto [it, fresh] = sids.emplace(static_cast<uint32_t>(*v), b.addr);
                if (!fresh && it->second != b.addr)
                    bt.fail("server_id", fmt::format("{} is already the server id of {}", *v, it->second.to_string()));
                b.server_id = static_cast<uint32_t>(*v);
            }
            if (auto i = bt.str("interface")) {
                if (i->empty() || i->size() >= 16) bt.fail("interface", "expected an interface name such as eth1");
                if (!b.mac && !c.next_hop_mac)
                    bt.fail("interface", "a backend behind another interface needs mac = \"...\" (or [lb] next_hop_mac)");
                b.interface = *i;
            }
            s.backends.push_back(b);
        }
        std::set<IpAddr> addrs;
        for (auto& b : s.backends)
            if (!addrs.insert(b.addr).second)
                st.fail("backends", fmt::format("backend {} is listed twice", b.addr.to_string()));
        if (s.backends.empty()) st.fail("backends", "a service needs at least one backend");
        if (!seen.emplace(s.vip, s.port, s.proto).second)
            st.fail("vip", fmt::format("service {} is defined twice (overlapping VIPs)", s.name()));
        c.services.push_back(std::move(s));
    }
    if (c.services.size() > c.max_services)
        edge::usage_error("{}: {} services, more than max_services = {}", doc.path, c.services.size(), c.max_services);
    return c;
}

// The configuration as lb.toml text that parse_config reads back to the same
// LbConfig: how `xdp-lb load` keeps the running configuration beside the maps, and
// what `service`/`backend` edit.
inline std::string toml_str(const std::string& s) { return "\"" + s + "\""; }
inline std::string render_config(const LbConfig& c) {
    std::string o = "[lb]\n";
    o += fmt::format("table_size = {}\nhash_key = {}\nconntrack_size = {}\nmax_services = {}\n", c.table_size,
                     toml_str(edge::hash::format_key(c.hash_key)), c.conntrack_size, c.max_services);
    o += fmt::format("encap_source_v4 = {}\nencap_source_v6 = {}\n", toml_str(c.encap_source_v4.to_string()),
                     toml_str(c.encap_source_v6.to_string()));
    if (c.next_hop_mac) o += fmt::format("next_hop_mac = {}\n", toml_str(format_mac(*c.next_hop_mac)));
    o += fmt::format("quic_server_id_bytes = {}\nquic_config_id = {}\n", c.quic_server_id_bytes, c.quic_config_id);
    for (auto& s : c.services) {
        o += fmt::format("\n[[service]]\nvip = {}\nport = {}\nproto = {}\n", toml_str(s.vip.to_string()), s.port,
                         toml_str(s.proto == 17 ? "udp" : "tcp"));
        if (s.quic) o += "quic = true\n";
        if (s.daisy_chain) o += "daisy_chain = true\n";
        for (auto& b : s.backends) {
            o += fmt::format("[[service.backend]]\naddress = {}\nweight = {}\n", toml_str(b.addr.to_string()), b.weight);
            if (b.mac) o += fmt::format("mac = {}\n", toml_str(format_mac(*b.mac)));
            if (b.server_id) o += fmt::format("server_id = {}\n", *b.server_id);
            if (!b.interface.empty()) o += fmt::format("interface = {}\n", toml_str(b.interface));
        }
    }
    return o;
}

// The Maglev table of a service: the backends with weight > 0, named by their
// address text, in config order -- exactly what `maglev-calc -b A,B,...` builds.
inline std::vector<edge::maglev::Backend> maglev_backends(const ServiceCfg& s) {
    std::vector<edge::maglev::Backend> v;
    for (auto& b : s.backends)
        if (b.weight > 0) v.push_back({b.addr.to_string(), b.weight});
    return v;
}

inline void fill_addr(uint8_t* out16, const IpAddr& a) {
    std::memset(out16, 0, 16);
    std::memcpy(out16, a.bytes().data(), a.bytes().size());
}

inline xlb_vip_key vip_key(const ServiceCfg& s) {
    xlb_vip_key k{};
    fill_addr(k.addr, s.vip);
    k.port = htons(s.port);
    k.proto = s.proto;
    k.family = static_cast<uint8_t>(s.vip.family());
    return k;
}

inline std::string vip_key_name(const xlb_vip_key& k) {
    ServiceCfg s;
    s.vip = k.family == EDGE_FAMILY_V4 ? *IpAddr::from_bytes({k.addr, 4}) : *IpAddr::from_bytes({k.addr, 16});
    s.port = ntohs(k.port);
    s.proto = k.proto;
    return s.name();
}

inline IpAddr backend_addr(const xlb_backend& b) {
    return b.family == EDGE_FAMILY_V4 ? *IpAddr::from_bytes({b.addr, 4}) : *IpAddr::from_bytes({b.addr, 16});
}

// File descriptors of the maps (from a skeleton or from pins).
struct Maps {
    int services = -1, vips = -1, ring = -1, backends = -1, quic_ids = -1, conntrack = -1, config = -1,
        svc_stats = -1, be_stats = -1, reasons = -1, svc_info = -1, tx_ports = -1, conntrack4 = -1, quic_sid16 = -1;
};

inline constexpr int kNumMaps = 14;
inline const char* const kMapNames[kNumMaps] = {
    "xlb_services", "xlb_vips",     "xlb_ring",       "xlb_backends", "xlb_quic_ids",   "xlb_conntrack",
    "xlb_config",   "xlb_svc_stats", "xlb_be_stats",  "xlb_reasons",  "xlb_svc_info",   "xlb_tx_ports",
    "xlb_conntrack4", "xlb_quic_sid16"};
inline int* map_slot(Maps& m, int i) {
    int* s[] = {&m.services, &m.vips,      &m.ring,     &m.backends, &m.quic_ids, &m.conntrack,  &m.config,
                &m.svc_stats, &m.be_stats, &m.reasons,  &m.svc_info, &m.tx_ports, &m.conntrack4, &m.quic_sid16};
    return s[i];
}

using edge::bpf::check;
using edge::bpf::ncpus;
using edge::bpf::percpu_sum;
using edge::bpf::percpu_zero;

inline const char* reason_name(uint32_t r) {
    static const char* const names[XLB_R_COUNT] = {
        "tx",           "pass_not_ip",    "pass_not_vip",   "pass_truncated", "drop_truncated",
        "drop_fragment", "ip_options",    "drop_no_backend", "drop_encap",    "icmp_too_big",
        "pass_icmp",    "quic_cid",       "quic_cid_unknown", "redirect",       "daisy"};
    return r < XLB_R_COUNT ? names[r] : "?";
}

// Applies a configuration to the maps, first time or on reload. Keeps ids stable:
// a service keeps its id and swaps table halves; a backend keeps its id for its
// address as long as this controller lives (removed backends keep their entry, so
// established flows in the connection table still reach them).
class Controller {
public:
    Controller(Maps m, uint32_t table_size, uint32_t max_services)
        : m_(m), size_(table_size), max_services_(max_services) {}

    struct ServiceState {
        uint32_t id;
        uint32_t half;
    };

    void apply(const LbConfig& c) {
        if (c.table_size != size_)
            edge::usage_error("table_size changed from {} to {}: restart xdp-lb to resize the tables", size_, c.table_size);
        // Global settings.
        xlb_config cfg{};
        cfg.hash_k0 = c.hash_key.k0;
        cfg.hash_k1 = c.hash_key.k1;
        std::memcpy(&cfg.src4, c.encap_source_v4.addr().bytes().data(), 4);
        uint32_t m4 = c.encap_source_v4.length() == 0 ? 0 : 0xffffffffu << (32 - c.encap_source_v4.length());
        cfg.mask4 = htonl(m4);
        std::memcpy(cfg.src6, c.encap_source_v6.addr().bytes().data(), 16);
        int l6 = c.encap_source_v6.length() - 96;
        uint32_t m6 = l6 <= 0 ? 0 : 0xffffffffu << (32 - l6);
        cfg.mask6_low = htonl(m6);
        if (c.next_hop_mac) {
            cfg.flags |= XLB_CFG_NEXT_HOP_MAC;
            std::memcpy(cfg.next_hop_mac, c.next_hop_mac->data(), 6);
        }
        cfg.quic_sid_len = c.quic_server_id_bytes;
        cfg.quic_config_id = c.quic_config_id;
        for (auto& s : c.services) {
            auto k = vip_key(s);
            uint32_t bit = xlb_vip_bit(k.addr, k.port, k.proto);
            cfg.vip_filter[bit / 64] |= 1ull << (bit % 64);
            if (s.quic) cfg.quic_filter[bit / 64] |= 1ull << (bit % 64);
        }
        uint32_t zero = 0;
        // The data plane's per-CPU copies of services stay valid until the services are
        // written (svc_gen is incremented at the end).
        xlb_config running{};
        if (bpf_map_lookup_elem(m_.config, &zero, &running) == 0) cfg.svc_gen = running.svc_gen;
        check(bpf_map_update_elem(m_.config, &zero, &cfg, BPF_ANY), "writing xlb_config");

        // Backends (ids stable per address).
        std::map<uint32_t, IpAddr> want_sids;
        for (auto& s : c.services) {
            for (auto& b : s.backends) {
                uint32_t id = backend_id(b.addr);
                xlb_backend be{};
                fill_addr(be.addr, b.addr);
                be.family = static_cast<uint8_t>(b.addr.family());
                if (b.mac) {
                    be.flags |= XLB_BE_MAC;
                    std::memcpy(be.mac, b.mac->data(), 6);
                }
                if (!b.interface.empty()) {
                    be.flags |= XLB_BE_REDIRECT;
                    be.tx_port = tx_port(b.interface, be.smac);
                }
                check(bpf_map_update_elem(m_.backends, &id, &be, BPF_ANY), "writing xlb_backends");
                if (s.quic && c.quic_server_id_bytes) want_sids[b.server_id.value_or(id + 1)] = b.addr;
            }
        }
        // QUIC server ids.
        for (auto it = quic_.begin(); it != quic_.end();) {
            if (!want_sids.count(it->first)) {
                bpf_map_delete_elem(m_.quic_ids, &it->first);
                if (it->first < 65536) {
                    uint32_t none = 0;
                    bpf_map_update_elem(m_.quic_sid16, &it->first, &none, BPF_ANY);
                }
                it = quic_.erase(it);
            } else {
                ++it;
            }
        }
        for (auto& [sid, addr] : want_sids) {
            uint32_t id = backend_id(addr);
            check(bpf_map_update_elem(m_.quic_ids, &sid, &id, BPF_ANY), "writing xlb_quic_ids");
            if (sid < 65536) {
                uint32_t plus1 = id + 1;
                check(bpf_map_update_elem(m_.quic_sid16, &sid, &plus1, BPF_ANY), "writing xlb_quic_sid16");
            }
            quic_[sid] = id;
        }

        // Services: write the inactive half, then flip.
        std::set<std::string> keep;
        std::map<std::pair<IpAddr, uint8_t>, uint32_t> vips;
        for (auto& s : c.services) {
            std::string name = s.name();
            keep.insert(name);
            auto it = services_.find(name);
            bool fresh = it == services_.end();
            ServiceState st{};
            if (fresh) {
                st.id = free_service_id();
                st.half = 0;
            } else {
                st = it->second;
                st.half ^= 1;
            }
            uint32_t base = (2 * st.id + st.half) * size_;
            auto mb = maglev_backends(s);
            std::vector<uint32_t> ring(size_, XLB_RING_NONE);
            if (!mb.empty()) {
                edge::maglev::Table t(mb, size_, {});
                std::vector<uint32_t> ids;
                for (auto& b : mb) ids.push_back(backend_id(*IpAddr::parse(b.name)));
                for (uint32_t i = 0; i < size_; i++) ring[i] = XLB_RING_SLOT(ids[t.entries()[i]], XLB_RING_NONE);
            }
            // Daisy chaining: each slot keeps the backend it had in the table being
            // replaced when that differs, else the previous backend it already had.
            // Other services' slots stay plain backend ids.
            if (!fresh && s.daisy_chain) {
                xlb_service old{};
                auto k = vip_key(s);
                // ring_size is 0 while every backend is drained: the slots still hold the
                // previous backends then.
                if (bpf_map_lookup_elem(m_.services, &k, &old) == 0 && (old.ring_size == size_ || old.ring_size == 0)) {
                    auto prev = read_ring(old.ring_base);
                    for (uint32_t i = 0; i < size_; i++) {
                        uint32_t cur = XLB_RING_CUR(ring[i]), was = XLB_RING_CUR(prev[i]);
                        uint32_t p = was != XLB_RING_NONE && was != cur ? was : XLB_RING_PREV(prev[i]);
                        if (p == cur) p = XLB_RING_NONE;
                        ring[i] = XLB_RING_SLOT(cur, p);
                    }
                }
            }
            write_ring(base, ring);
            xlb_svc_info info{};
            bpf_map_lookup_elem(m_.svc_info, &st.id, &info);
            if (fresh) {
                percpu_zero(m_.svc_stats, st.id, sizeof(xlb_svc_stats) / 8);
                info.gen = (info.gen + 1) & 0xffff;  // connection entries of an earlier owner of this id are stale
            }
            info.flags = (s.quic ? XLB_SVC_QUIC : 0u) | (s.daisy_chain ? XLB_SVC_DAISY : 0u);
            check(bpf_map_update_elem(m_.svc_info, &st.id, &info, BPF_ANY), "writing xlb_svc_info");
            uint32_t flags = (s.quic ? XLB_SVC_QUIC : 0u) | (s.daisy_chain ? XLB_SVC_DAISY : 0u);
            xlb_service sv{st.id, flags, base, mb.empty() ? 0u : size_};
            auto k = vip_key(s);
            check(bpf_map_update_elem(m_.services, &k, &sv, BPF_ANY), "writing xlb_services");
            services_[name] = st;
            keys_[name] = k;
            vips[{s.vip, static_cast<uint8_t>(s.vip.family())}]++;
        }
        for (auto it = services_.begin(); it != services_.end();) {
            if (!keep.count(it->first)) {
                bpf_map_delete_elem(m_.services, &keys_[it->first]);
                xlb_svc_info info{};
                bpf_map_lookup_elem(m_.svc_info, &it->second.id, &info);
                info.gen = (info.gen + 1) & 0xffff;  // its connection entries stop matching
                bpf_map_update_elem(m_.svc_info, &it->second.id, &info, BPF_ANY);
                keys_.erase(it->first);
                it = services_.erase(it);
            } else {
                ++it;
            }
        }
        // Every service written: copies made before are stale.
        cfg.svc_gen = static_cast<uint16_t>(cfg.svc_gen + 1);
        check(bpf_map_update_elem(m_.config, &zero, &cfg, BPF_ANY), "writing xlb_config");
        // VIP addresses.
        for (auto& old : vip_set_) {
            if (!vips.count(old)) {
                xlb_addr_key k{};
                fill_addr(k.addr, old.first);
                k.family = old.second;
                bpf_map_delete_elem(m_.vips, &k);
            }
        }
        vip_set_.clear();
        for (auto& [v, n] : vips) {
            xlb_addr_key k{};
            fill_addr(k.addr, v.first);
            k.family = v.second;
            uint32_t count = n;
            check(bpf_map_update_elem(m_.vips, &k, &count, BPF_ANY), "writing xlb_vips");
            vip_set_.insert(v);
        }
    }

    uint32_t backend_id(const IpAddr& a) {
        auto it = backend_ids_.find(a);
        if (it != backend_ids_.end()) return it->second;
        uint32_t id = static_cast<uint32_t>(backend_ids_.size());
        if (id >= XLB_MAX_BACKENDS) edge::usage_error("more than {} backend addresses", XLB_MAX_BACKENDS);
        backend_ids_[a] = id;
        return id;
    }
    const std::map<IpAddr, uint32_t>& backend_ids() const { return backend_ids_; }
    const std::map<std::string, ServiceState>& services() const { return services_; }
    const Maps& maps() const { return m_; }

    // Takes over the state of maps filled by an earlier process (xdp-lb load): ids of
    // services, backends and QUIC server ids, VIP addresses, devmap ports.
    void adopt() {
        xlb_vip_key k{}, next{};
        void* prev = nullptr;
        while (bpf_map_get_next_key(m_.services, prev, &next) == 0) {
            k = next;
            prev = &k;
            xlb_service sv{};
            if (bpf_map_lookup_elem(m_.services, &k, &sv) != 0) continue;
            std::string name = vip_key_name(k);
            uint32_t half = sv.ring_base / size_ >= 2 * sv.id ? sv.ring_base / size_ - 2 * sv.id : 0;
            services_[name] = {sv.id, half & 1};
            keys_[name] = k;
        }
        for (uint32_t id = 0; id < XLB_MAX_BACKENDS; id++) {
            xlb_backend be{};
            if (bpf_map_lookup_elem(m_.backends, &id, &be) != 0 || !be.family) break;
            backend_ids_[backend_addr(be)] = id;
        }
        uint32_t qk = 0, qn = 0;
        void* qp = nullptr;
        while (bpf_map_get_next_key(m_.quic_ids, qp, &qn) == 0) {
            qk = qn;
            qp = &qk;
            uint32_t bid;
            if (bpf_map_lookup_elem(m_.quic_ids, &qk, &bid) == 0) quic_[qk] = bid;
        }
        xlb_addr_key ak{}, an{};
        void* ap = nullptr;
        while (bpf_map_get_next_key(m_.vips, ap, &an) == 0) {
            ak = an;
            ap = &ak;
            IpAddr a = ak.family == EDGE_FAMILY_V4 ? *IpAddr::from_bytes({ak.addr, 4}) : *IpAddr::from_bytes({ak.addr, 16});
            vip_set_.insert({a, ak.family});
        }
        for (uint32_t port = 0; port < 64; port++) {
            uint32_t ifindex = 0;
            if (bpf_map_lookup_elem(m_.tx_ports, &port, &ifindex) != 0 || !ifindex) continue;
            char name[IF_NAMESIZE] = {};
            if (if_indextoname(ifindex, name)) tx_ports_[name] = port;
        }
    }

private:
    // The devmap slot of an interface (added on first use) and its MAC (the source MAC
    // of frames redirected there).
    uint16_t tx_port(const std::string& ifname, uint8_t* smac) {
        unsigned ifindex = if_nametoindex(ifname.c_str());
        if (!ifindex) edge::usage_error("backend interface {}: no such interface (see ip link)", ifname);
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct ifreq ifr {};
        std::snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname.c_str());
        bool ok = fd >= 0 && ioctl(fd, SIOCGIFHWADDR, &ifr) == 0;
        if (fd >= 0) close(fd);
        if (!ok) edge::usage_error("backend interface {}: cannot read its MAC address", ifname);
        std::memcpy(smac, ifr.ifr_hwaddr.sa_data, 6);
        auto it = tx_ports_.find(ifname);
        uint32_t port;
        if (it != tx_ports_.end()) {
            port = it->second;
        } else {
            port = static_cast<uint32_t>(tx_ports_.size());
            if (port >= 64) edge::usage_error("more than 64 backend interfaces");
        }
        uint32_t v = ifindex;
        check(bpf_map_update_elem(m_.tx_ports, &port, &v, BPF_ANY), "writing xlb_tx_ports (the interface must support XDP redirect)");
        tx_ports_[ifname] = port;
        return static_cast<uint16_t>(port);
    }

    uint32_t free_service_id() const {
        for (uint32_t id = 0; id < max_services_; id++) {
            bool used = false;
            for (auto& [n, st] : services_) used = used || st.id == id;
            if (!used) return id;
        }
        edge::usage_error("more than max_services = {} services", max_services_);
    }

    // The size_ slots of the ring from base.
    std::vector<uint32_t> read_ring(uint32_t base) const {
        std::vector<uint32_t> v(size_, XLB_RING_NONE);
        for (uint32_t i = 0; i < size_; i++) {
            uint32_t key = base + i;
            bpf_map_lookup_elem(m_.ring, &key, &v[i]);
        }
        return v;
    }

    void write_ring(uint32_t base, const std::vector<uint32_t>& ring) {
        std::vector<uint32_t> keys(ring.size());
        for (uint32_t i = 0; i < ring.size(); i++) keys[i] = base + i;
        uint32_t n = static_cast<uint32_t>(ring.size());
        LIBBPF_OPTS(bpf_map_batch_opts, opts);
        int err = bpf_map_update_batch(m_.ring, keys.data(), ring.data(), &n, &opts);
        if (err) {
            // Older kernels: one by one.
            for (uint32_t i = 0; i < ring.size(); i++)
                check(bpf_map_update_elem(m_.ring, &keys[i], &ring[i], BPF_ANY), "writing xlb_ring");
        }
    }

    Maps m_;
    uint32_t size_;
    uint32_t max_services_;
    std::map<IpAddr, uint32_t> backend_ids_;
    std::map<std::string, ServiceState> services_;
    std::map<std::string, xlb_vip_key> keys_;
    std::map<uint32_t, uint32_t> quic_;
    std::set<std::pair<IpAddr, uint8_t>> vip_set_;
    std::map<std::string, uint32_t> tx_ports_;
};

// Sizes the maps of an opened (not yet loaded) skeleton from the configuration.
template <typename Skel>
void size_maps(Skel* s, const LbConfig& c) {
    uint64_t ring = 2ull * c.max_services * c.table_size;
    if (ring > 0xffffffffull / 4) edge::usage_error("max_services * table_size is too large for one ring map");
    check(bpf_map__set_max_entries(s->maps.xlb_ring, static_cast<uint32_t>(ring)), "sizing xlb_ring");
    check(bpf_map__set_max_entries(s->maps.xlb_services, c.max_services), "sizing xlb_services");
    check(bpf_map__set_max_entries(s->maps.xlb_vips, c.max_services), "sizing xlb_vips");
    check(bpf_map__set_max_entries(s->maps.xlb_svc_stats, c.max_services), "sizing xlb_svc_stats");
    check(bpf_map__set_max_entries(s->maps.xlb_svc_info, c.max_services), "sizing xlb_svc_info");
    check(bpf_map__set_max_entries(s->maps.xlb_conntrack, c.conntrack_size), "sizing xlb_conntrack");
    check(bpf_map__set_max_entries(s->maps.xlb_conntrack4, c.conntrack_size), "sizing xlb_conntrack4");
}

template <typename Skel>
Maps skel_maps(Skel* s) {
    Maps m;
    m.services = bpf_map__fd(s->maps.xlb_services);
    m.vips = bpf_map__fd(s->maps.xlb_vips);
    m.ring = bpf_map__fd(s->maps.xlb_ring);
    m.backends = bpf_map__fd(s->maps.xlb_backends);
    m.quic_ids = bpf_map__fd(s->maps.xlb_quic_ids);
    m.conntrack = bpf_map__fd(s->maps.xlb_conntrack);
    m.config = bpf_map__fd(s->maps.xlb_config);
    m.svc_stats = bpf_map__fd(s->maps.xlb_svc_stats);
    m.be_stats = bpf_map__fd(s->maps.xlb_be_stats);
    m.reasons = bpf_map__fd(s->maps.xlb_reasons);
    m.svc_info = bpf_map__fd(s->maps.xlb_svc_info);
    m.tx_ports = bpf_map__fd(s->maps.xlb_tx_ports);
    m.conntrack4 = bpf_map__fd(s->maps.xlb_conntrack4);
    m.quic_sid16 = bpf_map__fd(s->maps.xlb_quic_sid16);
    return m;
}

// The configuration of -c, or an error saying it is needed (run.cpp).
LbConfig load_config(const edge::cli::Globals& g);

}  // namespace xlb
