// synflood-guard's control-plane core: the guard.toml model, the code that writes it
// into the maps of bpf/synflood.bpf.c (layout in bpf/include/edge/guard.h), and the
// adaptive flood state machine (adaptive.hpp). Header-only so the BPF fixture tests
// (tests/bpf/test_synflood.cpp) fill the maps with exactly the code the tool runs.
#pragma once
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "adaptive.hpp"
#include "bpf/maps.hpp"
#include "bpf/prog.hpp"
#include "cli/error.hpp"
#include "config/toml.hpp"
#include "edge/guard.h"
#include "net/addr.hpp"

namespace sfg {

using edge::net::IpAddr;
using edge::net::Prefix;

enum class CookieMode { automatic, always, never };

struct ProtectCfg {
    Prefix prefix;
    uint16_t port = 0;  // 0 = any
    CookieMode cookie = CookieMode::automatic;
    uint64_t syn_pps = 0, syn_bps = 0;  // SYN budget (0: none); bps = bits/s
    uint64_t flood_syn_pps = 0;         // budget while flooded (0: keep syn_pps)
    std::optional<double> floor_syn_pps;
    std::string name() const {
        return port ? fmt::format("{} port {}", prefix.to_string(), port) : prefix.to_string();
    }
};

struct GuardConfig {
    uint8_t urpf = SFG_URPF_OFF;
    uint64_t src_pps = 0, src_bps = 0;
    double factor = 4;           // threshold = max(floor, factor x p95 of the calm window)
    double floor_syn_pps = 1000; // fixed floor
    uint32_t window_s = 60;      // baseline window
    uint32_t calm_s = 5;         // seconds below threshold/2 before cookie mode ends
    bool set_syncookies = true;  // set net.ipv4.tcp_syncookies=1 when it is 0
    std::vector<Prefix> allow, deny;
    std::vector<ProtectCfg> protect;
    std::string control_socket;  // unix socket for `synflood-guard ctl`
    std::string metrics;         // ADDR:PORT for Prometheus metrics over HTTP
    bool cookie_options = true;  // WS/SACK/TS in cookie SYN-ACKs when the kernel can decode them
    bool set_timestamps = false; // run: set net.ipv4.tcp_timestamps=2 (offset 0) so it can
    // resolved for the maps (resolve_cookie_options, or set by hand in tests)
    uint8_t opts_resolved = 0;   // SFG_O_*
    uint8_t wscale = 0;
    std::string opts_note;       // why options are off
};

inline Prefix parse_prefix_at(const edge::config::Table& t, std::string_view key, const std::string& s) {
    auto p = Prefix::parse(s);
    if (!p) t.fail(key, fmt::format("bad prefix '{}': {}", s, p.error()));
    return *p;
}

inline CookieMode parse_cookie(const edge::config::Table& t, std::string_view key, const std::string& s) {
    if (s == "auto") return CookieMode::automatic;
    if (s == "always") return CookieMode::always;
    if (s == "never") return CookieMode::never;
    t.fail(key, fmt::format("'{}': expected auto, always or never", s));
}

// Reads [guard] and [[protect]]. Errors name FILE:LINE and the key.
inline GuardConfig parse_config(const edge::config::Document& doc) {
    using edge::config::Table;
    GuardConfig c;
    Table root(doc);
    for (auto& [k, v] : root.raw()) {
        std::string key(k.str());
        static const char* const known[] = {"guard", "protect", "detect", "run", "status", "stats", "block", "unblock", "bench", "ctl"};
        bool table = v.is_table() || (v.is_array() && v.as_array()->is_array_of_tables());
        if (!table || std::find(std::begin(known), std::end(known), key) != std::end(known))
            continue;  // global options and subcommand sections are checked by the CLI
        edge::usage_error("{}: unknown table '{}' (expected [guard] and [[protect]])", edge::config::where(doc, v), key);
    }
    if (auto g = root.table("guard")) {
        g->only({"urpf", "src_pps", "src_bps", "factor", "floor_syn_pps", "window_s", "calm_s", "set_syncookies",
                 "allow", "deny", "control_socket", "metrics", "cookie_options", "set_timestamps"});
        if (auto v = g->str("control_socket")) c.control_socket = *v;
        if (auto v = g->str("metrics")) c.metrics = *v;
        if (auto v = g->boolean("cookie_options")) c.cookie_options = *v;
        if (auto v = g->boolean("set_timestamps")) c.set_timestamps = *v;
        if (auto s = g->str("urpf")) {
            if (*s == "off") c.urpf = SFG_URPF_OFF;
            else if (*s == "loose") c.urpf = SFG_URPF_LOOSE;
            else if (*s == "strict") c.urpf = SFG_URPF_STRICT;
            else g->fail("urpf", fmt::format("'{}': expected off, loose or strict", *s));
        }
        if (auto v = g->integer("src_pps", 0, int64_t{1} << 32)) c.src_pps = uint64_t(*v);
        if (auto v = g->integer("src_bps", 0, int64_t{1} << 40)) c.src_bps = uint64_t(*v);
        if (auto v = g->real("factor")) {
            if (*v < 1 || *v > 1000) g->fail("factor", "expected a number 1..1000");
            c.factor = *v;
        }
        if (auto v = g->real("floor_syn_pps")) {
            if (*v <= 0) g->fail("floor_syn_pps", "expected a rate > 0");
            c.floor_syn_pps = *v;
        }
        if (auto v = g->integer("window_s", 5, 86400)) c.window_s = uint32_t(*v);
        if (auto v = g->integer("calm_s", 1, 3600)) c.calm_s = uint32_t(*v);
        if (auto v = g->boolean("set_syncookies")) c.set_syncookies = *v;
        for (auto& s : g->strings("allow")) c.allow.push_back(parse_prefix_at(*g, "allow", s));
        for (auto& s : g->strings("deny")) c.deny.push_back(parse_prefix_at(*g, "deny", s));
    }
    for (auto& t : root.tables("protect")) {
        t.only({"prefix", "port", "cookie", "syn_pps", "syn_bps", "flood_syn_pps", "floor_syn_pps"});
        ProtectCfg p;
        auto s = t.str("prefix");
        if (!s) t.fail("prefix", "missing: every [[protect]] needs a destination prefix");
        p.prefix = parse_prefix_at(t, "prefix", *s);
        if (auto v = t.integer("port", 0, 65535)) p.port = uint16_t(*v);
        if (auto v = t.str("cookie")) p.cookie = parse_cookie(t, "cookie", *v);
        if (auto v = t.integer("syn_pps", 0, int64_t{1} << 32)) p.syn_pps = uint64_t(*v);
        if (auto v = t.integer("syn_bps", 0, int64_t{1} << 40)) p.syn_bps = uint64_t(*v);
        if (auto v = t.integer("flood_syn_pps", 0, int64_t{1} << 32)) p.flood_syn_pps = uint64_t(*v);
        if (auto v = t.real("floor_syn_pps")) {
            if (*v <= 0) t.fail("floor_syn_pps", "expected a rate > 0");
            p.floor_syn_pps = *v;
        }
        for (auto& q : c.protect)
            if (q.prefix == p.prefix && q.port == p.port) t.fail("prefix", fmt::format("{} is protected twice", p.name()));
        c.protect.push_back(p);
    }
    if (c.protect.size() > SFG_MAX_PROTECTED)
        edge::usage_error("{}: {} [[protect]] tables, at most {}", doc.path, c.protect.size(), SFG_MAX_PROTECTED);
    return c;
}

inline const char* kMapNames[] = {"sfg_protect", "sfg_allow",   "sfg_deny",      "sfg_config",   "sfg_src_bkt",
                                  "sfg_dst_bkt", "sfg_dst_stats", "sfg_reasons", "sfg_prefilter"};
constexpr int kMapCount = 9;
constexpr int kPrefilterSlot = 8;  // optional when opening pins (a guard started by an older build has none)

struct Maps {
    int protect = -1, allow = -1, deny = -1, config = -1, src_bkt = -1, dst_bkt = -1, dst_stats = -1, reasons = -1;
    int prefilter = -1;
};
inline int* map_slot(Maps& m, int i) {
    int* s[] = {&m.protect, &m.allow, &m.deny, &m.config, &m.src_bkt, &m.dst_bkt, &m.dst_stats, &m.reasons,
                &m.prefilter};
    return s[i];
}
template <typename Skel>
Maps skel_maps(Skel* s) {
    Maps m;
    m.protect = bpf_map__fd(s->maps.sfg_protect);
    m.allow = bpf_map__fd(s->maps.sfg_allow);
    m.deny = bpf_map__fd(s->maps.sfg_deny);
    m.config = bpf_map__fd(s->maps.sfg_config);
    m.src_bkt = bpf_map__fd(s->maps.sfg_src_bkt);
    m.dst_bkt = bpf_map__fd(s->maps.sfg_dst_bkt);
    m.dst_stats = bpf_map__fd(s->maps.sfg_dst_stats);
    m.reasons = bpf_map__fd(s->maps.sfg_reasons);
    m.prefilter = bpf_map__fd(s->maps.sfg_prefilter);
    return m;
}

using edge::bpf::check;
using edge::bpf::ncpus;
using edge::bpf::percpu_sum;

inline sfg_dst_stats dst_stats(const Maps& m, uint32_t id) {
    auto v = percpu_sum(m.dst_stats, id, sizeof(sfg_dst_stats) / 8);
    sfg_dst_stats s;
    std::memcpy(&s, v.data(), sizeof s);
    return s;
}

inline const char* reason_name(uint32_t r) {
    static const char* const names[SFG_R_COUNT] = {
        "pass_not_ip",    "pass_unprotected", "pass_allowed",   "pass",           "drop_deny",
        "drop_urpf",      "urpf_unchecked",   "drop_src_rate",  "drop_dst_rate",  "drop_malformed",
        "cookie_sent",    "cookie_ack_ok",    "drop_cookie_ack", "pass_no_listener", "pass_cookie_error"};
    return r < SFG_R_COUNT ? names[r] : "?";
}

inline sfg_src_key src_key(const Prefix& p) {
    sfg_src_key k{};
    k.prefixlen = 32 + static_cast<uint32_t>(p.length());
    k.family = static_cast<uint8_t>(p.family());
    std::memcpy(k.addr, p.addr().raw().data(), 16);
    return k;
}

inline sfg_dst_key dst_key(const ProtectCfg& p) {
    sfg_dst_key k{};
    k.prefixlen = 32 + static_cast<uint32_t>(p.prefix.length());
    k.family = static_cast<uint8_t>(p.prefix.family());
    k.port = htons(p.port);
    std::memcpy(k.addr, p.prefix.addr().raw().data(), 16);
    return k;
}

inline Prefix key_prefix(const sfg_src_key& k) {
    std::array<uint8_t, 16> a{};
    std::memcpy(a.data(), k.addr, 16);
    IpAddr ip = k.family == EDGE_FAMILY_V4 ? IpAddr::v4(std::array<uint8_t, 4>{a[0], a[1], a[2], a[3]}) : IpAddr::v6(a);
    return *Prefix::masked(ip, int(k.prefixlen) - 32);
}
inline Prefix key_prefix(const sfg_dst_key& k) {
    sfg_src_key s{};
    s.prefixlen = k.prefixlen;
    s.family = k.family;
    std::memcpy(s.addr, k.addr, 16);
    return key_prefix(s);
}

inline std::string read_proc(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "r");
    if (!f) return {};
    char buf[256] = {};
    size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    std::string s(buf, n);
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

// The window scale the kernel gives a connection built from a cookie ACK
// (tcp_select_initial_window): clamp(ilog2(max(tcp_rmem[2], rmem_max)) - 15, 0, 14).
inline uint8_t kernel_wscale(uint64_t tcp_rmem_max, uint64_t rmem_max) {
    uint64_t space = std::max(tcp_rmem_max, rmem_max);
    int l = space ? 63 - __builtin_clzll(space) : 0;
    return static_cast<uint8_t>(std::clamp(l - 15, 0, 14));
}

// Which TCP options the cookie SYN-ACKs may carry here, from the sysctls of this
// network namespace (see SFG_O_* in edge/guard.h).
inline void resolve_cookie_options(GuardConfig& c) {
    c.opts_resolved = 0;
    c.opts_note.clear();
    if (!c.cookie_options) {
        c.opts_note = "cookie_options = false";
        return;
    }
    std::string ts = read_proc("/proc/sys/net/ipv4/tcp_timestamps");
    if (ts != "2") {
        c.opts_note = ts == "0" ? "net.ipv4.tcp_timestamps=0"
                                : "net.ipv4.tcp_timestamps=" + ts +
                                      " adds a secret per-connection offset the guard cannot compute; set it to 2 "
                                      "(or set_timestamps = true) for window scaling, SACK and timestamps";
        return;
    }
    c.opts_resolved = SFG_O_TS;
    if (read_proc("/proc/sys/net/ipv4/tcp_sack") != "0") c.opts_resolved |= SFG_O_SACK;
    if (read_proc("/proc/sys/net/ipv4/tcp_window_scaling") != "0") {
        c.opts_resolved |= SFG_O_WS;
        std::string rmem = read_proc("/proc/sys/net/ipv4/tcp_rmem");
        uint64_t a = 0, b = 0, tmax = 0;
        std::sscanf(rmem.c_str(), "%lu %lu %lu", &a, &b, &tmax);
        uint64_t rmax = std::strtoull(read_proc("/proc/sys/net/core/rmem_max").c_str(), nullptr, 10);
        c.wscale = kernel_wscale(tmax, rmax);
    }
}

inline sfg_config config_value(const GuardConfig& c) {
    sfg_config cfg{};
    cfg.src_pps = c.src_pps;
    cfg.src_Bps = c.src_bps / 8;
    cfg.urpf = c.urpf;
    cfg.cookie_opts = c.opts_resolved;
    cfg.wscale = c.wscale;
    return cfg;
}

// The prefilter bits (edge/guard.h, sfg_prefilter) of one entry: every value of the
// first 16 address bits the prefix covers. w holds SFG_PF_ENTRIES elements.
inline void prefilter_mark(std::vector<sfg_pf>& w, uint32_t list, uint8_t family, const uint8_t* addr,
                           uint32_t len) {
    uint32_t base = family == EDGE_FAMILY_V6 ? SFG_PF_WORDS : 0;
    uint32_t span = len >= 16 ? 1 : 1u << (16 - len);
    uint32_t hi = (uint32_t(addr[0]) << 8 | addr[1]) & ~(span - 1);
    for (uint32_t i = hi; i < hi + span; i++) w[base + (i >> 6)].w[list] |= uint64_t{1} << (i & 63);
}

// The bits of the allow, deny and protect tries as they are now.
inline void prefilter_bits(const Maps& m, std::vector<sfg_pf>& w) {
    w.assign(SFG_PF_ENTRIES, sfg_pf{});
    auto src_list = [&](int fd, uint32_t list) {
        sfg_src_key k{}, next{};
        void* prev = nullptr;
        while (bpf_map_get_next_key(fd, prev, &next) == 0) {
            k = next;
            prev = &k;
            prefilter_mark(w, list, k.family, k.addr, k.prefixlen - 32);
        }
    };
    src_list(m.allow, SFG_PF_ALLOW);
    src_list(m.deny, SFG_PF_DENY);
    sfg_dst_key k{}, next{};
    void* prev = nullptr;
    while (bpf_map_get_next_key(m.protect, prev, &next) == 0) {
        k = next;
        prev = &k;
        prefilter_mark(w, SFG_PF_PROTECT, k.family, k.addr, k.prefixlen - 32);
    }
}

inline bool same_pf(const sfg_pf& a, const sfg_pf& b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// Invalidates every CPU's cache of sfg_protect lookups (sfg_dcache in edge/guard.h):
// called after every write to sfg_protect, keys or values. Only the process that owns
// the protected entries (run, or a test) writes them and the generation: `block` and
// `unblock` change the deny list only and leave it alone.
inline void bump_protect_gen(const Maps& m) {
    if (m.prefilter < 0) return;
    uint32_t k = SFG_PF_GEN;
    sfg_pf g{};
    bpf_map_lookup_elem(m.prefilter, &k, &g);
    g.w[0]++;
    check(bpf_map_update_elem(m.prefilter, &k, &g, BPF_ANY), "writing sfg_prefilter");
}

// Recomputes the prefilter from the tries, writing only the elements that change;
// called after every change to the keys of a list (apply, block/unblock, reload).
// Another process may change a list meanwhile (`block` beside a reload): the bits are
// recomputed after writing until they match the tries. No-op without the map (the
// pins of a guard started by an older build).
inline void sync_prefilter(const Maps& m) {
    if (m.prefilter < 0) return;
    std::vector<sfg_pf> w, again;
    prefilter_bits(m, w);
    for (int round = 0; round < 8; round++) {
        for (uint32_t i = 0; i < SFG_PF_ENTRIES; i++) {
            sfg_pf cur{};
            if (bpf_map_lookup_elem(m.prefilter, &i, &cur) == 0 && same_pf(cur, w[i])) continue;
            check(bpf_map_update_elem(m.prefilter, &i, &w[i], BPF_ANY), "writing sfg_prefilter");
        }
        prefilter_bits(m, again);
        if (std::equal(w.begin(), w.end(), again.begin(), same_pf)) return;
        w.swap(again);
    }
}

// Writes a whole configuration: global settings, lists, protected destinations
// (ids in config order). Entries are written with their initial mode.
inline void apply(const Maps& m, const GuardConfig& c) {
    uint32_t zero = 0;
    sfg_config cfg = config_value(c);
    check(bpf_map_update_elem(m.config, &zero, &cfg, BPF_ANY), "writing sfg_config");
    uint32_t one = 1;
    for (auto& p : c.allow) {
        auto k = src_key(p);
        check(bpf_map_update_elem(m.allow, &k, &one, BPF_ANY), "writing sfg_allow");
    }
    for (auto& p : c.deny) {
        auto k = src_key(p);
        check(bpf_map_update_elem(m.deny, &k, &one, BPF_ANY), "writing sfg_deny");
    }
    for (uint32_t i = 0; i < c.protect.size(); i++) {
        const ProtectCfg& p = c.protect[i];
        auto k = dst_key(p);
        sfg_dest d{};
        d.id = i;
        d.flags = p.cookie == CookieMode::always ? SFG_D_COOKIE : 0;
        d.syn_pps = p.syn_pps;
        d.syn_Bps = p.syn_bps / 8;
        d.threshold_pps = static_cast<uint64_t>(p.floor_syn_pps.value_or(c.floor_syn_pps));
        check(bpf_map_update_elem(m.protect, &k, &d, BPF_ANY), "writing sfg_protect");
        if (p.syn_pps || p.syn_bps) {  // a full bucket to start with
            sfg_bucket b{};
            b.pkt_tokens = p.syn_pps * SFG_NSEC;
            b.byte_tokens = p.syn_bps / 8 * SFG_NSEC;
            check(bpf_map_update_elem(m.dst_bkt, &i, &b, BPF_ANY), "writing sfg_dst_bkt");
        }
    }
    sync_prefilter(m);
    bump_protect_gen(m);
}

inline void set_dest(const Maps& m, const ProtectCfg& p, const sfg_dest& d) {
    auto k = dst_key(p);
    check(bpf_map_update_elem(m.protect, &k, &d, BPF_EXIST), "updating sfg_protect");
    bump_protect_gen(m);
}
inline std::optional<sfg_dest> get_dest(const Maps& m, const ProtectCfg& p) {
    auto k = dst_key(p);
    sfg_dest d{};
    if (bpf_map_lookup_elem(m.protect, &k, &d) != 0) return std::nullopt;
    return d;
}

}  // namespace sfg
