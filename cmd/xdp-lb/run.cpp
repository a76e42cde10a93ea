// xdp-lb run / decap / status / stats: the live side.
#include <ifaddrs.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "bpf/xdp.hpp"
#include "lb.hpp"
#include "options.hpp"
#include "out/record.hpp"
#include "xdp_decap.skel.h"
#include "xdp_lb.skel.h"

namespace xlb {

namespace fs = std::filesystem;

LbConfig load_config(const edge::cli::Globals& g) {
    if (g.config.empty()) edge::usage_error("no configuration: give -c lb.toml with [lb] and [[service]] tables");
    auto doc = edge::config::load(g.config);
    auto c = parse_config(doc);
    if (c.services.empty()) edge::usage_error("{}: no [[service]] tables: nothing to balance", g.config);
    return c;
}

std::string pin_dir(const std::string& ifname) { return "/sys/fs/bpf/edge/xdp-lb/" + ifname; }

int ifindex_of(const std::string& ifname) { return edge::bpf::ifindex_of(ifname); }

namespace {
using edge::bpf::attached_prog;
using edge::bpf::ensure_bpffs;
using edge::bpf::require_bpf;

void log_event(const edge::cli::Globals& g, const edge::out::Record& r) { edge::out::event(r, g.json); }

sigset_t block_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    return set;
}

Maps pinned_maps(const std::string& ifname) {
    Maps m;
    std::string dir = pin_dir(ifname);
    if (!fs::exists(dir)) {
        ifindex_of(ifname);
        edge::usage_error("no xdp-lb running on {} (no pins in {}): start one with xdp-lb run -i {} -c lb.toml", ifname,
                          dir, ifname);
    }
    for (int i = 0; i < kNumMaps; i++) {
        int fd = bpf_obj_get((dir + "/" + kMapNames[i]).c_str());
        // status and stats read the first ten maps only: a balancer pinned by an older
        // xdp-lb (without the later maps) can still be inspected.
        if (fd < 0 && i >= 10 && errno == ENOENT) continue;
        if (fd < 0) edge::failure("cannot open {}/{}: {}", dir, kMapNames[i], std::strerror(errno));
        *map_slot(m, i) = fd;
    }
    return m;
}

struct Snapshot {
    std::vector<std::pair<std::string, std::pair<uint32_t, xlb_svc_stats>>> services;
    std::vector<std::pair<std::string, std::pair<uint32_t, xlb_be_stats>>> backends;
    std::vector<uint64_t> reasons;
};

Snapshot snapshot(const Maps& m) {
    Snapshot s;
    xlb_vip_key k{}, next{};
    void* prev = nullptr;
    while (bpf_map_get_next_key(m.services, prev, &next) == 0) {
        k = next;
        prev = &k;
        xlb_service sv{};
        if (bpf_map_lookup_elem(m.services, &k, &sv) != 0) continue;
        auto v = percpu_sum(m.svc_stats, sv.id, sizeof(xlb_svc_stats) / 8);
        xlb_svc_stats st;
        std::memcpy(&st, v.data(), sizeof st);
        s.services.push_back({vip_key_name(k), {sv.id, st}});
    }
    std::sort(s.services.begin(), s.services.end(), [](auto& x, auto& y) { return x.first < y.first; });
    for (uint32_t id = 0; id < XLB_MAX_BACKENDS; id++) {
        xlb_backend be{};
        if (bpf_map_lookup_elem(m.backends, &id, &be) != 0 || !be.family) break;
        auto v = percpu_sum(m.be_stats, id, sizeof(xlb_be_stats) / 8);
        xlb_be_stats st;
        std::memcpy(&st, v.data(), sizeof st);
        s.backends.push_back({backend_addr(be).to_string(), {id, st}});
    }
    for (uint32_t r = 0; r < XLB_R_COUNT; r++) s.reasons.push_back(percpu_sum(m.reasons, r, 1)[0]);
    return s;
}

double ratio(uint64_t a, uint64_t b) { return b ? static_cast<double>(a) / static_cast<double>(b) : 0.0; }
}  // namespace

int run_run(const Options& o, const edge::cli::Globals& g, edge::out::Output& out) {
    (void)out;
    LbConfig c = load_config(g);
    int ifindex = ifindex_of(o.interface);
    require_bpf();
    ensure_bpffs();
    std::string dir = pin_dir(o.interface);
    if (fs::exists(dir)) {
        if (attached_prog(ifindex))
            edge::usage_error("xdp-lb already runs on {} (pins in {}); stop it first", o.interface, dir);
        fs::remove_all(dir);  // left by a process that was killed
    }
    xdp_lb* s = xdp_lb__open();
    if (!s) edge::failure("cannot open the BPF object: {}", std::strerror(errno));
    std::unique_ptr<xdp_lb, void (*)(xdp_lb*)> guard(s, xdp_lb__destroy);
    size_maps(s, c);
    if (int err = xdp_lb__load(s)) edge::failure("cannot load the BPF program: {}", edge::bpf::error_text(err));
    Controller ctl(skel_maps(s), c.table_size, c.max_services);
    ctl.apply(c);
    fs::create_directories(dir);
    for (int i = 0; i < kNumMaps; i++) {
        struct bpf_map* m = bpf_object__find_map_by_name(s->obj, kMapNames[i]);
        if (!m || bpf_map__pin(m, (dir + "/" + kMapNames[i]).c_str()) != 0)
            edge::failure("cannot pin {} in {}: {}", kMapNames[i], dir, std::strerror(errno));
    }
    sigset_t set = block_signals();
    uint32_t flags;
    try {
        flags = edge::bpf::attach_xdp(ifindex, bpf_program__fd(s->progs.xdp_lb), o.interface, o.mode);
    } catch (...) {
        fs::remove_all(dir);
        throw;
    }
    log_event(g, edge::out::Record("lb_event")
                     .str("event", "attached")
                     .str("interface", o.interface)
                     .str("mode", flags & XDP_FLAGS_DRV_MODE ? "native" : "generic")
                     .num("services", static_cast<uint64_t>(c.services.size()))
                     .text(fmt::format("attached to {} ({} XDP), {} services", o.interface,
                                       flags & XDP_FLAGS_DRV_MODE ? "native" : "generic", c.services.size())));
    int rc = edge::exit_ok;
    while (true) {
        int sig = sigwaitinfo(&set, nullptr);
        if (sig == SIGHUP) {
            try {
                LbConfig nc = load_config(g);
                ctl.apply(nc);
                log_event(g, edge::out::Record("lb_event")
                                 .str("event", "reloaded")
                                 .num("services", static_cast<uint64_t>(nc.services.size()))
                                 .text(fmt::format("reloaded {}: {} services", g.config, nc.services.size())));
            } catch (const edge::Error& e) {
                log_event(g, edge::out::Record("lb_event")
                                 .str("event", "reload_failed")
                                 .str("error", e.what())
                                 .text(fmt::format("reload failed, keeping the running config: {}", e.what())));
            }
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT) break;
        if (sig < 0 && errno != EINTR) {
            rc = edge::exit_failure;
            break;
        }
    }
    edge::bpf::detach_xdp(ifindex, flags, bpf_program__fd(s->progs.xdp_lb));
    edge::bpf::remove_pins(dir);
    log_event(g, edge::out::Record("lb_event").str("event", "detached").str("interface", o.interface).text(
                     fmt::format("detached from {}", o.interface)));
    return rc;
}

int run_decap(const Options& o, const edge::cli::Globals& g, edge::out::Output& out) {
    (void)out;
    int ifindex = ifindex_of(o.interface);
    require_bpf();
    std::vector<IpAddr> addrs;
    for (auto& a : o.addresses) {
        auto ip = IpAddr::parse(a);
        if (!ip) edge::usage_error("--address '{}': {}", a, ip.error());
        addrs.push_back(*ip);
    }
    if (addrs.empty() && !o.any) {
        ifaddrs* ifa = nullptr;
        if (getifaddrs(&ifa) == 0) {
            for (auto* p = ifa; p; p = p->ifa_next) {
                if (!p->ifa_addr || o.interface != p->ifa_name) continue;
                if (p->ifa_addr->sa_family == AF_INET) {
                    auto* sin = reinterpret_cast<sockaddr_in*>(p->ifa_addr);
                    addrs.push_back(IpAddr::v4(ntohl(sin->sin_addr.s_addr)));
                } else if (p->ifa_addr->sa_family == AF_INET6) {
                    auto* sin6 = reinterpret_cast<sockaddr_in6*>(p->ifa_addr);
                    std::array<uint8_t, 16> b;
                    std::memcpy(b.data(), &sin6->sin6_addr, 16);
                    addrs.push_back(IpAddr::v6(b));
                }
            }
            freeifaddrs(ifa);
        }
        if (addrs.empty())
            edge::usage_error("{} has no addresses: give --address ADDR (the backend's address) or --any", o.interface);
    }
    xdp_decap* s = xdp_decap__open();
    if (!s) edge::failure("cannot open the BPF object: {}", std::strerror(errno));
    std::unique_ptr<xdp_decap, void (*)(xdp_decap*)> guard(s, xdp_decap__destroy);
    s->rodata->decap_any = o.any ? 1 : 0;
    if (int err = xdp_decap__load(s)) edge::failure("cannot load the BPF program: {}", edge::bpf::error_text(err));
    for (auto& a : addrs) {
        xlb_addr_key k{};
        fill_addr(k.addr, a);
        k.family = static_cast<uint8_t>(a.family());
        uint32_t one = 1;
        check(bpf_map_update_elem(bpf_map__fd(s->maps.xdec_addrs), &k, &one, BPF_ANY), "writing xdec_addrs");
    }
    sigset_t set = block_signals();
    uint32_t flags = edge::bpf::attach_xdp(ifindex, bpf_program__fd(s->progs.xdp_decap), o.interface, o.mode);
    std::vector<std::string> names;
    for (auto& a : addrs) names.push_back(a.to_string());
    log_event(g, edge::out::Record("lb_event")
                     .str("event", "decap_attached")
                     .str("interface", o.interface)
                     .strings("addresses", names)
                     .text(fmt::format("decapsulating on {} for {}", o.interface, o.any ? "any address" : fmt::format("{}", fmt::join(names, ", ")))));
    while (true) {
        int sig = sigwaitinfo(&set, nullptr);
        if (sig == SIGTERM || sig == SIGINT) break;
    }
    edge::bpf::detach_xdp(ifindex, flags, bpf_program__fd(s->progs.xdp_decap));
    std::vector<uint64_t> r;
    for (uint32_t i = 0; i < XDEC_R_COUNT; i++) r.push_back(percpu_sum(bpf_map__fd(s->maps.xdec_reasons), i, 1)[0]);
    log_event(g, edge::out::Record("lb_event")
                     .str("event", "decap_detached")
                     .num("decap_v4", r[0])
                     .num("decap_v6", r[1])
                     .num("pass_not_encap", r[2])
                     .num("pass_not_local", r[3])
                     .num("drop_malformed", r[4])
                     .num("decap_gue", r[XDEC_R_DECAP_GUE])
                     .num("forward", r[XDEC_R_FORWARD])
                     .num("forward_stack", r[XDEC_R_FORWARD_STACK])
                     .num("syncookie", r[XDEC_R_SYNCOOKIE])
                     .text(fmt::format("detached from {}: decapsulated {} IPv4 + {} IPv6 + {} GUE, forwarded {} to the "
                                       "previous backend ({} through the stack), passed {}, dropped {}",
                                       o.interface, r[0], r[1], r[XDEC_R_DECAP_GUE], r[XDEC_R_FORWARD] + r[XDEC_R_FORWARD_STACK],
                                       r[XDEC_R_FORWARD_STACK], r[2] + r[3], r[4])));
    return edge::exit_ok;
}

int run_status(const Options& o, const edge::cli::Globals& g, edge::out::Output& out) {
    (void)g;
    require_bpf();
    Maps m = pinned_maps(o.interface);
    int ifindex = ifindex_of(o.interface);
    LIBBPF_OPTS(bpf_xdp_query_opts, q);
    bpf_xdp_query(ifindex, 0, &q);
    xlb_config cfg{};
    uint32_t zero = 0;
    bpf_map_lookup_elem(m.config, &zero, &cfg);
    std::vector<std::pair<std::string, xlb_service>> svcs;
    xlb_vip_key k{}, next{};
    void* prev = nullptr;
    while (bpf_map_get_next_key(m.services, prev, &next) == 0) {
        k = next;
        prev = &k;
        xlb_service sv{};
        if (bpf_map_lookup_elem(m.services, &k, &sv) == 0) svcs.push_back({vip_key_name(k), sv});
    }
    std::sort(svcs.begin(), svcs.end(), [](auto& a, auto& b) { return a.first < b.first; });
    out.emit(edge::out::Record("lb_status")
                 .str("interface", o.interface)
                 .num("prog_id", uint64_t{q.prog_id})
                 .str("mode", edge::bpf::xdp_mode_name(q.attach_mode))
                 .num("services", static_cast<uint64_t>(svcs.size()))
                 .num("quic_server_id_bytes", unsigned{cfg.quic_sid_len})
                 .text(fmt::format("{}: xdp-lb prog {} ({} XDP), {} services", o.interface, q.prog_id,
                                   edge::bpf::xdp_mode_name(q.attach_mode), svcs.size())));
    // Reverse QUIC map: backend id -> server id.
    std::map<uint32_t, uint32_t> sid_of;
    {
        uint32_t kk = 0, nk = 0;
        void* p = nullptr;
        while (bpf_map_get_next_key(m.quic_ids, p, &nk) == 0) {
            kk = nk;
            p = &kk;
            uint32_t bid;
            if (bpf_map_lookup_elem(m.quic_ids, &kk, &bid) == 0) sid_of[bid] = kk;
        }
    }
    for (auto& [name, sv] : svcs) {
        std::map<uint32_t, uint64_t> slots, prev_slots;
        for (uint32_t i = 0; i < sv.ring_size; i++) {
            uint32_t key = sv.ring_base + i, slot = XLB_RING_NONE;
            bpf_map_lookup_elem(m.ring, &key, &slot);
            slots[XLB_RING_CUR(slot)]++;
            if (XLB_RING_PREV(slot) != XLB_RING_NONE) prev_slots[XLB_RING_PREV(slot)]++;
        }
        std::vector<edge::out::Record> bes;
        std::string text = fmt::format("{} (id {}, table {}{}{})", name, sv.id, sv.ring_size, sv.flags & XLB_SVC_QUIC ? ", quic" : "",
                                       sv.flags & XLB_SVC_DAISY ? ", daisy chaining" : "");
        for (auto& [bid, n] : slots) {
            xlb_backend be{};
            uint32_t id = bid;
            if (bpf_map_lookup_elem(m.backends, &id, &be) != 0 || !be.family) continue;
            auto r = edge::out::Record("backend");
            r.str("backend", backend_addr(be).to_string()).num("slots", n).real("share", ratio(n, sv.ring_size));
            r.num("previous_slots", prev_slots.count(bid) ? prev_slots[bid] : uint64_t{0});
            if ((sv.flags & XLB_SVC_QUIC) && sid_of.count(bid)) r.num("server_id", uint64_t{sid_of[bid]});
            bes.push_back(r);
            text += fmt::format("\n  {} slots {} ({:.1f}%)", backend_addr(be).to_string(), n, 100.0 * ratio(n, sv.ring_size));
        }
        out.emit(edge::out::Record("lb_service")
                     .str("service", name)
                     .num("id", uint64_t{sv.id})
                     .boolean("quic", sv.flags & XLB_SVC_QUIC)
                     .boolean("daisy_chain", sv.flags & XLB_SVC_DAISY)
                     .num("table_size", uint64_t{sv.ring_size})
                     .objects("backends", bes)
                     .text(text));
    }
    return edge::exit_ok;
}

int run_stats(const Options& o, const edge::cli::Globals& g, edge::out::Output& out) {
    (void)g;
    require_bpf();
    Maps m = pinned_maps(o.interface);
    Snapshot a = snapshot(m), b = a;
    double secs = o.watch;
    if (secs > 0) {
        std::this_thread::sleep_for(std::chrono::duration<double>(secs));
        b = snapshot(m);
    }
    auto rate = [&](uint64_t x, uint64_t y) { return secs > 0 ? static_cast<double>(y - x) / secs : 0.0; };
    for (size_t i = 0; i < b.services.size(); i++) {
        auto& [name, v] = b.services[i];
        const xlb_svc_stats& s = v.second;
        xlb_svc_stats p{};
        for (auto& x : a.services)
            if (x.first == name) p = x.second.second;
        auto r = edge::out::Record("lb_service_stats");
        r.str("service", name).num("packets", s.packets).num("bytes", s.bytes).num("new_flows", s.new_flows);
        r.num("ct_hits", s.ct_hits).num("ct_misses", s.ct_misses).real("ct_hit_ratio", ratio(s.ct_hits, s.ct_hits + s.ct_misses));
        r.num("quic_cid", s.quic_cid).num("drops", s.drops);
        std::string text = fmt::format("{}: {} packets, {} bytes, {} new flows, conntrack hit ratio {:.3f}, {} drops", name,
                                       s.packets, s.bytes, s.new_flows, ratio(s.ct_hits, s.ct_hits + s.ct_misses), s.drops);
        if (secs > 0) {
            r.real("pps", rate(p.packets, s.packets)).real("bps", 8 * rate(p.bytes, s.bytes)).real("new_flows_per_s", rate(p.new_flows, s.new_flows));
            text += fmt::format(" | {:.0f} pps {:.0f} bps", rate(p.packets, s.packets), 8 * rate(p.bytes, s.bytes));
        }
        out.emit(r.text(text));
    }
    for (auto& [name, v] : b.backends) {
        const xlb_be_stats& s = v.second;
        xlb_be_stats p{};
        for (auto& x : a.backends)
            if (x.first == name) p = x.second.second;
        auto r = edge::out::Record("lb_backend_stats");
        r.str("backend", name).num("packets", s.packets).num("bytes", s.bytes).num("new_flows", s.new_flows);
        std::string text = fmt::format("backend {}: {} packets, {} bytes, {} new flows", name, s.packets, s.bytes, s.new_flows);
        if (secs > 0) {
            r.real("pps", rate(p.packets, s.packets)).real("bps", 8 * rate(p.bytes, s.bytes));
            text += fmt::format(" | {:.0f} pps", rate(p.packets, s.packets));
        }
        out.emit(r.text(text));
    }
    auto r = edge::out::Record("lb_reasons");
    std::string text = "packets by reason:";
    for (uint32_t i = 0; i < XLB_R_COUNT; i++) {
        r.num(reason_name(i), b.reasons[i]);
        text += fmt::format(" {}={}", reason_name(i), b.reasons[i]);
    }
    out.emit(r.text(text));
    return edge::exit_ok;
}

}  // namespace xlb
