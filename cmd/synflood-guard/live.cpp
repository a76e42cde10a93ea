// synflood-guard run / status / stats / block / unblock: the live side.
#include <linux/if_link.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <thread>

#include "bgp/session.hpp"
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
const char* kTimestamps = "/proc/sys/net/ipv4/tcp_timestamps";

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
        if (fd < 0 && i == kPrefilterSlot && errno == ENOENT) continue;
        if (fd >= 0 && i == kPrefilterSlot) {  // a layout this build does not know: leave it alone
            bpf_map_info info{};
            uint32_t len = sizeof info;
            if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0 || info.value_size != sizeof(sfg_pf) ||
                info.max_entries != SFG_PF_ENTRIES + 1) {
                close(fd);
                continue;
            }
        }
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

namespace {
// ---- records shared by the CLI commands (pinned maps) and the control socket -------

std::vector<Record> status_records(const Maps& m, const std::string& ifname) {
    uint8_t mode = 0;
    uint32_t prog = attached_prog(ifindex_of(ifname), &mode);
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
    std::vector<std::string> opts;
    if (cfg.cookie_opts & SFG_O_TS) opts.push_back("timestamps");
    if (cfg.cookie_opts & SFG_O_SACK) opts.push_back("sack");
    if (cfg.cookie_opts & SFG_O_WS) opts.push_back(fmt::format("wscale={}", cfg.wscale));
    std::vector<Record> out;
    out.push_back(Record("guard_status")
                      .str("interface", ifname)
                      .num("prog_id", unsigned{prog})
                      .str("mode", edge::bpf::xdp_mode_name(mode))
                      .str("urpf", urpf[cfg.urpf % 3])
                      .num("src_pps_limit", cfg.src_pps)
                      .num("src_bps_limit", cfg.src_Bps * 8)
                      .num("protected", static_cast<uint64_t>(dests.size()))
                      .strings("allow", allow)
                      .strings("deny", deny)
                      .strings("cookie_options", opts)
                      .text(fmt::format("{}: synflood-guard prog {} ({} XDP), uRPF {}, {} protected, {} allowed, {} denied prefixes, "
                                        "cookie SYN-ACK options: MSS{}{}",
                                        ifname, prog, edge::bpf::xdp_mode_name(mode), urpf[cfg.urpf % 3], dests.size(),
                                        allow.size(), deny.size(), opts.empty() ? "" : " ", fmt::join(opts, " "))));
    for (auto& [id, r] : dests) out.push_back(r);
    return out;
}

struct StatsSnap {
    std::vector<uint64_t> reasons;
    std::map<uint32_t, std::pair<std::string, sfg_dst_stats>> dests;
};
StatsSnap stats_snap(const Maps& m) {
    StatsSnap s;
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
}

std::vector<Record> stats_records(const StatsSnap& a, const StatsSnap& b, double secs) {
    std::vector<Record> out;
    auto rate = [&](uint64_t x, uint64_t y) { return secs > 0 ? static_cast<double>(y - x) / secs : 0.0; };
    for (auto& [id, v] : b.dests) {
        const sfg_dst_stats& s = v.second;
        sfg_dst_stats p = a.dests.count(id) ? a.dests.at(id).second : sfg_dst_stats{};
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
        out.push_back(r.text(text));
    }
    Record r("guard_reasons");
    std::string text = "packets by reason:";
    for (uint32_t i = 0; i < SFG_R_COUNT; i++) {
        r.num(reason_name(i), b.reasons[i]);
        text += fmt::format(" {}={}", reason_name(i), b.reasons[i]);
    }
    out.push_back(r.text(text));
    return out;
}

// block / unblock on the deny list; usage errors for a bad prefix or a missing entry.
Record block_record(const Maps& m, const std::string& prefix, const std::string& ifname, bool add) {
    auto p = Prefix::parse(prefix);
    if (!p) edge::usage_error("bad prefix '{}': {}", prefix, p.error());
    auto k = src_key(*p);
    uint32_t one = 1;
    if (add) {
        check(bpf_map_update_elem(m.deny, &k, &one, BPF_ANY), "writing sfg_deny");
    } else if (bpf_map_delete_elem(m.deny, &k) != 0) {
        edge::usage_error("{} is not on the deny list of {} (see synflood-guard status -i {})", p->to_string(), ifname, ifname);
    }
    sync_prefilter(m);
    return Record("guard_event")
        .str("event", add ? "blocked" : "unblocked")
        .str("prefix", p->to_string())
        .str("interface", ifname)
        .text(fmt::format("{} {} on {}", add ? "blocked" : "unblocked", p->to_string(), ifname));
}

// ---- the running guard ---------------------------------------------------------------

struct LiveDest {
    ProtectCfg cfg;
    uint32_t id = 0;
    Adaptive a;
};

std::string escape_label(const std::string& v) {
    std::string o;
    for (char c : v) {
        if (c == '"' || c == '\\') o += '\\';
        o += c == '\n' ? ' ' : c;
    }
    return o;
}

// Prometheus text exposition of the counters and the adaptive state.
std::string metrics_text(const Maps& m, const std::vector<LiveDest>& dests, const std::string& ifname, uint64_t reloads) {
    StatsSnap s = stats_snap(m);
    std::string t;
    std::string ifl = escape_label(ifname);
    t += "# HELP synflood_guard_packets_total Packets seen by the XDP guard, by verdict reason.\n";
    t += "# TYPE synflood_guard_packets_total counter\n";
    for (uint32_t i = 0; i < SFG_R_COUNT; i++)
        t += fmt::format("synflood_guard_packets_total{{interface=\"{}\",reason=\"{}\"}} {}\n", ifl, reason_name(i), s.reasons[i]);
    struct Field {
        const char* name;
        const char* help;
        uint64_t sfg_dst_stats::*f;
    };
    static const Field fields[] = {
        {"destination_packets_total", "Packets to a protected destination.", &sfg_dst_stats::packets},
        {"destination_bytes_total", "Bytes to a protected destination.", &sfg_dst_stats::bytes},
        {"destination_syn_total", "SYNs to a protected destination.", &sfg_dst_stats::syn},
        {"destination_cookies_total", "SYN-ACKs with a SYN cookie sent from XDP.", &sfg_dst_stats::cookies},
        {"destination_cookie_ok_total", "ACKs with a valid cookie passed.", &sfg_dst_stats::cookie_ok},
        {"destination_cookie_bad_total", "ACKs with a forged cookie dropped.", &sfg_dst_stats::cookie_bad},
        {"destination_drops_total", "Packets to a protected destination dropped.", &sfg_dst_stats::drops},
    };
    for (auto& f : fields) {
        t += fmt::format("# HELP synflood_guard_{} {}\n# TYPE synflood_guard_{} counter\n", f.name, f.help, f.name);
        for (auto& [id, v] : s.dests)
            t += fmt::format("synflood_guard_{}{{interface=\"{}\",destination=\"{}\"}} {}\n", f.name, ifl,
                             escape_label(v.first), v.second.*f.f);
    }
    t += "# HELP synflood_guard_flooded 1 while the destination is under a SYN flood (cookie mode when automatic).\n";
    t += "# TYPE synflood_guard_flooded gauge\n";
    for (auto& d : dests)
        t += fmt::format("synflood_guard_flooded{{interface=\"{}\",destination=\"{}\"}} {}\n", ifl, escape_label(d.cfg.name()),
                         d.a.flooded ? 1 : 0);
    t += "# HELP synflood_guard_threshold_syn_pps The current flood threshold (SYN/s).\n";
    t += "# TYPE synflood_guard_threshold_syn_pps gauge\n";
    for (auto& d : dests)
        t += fmt::format("synflood_guard_threshold_syn_pps{{interface=\"{}\",destination=\"{}\"}} {}\n", ifl,
                         escape_label(d.cfg.name()), d.a.threshold);
    t += "# HELP synflood_guard_baseline_syn_pps The p95 of the calm SYN rate (SYN/s).\n";
    t += "# TYPE synflood_guard_baseline_syn_pps gauge\n";
    for (auto& d : dests)
        t += fmt::format("synflood_guard_baseline_syn_pps{{interface=\"{}\",destination=\"{}\"}} {}\n", ifl,
                         escape_label(d.cfg.name()), d.a.baseline);
    t += fmt::format("# HELP synflood_guard_reloads_total Configuration reloads applied.\n"
                     "# TYPE synflood_guard_reloads_total counter\nsynflood_guard_reloads_total{{interface=\"{}\"}} {}\n",
                     ifl, reloads);
    return t;
}

std::string read_request(int fd) {
    timeval tv{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string req;
    char buf[4096];
    while (req.size() < 65536) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
        if (req.find('\n') != std::string::npos) break;
    }
    return req;
}
void write_all(int fd, const std::string& s) {
    timeval tv{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    size_t off = 0;
    while (off < s.size()) {
        ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
    }
}

int unix_listen(const std::string& path) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.size() >= sizeof sa.sun_path) edge::usage_error("control socket path too long: {}", path);
    std::strcpy(sa.sun_path, path.c_str());
    struct stat st{};
    if (lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) edge::usage_error("control socket {}: exists and is not a socket", path);
        unlink(path.c_str());  // left by a guard that was killed (run refuses a second guard earlier)
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(fd, 16) != 0)
        edge::failure("cannot listen on control socket {}: {}", path, std::strerror(errno));
    chmod(path.c_str(), 0600);
    return fd;
}

// Ids for a new [[protect]] list: an entry that stays keeps its id and adaptive state.
std::vector<LiveDest> match_dests(const std::vector<LiveDest>& old, const std::vector<ProtectCfg>& next) {
    std::vector<LiveDest> out(next.size());
    std::vector<bool> used(SFG_MAX_PROTECTED, false), taken(next.size(), false);
    for (size_t i = 0; i < next.size(); i++) {
        out[i].cfg = next[i];
        for (auto& o : old)
            if (o.cfg.prefix == next[i].prefix && o.cfg.port == next[i].port) {
                out[i].id = o.id;
                out[i].a = o.a;
                used[o.id] = true;
                taken[i] = true;
            }
    }
    uint32_t id = 0;
    for (size_t i = 0; i < next.size(); i++) {
        if (taken[i]) continue;
        while (used[id]) id++;
        out[i].id = id;
        used[id] = true;
    }
    return out;
}

// Writes one protected entry in its current state (flood mode, limits).
void write_dest(const Maps& m, const LiveDest& d, bool fresh) {
    sfg_dest v{};
    v.id = d.id;
    bool cookie = d.cfg.cookie == CookieMode::always || (d.cfg.cookie == CookieMode::automatic && d.a.flooded);
    v.flags = cookie ? SFG_D_COOKIE : 0;
    v.syn_pps = d.a.flooded && d.cfg.flood_syn_pps ? d.cfg.flood_syn_pps : d.cfg.syn_pps;
    v.syn_Bps = d.cfg.syn_bps / 8;
    v.threshold_pps = static_cast<uint64_t>(d.a.threshold);
    auto k = dst_key(d.cfg);
    check(bpf_map_update_elem(m.protect, &k, &v, BPF_ANY), "writing sfg_protect");
    if (fresh) {
        sfg_bucket b{};
        b.pkt_tokens = v.syn_pps * SFG_NSEC;
        b.byte_tokens = v.syn_Bps * SFG_NSEC;
        check(bpf_map_update_elem(m.dst_bkt, &d.id, &b, BPF_ANY), "writing sfg_dst_bkt");
        edge::bpf::percpu_zero(m.dst_stats, d.id, sizeof(sfg_dst_stats) / 8);
    }
    bump_protect_gen(m);  // after the bucket: a cached "bucket short" goes with it
}

// Applies a new configuration to a running guard: global limits, the configured
// allow/deny entries (entries added with `block` stay), protected destinations.
void reload_config(const Maps& m, const GuardConfig& old, const GuardConfig& c, std::vector<LiveDest>& dests) {
    uint32_t zero = 0;
    sfg_config cfg = config_value(c);
    check(bpf_map_update_elem(m.config, &zero, &cfg, BPF_ANY), "writing sfg_config");
    auto sync = [&](int fd, const std::vector<Prefix>& was, const std::vector<Prefix>& now, const char* what) {
        uint32_t one = 1;
        for (auto& p : was)
            if (std::find(now.begin(), now.end(), p) == now.end()) {
                auto k = src_key(p);
                bpf_map_delete_elem(fd, &k);
            }
        for (auto& p : now) {
            auto k = src_key(p);
            check(bpf_map_update_elem(fd, &k, &one, BPF_ANY), what);
        }
    };
    sync(m.allow, old.allow, c.allow, "writing sfg_allow");
    sync(m.deny, old.deny, c.deny, "writing sfg_deny");
    auto next = match_dests(dests, c.protect);
    for (auto& d : dests) {
        bool stays = std::any_of(next.begin(), next.end(), [&](const LiveDest& n) {
            return n.cfg.prefix == d.cfg.prefix && n.cfg.port == d.cfg.port;
        });
        if (!stays) {
            auto k = dst_key(d.cfg);
            bpf_map_delete_elem(m.protect, &k);
        }
    }
    for (auto& n : next) {
        auto was = std::find_if(dests.begin(), dests.end(), [&](const LiveDest& d) {
            return d.cfg.prefix == n.cfg.prefix && d.cfg.port == n.cfg.port;
        });
        bool fresh = was == dests.end() || was->cfg.syn_pps != n.cfg.syn_pps || was->cfg.syn_bps != n.cfg.syn_bps ||
                     was->cfg.flood_syn_pps != n.cfg.flood_syn_pps;
        if (was == dests.end()) n.a = Adaptive{};
        write_dest(m, n, fresh && was == dests.end());
        if (fresh && was != dests.end()) {  // new limits: a full bucket at the new rate
            sfg_bucket b{};
            b.pkt_tokens = n.cfg.syn_pps * SFG_NSEC;
            b.byte_tokens = n.cfg.syn_bps / 8 * SFG_NSEC;
            check(bpf_map_update_elem(m.dst_bkt, &n.id, &b, BPF_ANY), "writing sfg_dst_bkt");
        }
        n.a.last_syn = dst_stats(m, n.id).syn;
    }
    sync_prefilter(m);
    bump_protect_gen(m);
    dests = std::move(next);
}
}  // namespace

int run_run(const Options& o, const edge::cli::Globals& g, edge::out::Output& out) {
    GuardConfig c = load_config(g);
    std::string control_path = o.control_socket.empty() ? c.control_socket : o.control_socket;
    std::string metrics_addr = o.metrics.empty() ? c.metrics : o.metrics;
    std::optional<edge::net::Endpoint> metrics_ep;
    if (!metrics_addr.empty()) {
        auto ep = edge::net::Endpoint::parse(metrics_addr);
        if (!ep) edge::usage_error("--metrics '{}': {} (expected ADDR:PORT, e.g. 127.0.0.1:9105)", metrics_addr, ep.error());
        metrics_ep = *ep;
    }
    int ifindex = ifindex_of(o.interface);
    require_bpf();
    ensure_bpffs();
    std::string dir = pin_dir(o.interface);
    if (fs::exists(dir)) {
        if (attached_prog(ifindex))
            edge::usage_error("synflood-guard already runs on {} (pins in {}); stop it first", o.interface, dir);
        fs::remove_all(dir);  // left by a process that was killed
    }
    // Window scaling and SACK in cookie SYN-ACKs need timestamps without the kernel's
    // secret per-connection offset (tcp_timestamps=2): set it for our run when asked.
    const std::string orig_timestamps = read_sysctl(kTimestamps);
    bool timestamps_set = false;
    if (c.set_timestamps && orig_timestamps == "1") {
        if (write_sysctl(kTimestamps, "2")) timestamps_set = true;
        else edge::out::warn("cannot set net.ipv4.tcp_timestamps=2: cookie SYN-ACKs carry only MSS");
    }
    struct RestoreTs {
        bool& set;
        const std::string& orig;
        ~RestoreTs() {
            if (set) write_sysctl(kTimestamps, orig);
        }
    } restore_ts{timestamps_set, orig_timestamps};
    resolve_cookie_options(c);
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
    if (c.cookie_options && !(c.opts_resolved & SFG_O_TS))
        edge::out::info(fmt::format("cookie SYN-ACKs carry only MSS: {}", c.opts_note));

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
    auto any_always = [&] {
        return std::any_of(c.protect.begin(), c.protect.end(), [](auto& p) { return p.cookie == CookieMode::always; });
    };
    want_cookies(any_always());

    int control_fd = -1, metrics_fd = -1;
    auto close_sockets = [&] {
        if (control_fd >= 0) {
            close(control_fd);
            unlink(control_path.c_str());
            control_fd = -1;
        }
        if (metrics_fd >= 0) close(metrics_fd);
        metrics_fd = -1;
    };
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    uint32_t flags;
    try {
        if (!control_path.empty()) control_fd = unix_listen(control_path);
        if (metrics_ep) metrics_fd = edge::bgp::listen_on(*metrics_ep);
        flags = edge::bpf::attach_xdp(ifindex, bpf_program__fd(s->progs.synflood), o.interface, o.mode);
    } catch (...) {
        close_sockets();
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

    std::vector<LiveDest> dests(c.protect.size());
    for (uint32_t i = 0; i < c.protect.size(); i++) {
        dests[i].cfg = c.protect[i];
        dests[i].id = i;
        dests[i].a.last_syn = dst_stats(maps, i).syn;
    }
    uint64_t reloads = 0;
    auto reload = [&](const char* why) -> std::optional<std::string> {
        try {
            GuardConfig n = load_config(g);
            resolve_cookie_options(n);
            reload_config(maps, c, n, dests);
            n.control_socket = c.control_socket;  // sockets stay as started
            n.metrics = c.metrics;
            c = std::move(n);
            reloads++;
            log_event(g, Record("guard_event")
                             .str("event", "reloaded")
                             .str("trigger", why)
                             .num("protected", static_cast<uint64_t>(c.protect.size()))
                             .text(fmt::format("reloaded {} ({}): {} protected destinations, {} allowed, {} denied prefixes",
                                               g.config, why, c.protect.size(), c.allow.size(), c.deny.size())));
            return std::nullopt;
        } catch (const std::exception& e) {
            log_event(g, Record("guard_event")
                             .str("event", "reload_failed")
                             .str("trigger", why)
                             .str("error", e.what())
                             .text(fmt::format("reload failed, keeping the running configuration: {}", e.what())));
            return std::string(e.what());
        }
    };
    auto control = [&](int fd) {
        std::string req = read_request(fd);
        std::string line = req.substr(0, req.find('\n'));
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
        bool text = false;
        if (line.rfind("text ", 0) == 0) {
            text = true;
            line = line.substr(5);
        }
        std::vector<std::string> w;
        for (size_t i = 0; i < line.size();) {
            size_t j = line.find(' ', i);
            if (j == std::string::npos) j = line.size();
            if (j > i) w.push_back(line.substr(i, j - i));
            i = j + 1;
        }
        std::vector<Record> recs;
        std::string raw;
        std::optional<std::string> err;
        try {
            if (w.empty()) err = "empty command: status, stats, block PREFIX, unblock PREFIX, reload, metrics";
            else if (w[0] == "status" && w.size() == 1) recs = status_records(maps, o.interface);
            else if (w[0] == "stats" && w.size() == 1) {
                auto snap = stats_snap(maps);
                recs = stats_records(snap, snap, 0);
            } else if ((w[0] == "block" || w[0] == "unblock") && w.size() == 2)
                recs.push_back(block_record(maps, w[1], o.interface, w[0] == "block"));
            else if (w[0] == "reload" && w.size() == 1) err = reload("control socket");
            else if (w[0] == "metrics" && w.size() == 1) raw = metrics_text(maps, dests, o.interface, reloads);
            else err = fmt::format("unknown command '{}': status, stats, block PREFIX, unblock PREFIX, reload, metrics", line);
        } catch (const std::exception& e) {
            err = e.what();
        }
        std::string reply = raw;
        for (auto& r : recs) reply += (text ? r.text_line() : r.json()) + "\n";
        if (raw.empty()) {
            Record res("ctl_result");
            res.boolean("ok", !err).str("command", w.empty() ? "" : w[0]);
            if (err) res.str("error", *err);
            res.text(err ? "error: " + *err : "ok");
            if (text) {
                if (err) reply += "error: " + *err + "\n";
            } else {
                reply += res.json() + "\n";
            }
        }
        write_all(fd, reply);
    };

    // A calm rate joins the baseline 5 s after it was measured (Adaptive::update).
    const auto learn_delay = static_cast<uint32_t>(std::ceil(5 / o.interval));
    auto last = std::chrono::steady_clock::now();
    auto next_tick = last + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(o.interval));
    int rc = edge::exit_ok;
    bool stop = false;
    while (!stop) {
        auto now = std::chrono::steady_clock::now();
        if (now < next_tick) {
            int ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(next_tick - now).count()) + 1;
            pollfd pf[3] = {{sfd, POLLIN, 0}, {control_fd, POLLIN, 0}, {metrics_fd, POLLIN, 0}};
            int n = poll(pf, 3, ms);
            if (n < 0 && errno != EINTR) {
                rc = edge::exit_failure;
                break;
            }
            if (n > 0 && (pf[0].revents & POLLIN)) {
                signalfd_siginfo si{};
                while (read(sfd, &si, sizeof si) == sizeof si) {
                    if (si.ssi_signo == SIGHUP) reload("SIGHUP");
                    else stop = true;
                }
            }
            if (n > 0 && control_fd >= 0 && (pf[1].revents & POLLIN)) {
                int cfd = accept4(control_fd, nullptr, nullptr, SOCK_CLOEXEC);
                if (cfd >= 0) {
                    control(cfd);
                    close(cfd);
                }
            }
            if (n > 0 && metrics_fd >= 0 && (pf[2].revents & POLLIN)) {
                int mfd = accept4(metrics_fd, nullptr, nullptr, SOCK_CLOEXEC);
                if (mfd >= 0) {
                    std::string req = read_request(mfd);
                    std::string body = metrics_text(maps, dests, o.interface, reloads);
                    if (req.compare(0, 4, "GET ") == 0)
                        write_all(mfd, fmt::format("HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                                                   "Content-Length: {}\r\n\r\n{}", body.size(), body));
                    else
                        write_all(mfd, "HTTP/1.0 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n");
                    close(mfd);
                }
            }
            continue;
        }
        double dt = std::chrono::duration<double>(now - last).count();
        last = now;
        next_tick = now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(o.interval));
        bool any_flooded = any_always();
        for (auto& ld : dests) {
            const ProtectCfg& p = ld.cfg;
            Adaptive& a = ld.a;
            uint64_t syn = dst_stats(maps, ld.id).syn;
            double rate = static_cast<double>(syn - a.last_syn) / dt;
            a.last_syn = syn;
            auto change = a.update(rate, p.floor_syn_pps.value_or(c.floor_syn_pps), c.factor,
                                   static_cast<uint32_t>(c.window_s / o.interval), static_cast<uint32_t>(c.calm_s / o.interval) + 1,
                                   learn_delay);
            auto d = get_dest(maps, p);
            if (!d) continue;
            d->threshold_pps = static_cast<uint64_t>(a.threshold);
            if (change == Adaptive::Change::flood_start) {
                if (p.cookie == CookieMode::automatic) d->flags |= SFG_D_COOKIE;
                if (p.flood_syn_pps) d->syn_pps = p.flood_syn_pps;
                want_cookies(true);
            } else if (change == Adaptive::Change::flood_end) {
                if (p.cookie == CookieMode::automatic) d->flags &= ~uint32_t{SFG_D_COOKIE};
                d->syn_pps = p.syn_pps;
            }
            // The data plane has the new mode before anyone hears of it: a client that
            // starts on the flood_start event must meet the cookies.
            set_dest(maps, p, *d);
            if (change == Adaptive::Change::flood_start) {
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
                log_event(g, Record("guard_event")
                                 .str("event", "flood_end")
                                 .str("destination", p.name())
                                 .real("peak_syn_pps", a.peak)
                                 .text(fmt::format("SYN flood on {} is over (peak {:.0f} SYN/s)", p.name(), a.peak)));
                out.emit(mitigation(p, a, true, o.interface));
            }
            any_flooded |= a.flooded;
        }
        want_cookies(any_flooded);
    }
    edge::bpf::detach_xdp(ifindex, flags, bpf_program__fd(s->progs.synflood));
    close_sockets();
    close(sfd);
    edge::bpf::remove_pins(dir);
    want_cookies(false);
    log_event(g, Record("guard_event").str("event", "detached").str("interface", o.interface).text(
                     fmt::format("detached from {}", o.interface)));
    return rc;
}

int run_status(const Options& o, const edge::cli::Globals& g, edge::out::Output& out) {
    (void)g;
    require_bpf();
    Maps m = pinned_maps(o.interface);
    for (auto& r : status_records(m, o.interface)) out.emit(r);
    return edge::exit_ok;
}

int run_stats(const Options& o, const edge::cli::Globals& g, edge::out::Output& out) {
    (void)g;
    require_bpf();
    Maps m = pinned_maps(o.interface);
    StatsSnap a = stats_snap(m), b = a;
    if (o.watch > 0) {
        std::this_thread::sleep_for(std::chrono::duration<double>(o.watch));
        b = stats_snap(m);
    }
    for (auto& r : stats_records(a, b, o.watch)) out.emit(r);
    return edge::exit_ok;
}

namespace {
int block_op(const Options& o, const edge::cli::Globals& g, edge::out::Output& out, bool add) {
    (void)g;
    auto p = Prefix::parse(o.prefix);
    if (!p) edge::usage_error("bad prefix '{}': {}", o.prefix, p.error());
    require_bpf();
    Maps m = pinned_maps(o.interface);
    out.emit(block_record(m, o.prefix, o.interface, add));
    return edge::exit_ok;
}
}  // namespace

int run_block(const Options& o, const edge::cli::Globals& g, edge::out::Output& out) { return block_op(o, g, out, true); }
int run_unblock(const Options& o, const edge::cli::Globals& g, edge::out::Output& out) { return block_op(o, g, out, false); }

// synflood-guard ctl -s PATH COMMAND...: one command to a running guard's control socket.
int run_ctl(const Options& o, const edge::cli::Globals& g, edge::out::Output& out) {
    (void)out;
    if (o.words.empty()) edge::usage_error("ctl needs a command: status, stats, block PREFIX, unblock PREFIX, reload, metrics");
    std::string line = g.json ? "" : "text ";
    for (size_t i = 0; i < o.words.size(); i++) line += (i ? " " : "") + o.words[i];
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (o.socket.size() >= sizeof sa.sun_path) edge::usage_error("control socket path too long: {}", o.socket);
    std::strcpy(sa.sun_path, o.socket.c_str());
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        int e = errno;
        close(fd);
        edge::usage_error("cannot connect to {}: {} (is synflood-guard run with --control-socket?)", o.socket, std::strerror(e));
    }
    line += '\n';
    write_all(fd, line);
    shutdown(fd, SHUT_WR);
    std::string reply;
    char buf[65536];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        reply.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    // The guard answers with records (JSON Lines with -j, text lines otherwise); a
    // failed command ends with {"type":"ctl_result","ok":false,...} or "error: ...".
    int rc = edge::exit_ok;
    size_t start = 0;
    std::string errline;
    while (start < reply.size()) {
        size_t nl = reply.find('\n', start);
        if (nl == std::string::npos) nl = reply.size();
        std::string l = reply.substr(start, nl - start);
        start = nl + 1;
        if (l.rfind("error: ", 0) == 0) {
            errline = l.substr(7);
            continue;
        }
        if (l.find("\"type\":\"ctl_result\"") != std::string::npos && l.find("\"ok\":false") != std::string::npos) rc = 2;
        std::fwrite(l.data(), 1, l.size(), stdout);
        std::fputc('\n', stdout);
    }
    std::fflush(stdout);
    if (!errline.empty()) edge::usage_error("{}", errline);
    return rc;
}

}  // namespace sfg
