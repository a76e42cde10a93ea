// synflood-guard run / status / stats / block / unblock: the live side.
#include <linux/if_link.h>
#include <net/if.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/vfs.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <thread>

#include "bpf/xdp.hpp"
#include "guard.hpp"
#include "options.hpp"
#include "out/record.hpp"
#include "synflood.skel.h"

namespace sfg {

namespace fs = std::filesystem;
using edge::out::Record;

namespace {
const char* kSyncookies = "/proc/sys/net/ipv4/tcp_syncookies";

std::string pin_dir(const std::string& ifname) { return "/sys/fs/bpf/edge/synflood-guard/" + ifname; }

using edge::bpf::attached_prog;
using edge::bpf::ensure_bpffs;
using edge::bpf::ifindex_of;
using edge::bpf::require_bpf;

void log_event(const edge::cli::Globals& g, const Record& r) { edge::out::event(r, g.json); }

std::string read_sysctl(const std::string& path) {
    std::ifstream f(path);
    std::string v;
    f >> v;
    return v;
}
bool write_sysctl(const std::string& path, const std::string& v) {
    std::ofstream f(path);
    f << v;
    f.flush();
    return static_cast<bool>(f);
}

Maps pinned_maps(const std::string& ifname) {
    Maps m;
    std::string dir = pin_dir(ifname);
    if (!fs::exists(dir)) {
        ifindex_of(ifname);
        edge::usage_error("no synflood-guard running on {} (no pins in {}): start one with synflood-guard -c guard.toml run -i {}",
                          ifname, dir, ifname);
    }
    for (int i = 0; i < kMapCount; i++) {
        int fd = bpf_obj_get((dir + "/" + kMapNames[i]).c_str());
        if (fd < 0) edge::failure("cannot open {}/{}: {}", dir, kMapNames[i], std::strerror(errno));
        *map_slot(m, i) = fd;
    }
    return m;
}

GuardConfig load_config(const edge::cli::Globals& g) {
    if (g.config.empty()) edge::usage_error("no configuration: give -c guard.toml with [guard] and [[protect]] tables");
    auto c = parse_config(edge::config::load(g.config));
    if (c.protect.empty()) edge::usage_error("{}: no [[protect]] tables: nothing to protect", g.config);
    return c;
}

std::string prefix_name(const sfg_dst_key& k) {
    uint16_t port = ntohs(k.port);
    auto p = key_prefix(k).to_string();
    return port ? fmt::format("{} port {}", p, port) : p;
}

Record mitigation(const ProtectCfg& p, const Adaptive& a, bool withdraw, const std::string& ifname) {
    Record r("mitigation");
    r.str("action", "flowspec").str("prefix", p.prefix.to_string()).str("protocol", "tcp");
    if (p.port) r.num("dst_port", unsigned{p.port});
    r.str("tcp_flags", "syn&!ack").num("rate_bytes_per_s", 0).str("reason", "syn_flood");
    r.str("state", withdraw ? "stop" : "start").boolean("withdraw", withdraw).str("interface", ifname);
    r.object("evidence", Record("evidence")
                             .real("peak_syn_pps", a.peak)
                             .real("threshold_pps", a.threshold)
                             .real("baseline_pps", a.baseline));
    r.text(fmt::format("mitigation: {} flowspec destination {} protocol tcp{} tcp-flags syn&!ack rate 0",
                       withdraw ? "withdraw" : "announce", p.prefix.to_string(),
                       p.port ? fmt::format(" destination-port {}", p.port) : ""));
    return r;
}
}  // namespace

int run_run(const Options& o, const edge::cli::Globals& g, edge::out::Output& out) {
    GuardConfig c = load_config(g);
    int ifindex = ifindex_of(o.interface);
    require_bpf();
    ensure_bpffs();
    std::string dir = pin_dir(o.interface);
    if (fs::exists(dir)) {
        if (attached_prog(ifindex))
            edge::usage_error("synflood-guard already runs on {} (pins in {}); stop it first", o.interface, dir);
        fs::remove_all(dir);  // left by a process that was killed
    }
    synflood* s = synflood__open_and_load();
    if (!s) edge::failure("cannot load the BPF program: {}", std::strerror(errno));
    std::unique_ptr<synflood, void (*)(synflood*)> guard(s, synflood__destroy);
    Maps maps = skel_maps(s);
    apply(maps, c);
    fs::create_directories(dir);
    for (int i = 0; i < kMapCount; i++) {
        struct bpf_map* m = bpf_object__find_map_by_name(s->obj, kMapNames[i]);
        if (!m || bpf_map__pin(m, (dir + "/" + kMapNames[i]).c_str()) != 0)
            edge::failure("cannot pin {} in {}: {}", kMapNames[i], dir, std::strerror(errno));
    }
    if (c.urpf != SFG_URPF_OFF &&
        read_sysctl(fmt::format("/proc/sys/net/ipv4/conf/{}/forwarding", o.interface)) == "0")
        edge::out::warn(fmt::format("uRPF needs forwarding on {} (bpf_fib_lookup refuses otherwise): "
                                    "sysctl -w net.ipv4.conf.{}.forwarding=1; packets pass unchecked until then",
                                    o.interface, o.interface));

    // SYN cookies from XDP need net.ipv4.tcp_syncookies=2 while a destination is in cookie mode.
    const std::string orig_syncookies = read_sysctl(kSyncookies);
    bool syncookies_set = false;
    auto want_cookies = [&](bool on) {
        if (!c.set_syncookies) return;
        if (on && !syncookies_set) {
            if (orig_syncookies != "2" && !write_sysctl(kSyncookies, "2"))
                edge::out::warn("cannot set net.ipv4.tcp_syncookies=2: cookie SYN-ACKs will not be sent");
            syncookies_set = true;
        } else if (!on && syncookies_set) {
            if (orig_syncookies != "2") write_sysctl(kSyncookies, orig_syncookies);
            syncookies_set = false;
        }
    };
    bool any_always = false;
    for (auto& p : c.protect) any_always |= p.cookie == CookieMode::always;
    want_cookies(any_always);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    uint32_t flags;
    try {
        flags = edge::bpf::attach_xdp(ifindex, bpf_program__fd(s->progs.synflood), o.interface, o.mode);
    } catch (...) {
        fs::remove_all(dir);
        want_cookies(false);
        throw;
    }
    log_event(g, Record("guard_event")
                     .str("event", "attached")
                     .str("interface", o.interface)
                     .str("mode", flags & XDP_FLAGS_DRV_MODE ? "native" : "generic")
                     .num("protected", static_cast<uint64_t>(c.protect.size()))
                     .text(fmt::format("attached to {} ({} XDP), {} protected destinations", o.interface,
                                       flags & XDP_FLAGS_DRV_MODE ? "native" : "generic", c.protect.size())));

    std::vector<Adaptive> st(c.protect.size());
    auto last = std::chrono::steady_clock::now();
    for (uint32_t i = 0; i < c.protect.size(); i++) st[i].last_syn = dst_stats(maps, i).syn;
    int rc = edge::exit_ok;
    timespec ts{static_cast<time_t>(o.interval), static_cast<long>((o.interval - static_cast<double>(static_cast<time_t>(o.interval))) * 1e9)};
    while (true) {
        int sig = sigtimedwait(&set, nullptr, &ts);
        if (sig == SIGTERM || sig == SIGINT) break;
        if (sig == SIGHUP) {
            log_event(g, Record("guard_event").str("event", "reload_ignored").text("SIGHUP: reloading is not supported; restart to apply a new config"));
            continue;
        }
        if (sig < 0 && errno != EAGAIN && errno != EINTR) {
            rc = edge::exit_failure;
            break;
        }
        auto now = std::chrono::steady_clock::now();
        double dt = std::chrono::duration<double>(now - last).count();
        if (dt < o.interval * 0.5) continue;
        last = now;
        bool any_flooded = any_always;
        for (uint32_t i = 0; i < c.protect.size(); i++) {
            const ProtectCfg& p = c.protect[i];
            Adaptive& a = st[i];
            uint64_t syn = dst_stats(maps, i).syn;
            double rate = static_cast<double>(syn - a.last_syn) / dt;
            a.last_syn = syn;
            auto change = a.update(rate, p.floor_syn_pps.value_or(c.floor_syn_pps), c.factor,
                                   static_cast<uint32_t>(c.window_s / o.interval), static_cast<uint32_t>(c.calm_s / o.interval) + 1);
            auto d = get_dest(maps, p);
            if (!d) continue;
            d->threshold_pps = static_cast<uint64_t>(a.threshold);
            if (change == Adaptive::Change::flood_start) {
                if (p.cookie == CookieMode::automatic) d->flags |= SFG_D_COOKIE;
                if (p.flood_syn_pps) d->syn_pps = p.flood_syn_pps;
                want_cookies(true);
                log_event(g, Record("guard_event")
                                 .str("event", "flood_start")
                                 .str("destination", p.name())
                                 .real("syn_pps", rate)
                                 .real("threshold_pps", a.threshold)
                                 .boolean("cookies", d->flags & SFG_D_COOKIE)
                                 .text(fmt::format("SYN flood on {}: {:.0f} SYN/s over the threshold {:.0f}{}", p.name(),
                                                   rate, a.threshold, d->flags & SFG_D_COOKIE ? ": answering with SYN cookies" : "")));
                out.emit(mitigation(p, a, false, o.interface));
            } else if (change == Adaptive::Change::flood_end) {
                if (p.cookie == CookieMode::automatic) d->flags &= ~uint32_t{SFG_D_COOKIE};
                d->syn_pps = p.syn_pps;
                log_event(g, Record("guard_event")
                                 .str("event", "flood_end")
                                 .str("destination", p.name())
                                 .real("peak_syn_pps", a.peak)
                                 .text(fmt::format("SYN flood on {} is over (peak {:.0f} SYN/s)", p.name(), a.peak)));
                out.emit(mitigation(p, a, true, o.interface));
            }
            any_flooded |= a.flooded;
            set_dest(maps, p, *d);
        }
        want_cookies(any_flooded);
    }
    edge::bpf::detach_xdp(ifindex, flags, bpf_program__fd(s->progs.synflood));
    fs::remove_all(dir);
    want_cookies(false);
    log_event(g, Record("guard_event").str("event", "detached").str("interface", o.interface).text(
                     fmt::format("detached from {}", o.interface)));
    return rc;
}

int run_status(const Options& o, const edge::cli::Globals& g, edge::out::Output& out) {
    (void)g;
    require_bpf();
    Maps m = pinned_maps(o.interface);
    uint8_t mode = 0;
    uint32_t prog = attached_prog(ifindex_of(o.interface), &mode);
    uint32_t zero = 0;
    sfg_config cfg{};
    bpf_map_lookup_elem(m.config, &zero, &cfg);
    static const char* const urpf[] = {"off", "loose", "strict"};
    std::vector<std::pair<uint32_t, Record>> dests;
    sfg_dst_key k{}, next{};
    void* prev = nullptr;
    while (bpf_map_get_next_key(m.protect, prev, &next) == 0) {
        k = next;
        prev = &k;
        sfg_dest d{};
        if (bpf_map_lookup_elem(m.protect, &k, &d) != 0) continue;
        Record r("guard_destination");
        r.str("destination", prefix_name(k)).num("id", unsigned{d.id});
        r.str("mode", d.flags & SFG_D_COOKIE ? "cookie" : "pass").num("threshold_pps", d.threshold_pps);
        r.num("syn_pps_limit", d.syn_pps).num("syn_bps_limit", d.syn_Bps * 8);
        r.text(fmt::format("  {} (id {}): {}, flood threshold {} SYN/s{}", prefix_name(k), d.id,
                           d.flags & SFG_D_COOKIE ? "SYN cookies" : "passing SYNs", d.threshold_pps,
                           d.syn_pps ? fmt::format(", SYN budget {}/s", d.syn_pps) : ""));
        dests.push_back({d.id, r});
    }
    std::sort(dests.begin(), dests.end(), [](auto& a, auto& b) { return a.first < b.first; });
    auto list = [&](int fd) {
        std::vector<std::string> v;
        sfg_src_key a{}, n{};
        void* p = nullptr;
        while (bpf_map_get_next_key(fd, p, &n) == 0) {
            a = n;
            p = &a;
            v.push_back(key_prefix(a).to_string());
        }
        std::sort(v.begin(), v.end());
        return v;
    };
    auto allow = list(m.allow), deny = list(m.deny);
    out.emit(Record("guard_status")
                 .str("interface", o.interface)
                 .num("prog_id", unsigned{prog})
                 .str("mode", edge::bpf::xdp_mode_name(mode))
                 .str("urpf", urpf[cfg.urpf % 3])
                 .num("src_pps_limit", cfg.src_pps)
                 .num("src_bps_limit", cfg.src_Bps * 8)
                 .num("protected", static_cast<uint64_t>(dests.size()))
                 .strings("allow", allow)
                 .strings("deny", deny)
                 .text(fmt::format("{}: synflood-guard prog {} ({} XDP), uRPF {}, {} protected, {} allowed, {} denied prefixes",
                                   o.interface, prog, edge::bpf::xdp_mode_name(mode), urpf[cfg.urpf % 3], dests.size(), allow.size(),
                                   deny.size())));
    for (auto& [id, r] : dests) out.emit(r);
    return edge::exit_ok;
}

int run_stats(const Options& o, const edge::cli::Globals& g, edge::out::Output& out) {
    (void)g;
    require_bpf();
    Maps m = pinned_maps(o.interface);
    struct Snap {
        std::vector<uint64_t> reasons;
        std::map<uint32_t, std::pair<std::string, sfg_dst_stats>> dests;
    };
    auto snap = [&] {
        Snap s;
        for (uint32_t r = 0; r < SFG_R_COUNT; r++) s.reasons.push_back(percpu_sum(m.reasons, r, 1)[0]);
        sfg_dst_key k{}, next{};
        void* prev = nullptr;
        while (bpf_map_get_next_key(m.protect, prev, &next) == 0) {
            k = next;
            prev = &k;
            sfg_dest d{};
            if (bpf_map_lookup_elem(m.protect, &k, &d) == 0) s.dests[d.id] = {prefix_name(k), dst_stats(m, d.id)};
        }
        return s;
    };
    Snap a = snap(), b = a;
    double secs = o.watch;
    if (secs > 0) {
        std::this_thread::sleep_for(std::chrono::duration<double>(secs));
        b = snap();
    }
    auto rate = [&](uint64_t x, uint64_t y) { return secs > 0 ? static_cast<double>(y - x) / secs : 0.0; };
    for (auto& [id, v] : b.dests) {
        const sfg_dst_stats& s = v.second;
        sfg_dst_stats p = a.dests.count(id) ? a.dests[id].second : sfg_dst_stats{};
        Record r("guard_destination_stats");
        r.str("destination", v.first).num("packets", s.packets).num("bytes", s.bytes).num("syn", s.syn);
        r.num("cookies", s.cookies).num("cookie_ok", s.cookie_ok).num("cookie_bad", s.cookie_bad).num("drops", s.drops);
        std::string text = fmt::format("{}: {} packets, {} SYN, {} cookies sent, {} valid / {} forged cookie ACKs, {} drops",
                                       v.first, s.packets, s.syn, s.cookies, s.cookie_ok, s.cookie_bad, s.drops);
        if (secs > 0) {
            r.real("pps", rate(p.packets, s.packets)).real("bps", 8 * rate(p.bytes, s.bytes));
            r.real("syn_pps", rate(p.syn, s.syn)).real("cookies_per_s", rate(p.cookies, s.cookies));
            r.real("drops_per_s", rate(p.drops, s.drops));
            text += fmt::format(" | {:.0f} pps, {:.0f} SYN/s, {:.0f} drops/s", rate(p.packets, s.packets),
                                rate(p.syn, s.syn), rate(p.drops, s.drops));
        }
        out.emit(r.text(text));
    }
    Record r("guard_reasons");
    std::string text = "packets by reason:";
    for (uint32_t i = 0; i < SFG_R_COUNT; i++) {
        r.num(reason_name(i), b.reasons[i]);
        text += fmt::format(" {}={}", reason_name(i), b.reasons[i]);
    }
    out.emit(r.text(text));
    return edge::exit_ok;
}

namespace {
int block_op(const Options& o, const edge::cli::Globals& g, edge::out::Output& out, bool add) {
    (void)g;
    auto p = Prefix::parse(o.prefix);
    if (!p) edge::usage_error("bad prefix '{}': {}", o.prefix, p.error());
    require_bpf();
    Maps m = pinned_maps(o.interface);
    auto k = src_key(*p);
    uint32_t one = 1;
    if (add) {
        check(bpf_map_update_elem(m.deny, &k, &one, BPF_ANY), "writing sfg_deny");
    } else if (bpf_map_delete_elem(m.deny, &k) != 0) {
        edge::usage_error("{} is not on the deny list of {} (see synflood-guard status -i {})", p->to_string(),
                          o.interface, o.interface);
    }
    out.emit(Record("guard_event")
                 .str("event", add ? "blocked" : "unblocked")
                 .str("prefix", p->to_string())
                 .str("interface", o.interface)
                 .text(fmt::format("{} {} on {}", add ? "blocked" : "unblocked", p->to_string(), o.interface)));
    return edge::exit_ok;
}
}  // namespace

int run_block(const Options& o, const edge::cli::Globals& g, edge::out::Output& out) { return block_op(o, g, out, true); }
int run_unblock(const Options& o, const edge::cli::Globals& g, edge::out::Output& out) { return block_op(o, g, out, false); }

}  // namespace sfg
