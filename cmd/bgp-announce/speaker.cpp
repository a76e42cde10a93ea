// The speaker (see speaker.hpp).
#include "speaker.hpp"
#include "community_fields.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "bgp/packer.hpp"
#include "cli/error.hpp"
#include "out/json.hpp"
#include "out/output.hpp"

namespace bgp_announce {

using edge::out::Record;

namespace {

std::string families_text(const std::vector<bgp::AfiSafi>& f) {
    std::string s;
    for (auto& a : f) s += (s.empty() ? "" : ",") + a.to_string();
    return s;
}
std::vector<std::string> family_list(const std::vector<bgp::AfiSafi>& f) {
    std::vector<std::string> v;
    for (auto& a : f) v.push_back(a.to_string());
    return v;
}

bgp::AfiSafi af_of(const net::Prefix& p) { return p.family() == net::Family::v4 ? bgp::ipv4_unicast : bgp::ipv6_unicast; }
bgp::AfiSafi af_of(const bgp::FlowSpec& f) {
    return f.family == net::Family::v4 ? bgp::ipv4_flowspec : bgp::ipv6_flowspec;
}

bool has_family(const bgp::Session& s, bgp::AfiSafi af) {
    auto& f = s.negotiated().families;
    return std::find(f.begin(), f.end(), af) != f.end();
}

void add_attr_fields(Record& r, const bgp::Attributes& a) {
    if (a.origin) r.str("origin", *a.origin == 0 ? "igp" : *a.origin == 1 ? "egp" : "incomplete");
    if (a.as_path) r.str("as_path", bgp::to_string(*a.as_path));
    if (a.next_hop) r.str("next_hop", a.next_hop->to_string());
    if (a.med) r.num("med", uint64_t{*a.med});
    if (a.local_pref) r.num("local_pref", uint64_t{*a.local_pref});
    add_community_fields(r, a.communities.empty() ? nullptr : &a.communities, a.large_communities, a.ext_communities);
}

std::string line_of(const Record& r) { return r.json() + "\n"; }

}  // namespace

Speaker::Speaker(Config cfg, Options opt, bool json) : cfg_(std::move(cfg)), opt_(std::move(opt)), emit_(json) {
    if (opt_.control_socket.empty()) opt_.control_socket = cfg_.control_socket;
    if (opt_.metrics.empty() && cfg_.metrics) opt_.metrics = cfg_.metrics->to_string();
}

Speaker::~Speaker() {
    groups_.clear();  // joins the checker threads before anything they report into goes away
    for (int fd : listeners_) close(fd);
    if (control_fd_ >= 0) {
        close(control_fd_);
        unlink(opt_.control_socket.c_str());
    }
    if (metrics_fd_ >= 0) close(metrics_fd_);
    if (signal_fd_ >= 0) close(signal_fd_);
    if (health_fd_ >= 0) close(health_fd_);
}

// ---- routes -------------------------------------------------------------------------
Speaker::AttrPtr Speaker::intern(const RouteAttrs& a) {
    auto k = a.key();
    auto it = interned_.find(k);
    if (it != interned_.end())
        if (auto sp = it->second.lock()) return sp;
    auto sp = std::make_shared<const RouteAttrs>(a);
    interned_[k] = sp;
    if (interned_.size() > 4096)
        for (auto i = interned_.begin(); i != interned_.end();) i = i->second.expired() ? interned_.erase(i) : std::next(i);
    return sp;
}

void Speaker::set_route(const net::Prefix& p, const RouteAttrs& a, int source) { set_route(p, intern(a), source); }

void Speaker::set_route(const net::Prefix& p, AttrPtr attrs, int source) {
    auto& e = rib_[p];
    if (e.attrs == attrs && e.source == source) return;
    e.attrs = std::move(attrs);
    e.source = source;
    mark_dirty(p);
}

// Changes matter only to established sessions: a session coming up gets the whole RIB.
void Speaker::mark_dirty(const net::Prefix& p) {
    bool any = false;
    for (auto& ps : peers_) any |= ps->session->state() == bgp::State::established;
    if (!any) return;
    dirty_.push_back(p);
    schedule_flush();
}

void Speaker::remove_route(const net::Prefix& p, int source) {
    auto* e = rib_.find(p);
    if (!e || (source >= 0 && e->source != source)) return;
    rib_.erase(p);
    mark_dirty(p);
}

void Speaker::set_flow(const bgp::FlowSpec& f, const RouteAttrs& a, int source) {
    auto k = f.to_string();
    auto& e = flows_[k];
    e.spec = f;
    e.attrs = intern(a);
    e.source = source;
    dirty_flows_[k] = f;
    schedule_flush();
}

void Speaker::remove_flow(const bgp::FlowSpec& f, int source) {
    auto k = f.to_string();
    auto it = flows_.find(k);
    if (it == flows_.end() || (source >= 0 && it->second.source != source)) return;
    flows_.erase(it);
    dirty_flows_[k] = f;
    schedule_flush();
}

void Speaker::schedule_flush() {
    if (flush_scheduled_) return;
    flush_scheduled_ = true;
    loop_.after_ms(0, [this] {
        flush_scheduled_ = false;
        flush();
    });
}

void Speaker::flush() {
    if (dirty_.empty() && dirty_flows_.empty()) return;
    std::vector<std::pair<net::Prefix, const Entry*>> ann;
    std::vector<net::Prefix> wd;
    std::sort(dirty_.begin(), dirty_.end());
    dirty_.erase(std::unique(dirty_.begin(), dirty_.end()), dirty_.end());
    ann.reserve(dirty_.size());
    for (auto& p : dirty_) {
        if (auto* e = rib_.find(p))
            ann.emplace_back(p, e);
        else
            wd.push_back(p);
    }
    std::vector<const FlowEntry*> fann;
    std::vector<bgp::FlowSpec> fwd;
    for (auto& [k, f] : dirty_flows_) {
        auto it = flows_.find(k);
        if (it != flows_.end())
            fann.push_back(&it->second);
        else
            fwd.push_back(f);
    }
    for (auto& ps : peers_)
        if (ps->session->state() == bgp::State::established) send_routes(*ps, ann, wd, fann, fwd, false);
    dirty_.clear();
    dirty_flows_.clear();
}

void Speaker::send_all(PeerState& ps) {
    std::vector<std::pair<net::Prefix, const Entry*>> ann;
    ann.reserve(rib_.size());
    rib_.for_each([&](const net::Prefix& p, Entry& e) { ann.emplace_back(p, &e); });
    std::vector<const FlowEntry*> fann;
    for (auto& [k, f] : flows_) fann.push_back(&f);
    send_routes(ps, ann, {}, fann, {}, true);
}

bgp::Attributes Speaker::wire_attrs(const PeerState& ps, const RouteAttrs& a, bgp::AfiSafi af,
                                    std::vector<net::IpAddr>& mp_nh) {
    bgp::Attributes w;
    const auto& pc = ps.cfg.bgp;
    bool ebgp = pc.peer_as != cfg_.local_as;
    w.origin = a.origin;
    bgp::AsSegment seg;
    int copies = (ebgp ? 1 : 0) + a.prepend;
    for (int i = 0; i < copies; ++i) seg.asns.push_back(cfg_.local_as);
    for (auto x : a.as_path) seg.asns.push_back(x);
    w.as_path = bgp::AsPath{};
    if (!seg.asns.empty()) w.as_path->push_back(seg);
    if (a.med) w.med = a.med;
    if (!ebgp) w.local_pref = a.local_pref.value_or(100);
    w.communities = a.communities;
    w.large_communities = a.large_communities;
    w.ext_communities = a.ext_communities;
    mp_nh.clear();
    if (af.safi == bgp::safi_flowspec) return w;
    const auto& local = ps.session->negotiated().local_address;
    if (af == bgp::ipv4_unicast) {
        if (a.next_hop && a.next_hop->is_v4())
            w.next_hop = *a.next_hop;
        else if (ps.cfg.next_hop_self)
            w.next_hop = *ps.cfg.next_hop_self;
        else if (local.is_v4())
            w.next_hop = local;
        else
            w.next_hop = net::IpAddr::v4(cfg_.router_id);
    } else {
        net::IpAddr nh;
        if (a.next_hop && a.next_hop->is_v6())
            nh = *a.next_hop;
        else if (ps.cfg.next_hop_self6)
            nh = *ps.cfg.next_hop_self6;
        else if (local.is_v6())
            nh = local;
        else {
            net::IpAddr v4 = a.next_hop && a.next_hop->is_v4() ? *a.next_hop : ps.cfg.next_hop_self.value_or(local);
            auto b = v4.bytes();
            nh = net::IpAddr::v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, b[0], b[1], b[2], b[3]});
        }
        mp_nh.push_back(nh);
    }
    return w;
}

void Speaker::send_routes(PeerState& ps, const std::vector<std::pair<net::Prefix, const Entry*>>& ann,
                          const std::vector<net::Prefix>& wd, const std::vector<const FlowEntry*>& fann,
                          const std::vector<bgp::FlowSpec>& fwd, bool eor) {
    auto& s = *ps.session;
    const auto& ctx = s.negotiated().ctx;
    bgp::Bytes out;
    size_t updates = 0, sent = 0, withdrawn = 0;
    // Withdrawals first, then announcements grouped by attribute set and family.
    std::vector<bgp::Nlri> w4, w6;
    for (auto& p : wd) (p.family() == net::Family::v4 ? w4 : w6).push_back({p});
    if (has_family(s, bgp::ipv4_unicast)) {
        updates += bgp::pack_withdraw(out, bgp::ipv4_unicast, w4, ctx);
        withdrawn += w4.size();
    }
    if (has_family(s, bgp::ipv6_unicast)) {
        updates += bgp::pack_withdraw(out, bgp::ipv6_unicast, w6, ctx);
        withdrawn += w6.size();
    }
    std::map<std::pair<const RouteAttrs*, bool>, std::vector<bgp::Nlri>> groups;
    for (auto& [p, e] : ann)
        if (has_family(s, af_of(p))) groups[{e->attrs.get(), p.family() == net::Family::v6}].push_back({p});
    std::vector<net::IpAddr> nh;
    for (auto& [key, nlri] : groups) {
        auto af = key.second ? bgp::ipv6_unicast : bgp::ipv4_unicast;
        // In address order: receivers (BIRD) import sorted batches with better locality.
        std::sort(nlri.begin(), nlri.end());
        auto w = wire_attrs(ps, *key.first, af, nh);
        try {
            updates += bgp::pack_announce(out, w, af, nh, nlri, ctx);
            sent += nlri.size();
        } catch (const std::length_error& e) {
            edge::out::warn(fmt::format("peer {}: {} route(s) not sent: {}", ps.cfg.bgp.name, nlri.size(), e.what()));
        }
    }
    for (bool v6 : {false, true}) {
        auto af = v6 ? bgp::ipv6_flowspec : bgp::ipv4_flowspec;
        if (!has_family(s, af)) continue;
        std::vector<bgp::FlowSpec> fw;
        for (auto& f : fwd)
            if (af_of(f) == af) fw.push_back(f);
        if (!fw.empty()) {
            updates += bgp::pack_flows(out, {}, fw, true, ctx);
            withdrawn += fw.size();
        }
        std::map<const RouteAttrs*, std::vector<bgp::FlowSpec>> fg;
        for (auto* f : fann)
            if (af_of(f->spec) == af) fg[f->attrs.get()].push_back(f->spec);
        for (auto& [a, specs] : fg) {
            auto w = wire_attrs(ps, *a, af, nh);
            try {
                updates += bgp::pack_flows(out, w, specs, false, ctx);
                sent += specs.size();
            } catch (const std::length_error& e) {
                edge::out::warn(fmt::format("peer {}: FlowSpec rule not sent: {}", ps.cfg.bgp.name, e.what()));
            }
        }
    }
    if (eor)
        for (auto af : s.negotiated().families) {
            auto b = bgp::encode_update(bgp::Update::end_of_rib(af), ctx);
            out.insert(out.end(), b.begin(), b.end());
            ++updates;
        }
    if (out.empty()) return;
    s.send(out);
    ps.updates_sent += updates;
    ps.prefixes_sent += sent;
    ps.withdrawals_sent += withdrawn;
    Record r("bgp_sent");
    r.str("peer", ps.cfg.bgp.name).num("announced", uint64_t{sent}).num("withdrawn", uint64_t{withdrawn});
    r.num("updates", uint64_t{updates}).num("bytes", uint64_t{out.size()}).boolean("end_of_rib", eor);
    r.text(fmt::format("sent to {}: {} announced, {} withdrawn in {} UPDATEs ({} bytes){}", ps.cfg.bgp.name, sent,
                       withdrawn, updates, out.size(), eor ? " + End-of-RIB" : ""));
    emit_.emit(r);
}

// ---- groups and health --------------------------------------------------------------
void Speaker::apply_group(GroupState& g) {
    int src = 0;
    for (size_t i = 0; i < groups_.size(); ++i)
        if (groups_[i].get() == &g) src = static_cast<int>(i) + 1;
    bool announce = !g.cfg.health || g.healthy;
    RouteAttrs a = g.cfg.attrs;
    if (g.cfg.health && !g.healthy && g.known) {
        if (g.cfg.health->on_failure == HealthCheck::OnFailure::med) {
            a.med = g.cfg.health->failure_med;
            announce = true;
        } else if (g.cfg.health->on_failure == HealthCheck::OnFailure::prepend) {
            a.prepend += g.cfg.health->failure_prepend;
            announce = true;
        }
    }
    for (auto& p : g.cfg.prefixes) {
        if (announce)
            set_route(p, a, src);
        else
            remove_route(p, src);
    }
    for (auto& f : g.cfg.flows) {
        if (announce)
            set_flow(f, a, src);
        else
            remove_flow(f, src);
    }
}

// ---- events -------------------------------------------------------------------------
void Speaker::on_state(PeerState& ps, bgp::State from, bgp::State to, const std::string& reason) {
    auto& s = *ps.session;
    Record r("bgp_session");
    r.str("peer", ps.cfg.bgp.name).str("address", ps.cfg.bgp.address.to_string());
    r.str("state", bgp::to_string(to)).str("previous", bgp::to_string(from));
    if (!reason.empty()) r.str("reason", reason);
    std::string extra;
    if (to == bgp::State::established) {
        const auto& n = s.negotiated();
        r.num("peer_as", uint64_t{n.peer_open.asn}).num("hold_time_s", uint64_t{n.hold_time});
        r.strings("families", family_list(n.families));
        r.boolean("graceful_restart", n.graceful_restart).boolean("four_octet_as", n.ctx.four_octet_as);
        r.str("local_address", n.local_address.to_string());
        extra = fmt::format(" (AS {}, hold {} s, {})", n.peer_open.asn, n.hold_time, families_text(n.families));
    }
    r.text(fmt::format("session {} {} -> {}{}{}", ps.cfg.bgp.name, bgp::to_string(from), bgp::to_string(to), extra,
                       reason.empty() ? "" : ": " + reason));
    // Quiet the retry noise: only log transitions into/out of the interesting states.
    bool noisy = (to == bgp::State::connect || to == bgp::State::active) && from != bgp::State::established &&
                 from != bgp::State::open_confirm && from != bgp::State::open_sent;
    if (!noisy || edge::out::verbosity() > 0) emit_.emit(r);
    if (from == bgp::State::established) {
        // The peer forgets what it sent us.
        for (auto& p : ps.received) {
            Record w("bgp_route");
            w.str("peer", ps.cfg.bgp.name).str("action", "withdraw").str("prefix", p.to_string()).str("reason", "session down");
            w.text(fmt::format("route {} withdraw {} (session down)", ps.cfg.bgp.name, p.to_string()));
            emit_.emit(w);
        }
        ps.received.clear();
    }
    if (to == bgp::State::established) send_all(ps);
}

void Speaker::on_update(PeerState& ps, const bgp::Decoded& d) {
    const auto& u = std::get<bgp::Update>(d.msg);
    if (d.outcome != bgp::Outcome::ok) {
        for (auto& w : d.warnings) {
            Record r("bgp_update_error");
            r.str("peer", ps.cfg.bgp.name).str("outcome", bgp::to_string(d.outcome)).str("detail", w);
            r.text(fmt::format("UPDATE from {}: {} ({})", ps.cfg.bgp.name, w, bgp::to_string(d.outcome)));
            emit_.emit(r);
            edge::out::warn(fmt::format("peer {}: malformed UPDATE handled by {}: {}", ps.cfg.bgp.name,
                                        bgp::to_string(d.outcome), w));
        }
    }
    if (auto af = u.end_of_rib()) {
        Record r("bgp_end_of_rib");
        r.str("peer", ps.cfg.bgp.name).str("family", af->to_string());
        r.text(fmt::format("end-of-rib {} {}", ps.cfg.bgp.name, af->to_string()));
        emit_.emit(r);
        return;
    }
    auto withdraw = [&](const net::Prefix& p) {
        ps.received.erase(p);
        Record r("bgp_route");
        r.str("peer", ps.cfg.bgp.name).str("action", "withdraw").str("prefix", p.to_string());
        r.text(fmt::format("route {} withdraw {}", ps.cfg.bgp.name, p.to_string()));
        emit_.emit(r);
    };
    auto announce = [&](const net::Prefix& p, const std::optional<net::IpAddr>& nh) {
        ps.received.insert(p);
        ++ps.routes_received;
        Record r("bgp_route");
        r.str("peer", ps.cfg.bgp.name).str("action", "announce").str("prefix", p.to_string());
        bgp::Attributes a = u.attrs;
        if (nh) a.next_hop = nh;
        if (a.as4_path && a.as_path) a.as_path = bgp::merge_as4_path(*a.as_path, *a.as4_path);
        add_attr_fields(r, a);
        r.text(fmt::format("route {} announce {} next-hop {} as-path [{}]", ps.cfg.bgp.name, p.to_string(),
                           a.next_hop ? a.next_hop->to_string() : "-", a.as_path ? bgp::to_string(*a.as_path) : ""));
        emit_.emit(r);
    };
    for (auto& n : u.withdrawn) withdraw(n.prefix);
    if (u.mp_unreach) {
        for (auto& n : u.mp_unreach->withdrawn) withdraw(n.prefix);
        for (auto& f : u.mp_unreach->flows) {
            Record r("bgp_route");
            r.str("peer", ps.cfg.bgp.name).str("action", "withdraw").str("flow", f.to_string());
            r.text(fmt::format("flow {} withdraw {}", ps.cfg.bgp.name, f.to_string()));
            emit_.emit(r);
        }
    }
    for (auto& n : u.nlri) announce(n.prefix, std::nullopt);
    if (u.mp_reach) {
        std::optional<net::IpAddr> nh;
        if (!u.mp_reach->next_hops.empty()) nh = u.mp_reach->next_hops[0];
        for (auto& n : u.mp_reach->nlri) announce(n.prefix, nh);
        for (auto& f : u.mp_reach->flows) {
            Record r("bgp_route");
            r.str("peer", ps.cfg.bgp.name).str("action", "announce").str("flow", f.to_string());
            add_attr_fields(r, u.attrs);
            r.text(fmt::format("flow {} announce {}", ps.cfg.bgp.name, f.to_string()));
            emit_.emit(r);
        }
    }
}

// ---- commands -----------------------------------------------------------------------
void Speaker::apply(const Command& c, std::string* reply) {
    ++commands_;
    switch (c.kind) {
        case Command::Kind::status:
            if (reply) status_records(*reply);
            return;
        case Command::Kind::routes:
            if (reply) routes_records(*reply);
            return;
        case Command::Kind::metrics:
            if (reply) *reply += metrics_text();
            return;
        case Command::Kind::withdraw_all: {
            std::vector<net::Prefix> ps;
            rib_.for_each([&](const net::Prefix& p, const Entry& e) {
                if (e.source == 0) ps.push_back(p);
            });
            for (auto& p : ps) remove_route(p, 0);
            std::vector<bgp::FlowSpec> fs;
            for (auto& [k, f] : flows_)
                if (f.source == 0) fs.push_back(f.spec);
            for (auto& f : fs) remove_flow(f, 0);
            break;
        }
        case Command::Kind::announce:
            if (!c.prefixes.empty()) {
                auto attrs = intern(c.attrs);
                for (auto& p : c.prefixes) set_route(p, attrs, 0);
            }
            for (auto& f : c.flows) set_flow(f, c.attrs, 0);
            if (c.duration_s) {
                auto prefixes = c.prefixes;
                auto flows = c.flows;
                loop_.after_ms(*c.duration_s * 1000, [this, prefixes, flows] {
                    for (auto& p : prefixes) remove_route(p, 0);
                    for (auto& f : flows) remove_flow(f, 0);
                });
            }
            break;
        case Command::Kind::withdraw:
            for (auto& p : c.prefixes) remove_route(p, 0);
            for (auto& f : c.flows) remove_flow(f, 0);
            break;
    }
    if (reply) {
        Record r("ctl_result");
        r.boolean("ok", true).num("routes", uint64_t{rib_.size()}).num("flows", uint64_t{flows_.size()});
        *reply += line_of(r);
    }
}

void Speaker::handle_line(std::string_view line, const std::string& where, std::string* reply) {
    static edge::json::Document parser;
    auto c = parse_line(line, parser);
    if (!c) {
        ++command_errors_;
        if (reply) {
            Record r("ctl_result");
            r.boolean("ok", false).str("error", c.error());
            *reply += line_of(r);
        } else {
            edge::out::warn(fmt::format("{}: {}", where, c.error()));
        }
        return;
    }
    if (*c) apply(**c, reply);
}

void Speaker::on_stdin() {
    char buf[65536];
    for (;;) {
        ssize_t n = read(0, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) {
            if (!stdin_buf_.empty()) handle_line(stdin_buf_, fmt::format("stdin:{}", ++stdin_line_), nullptr);
            stdin_buf_.clear();
            if (stdin_open_) {
                stdin_open_ = false;
                loop_.remove(0);
                if (opt_.withdraw_on_eof) apply(Command{Command::Kind::withdraw_all, {}, {}, {}, {}}, nullptr);
            }
            return;
        }
        stdin_buf_.append(buf, static_cast<size_t>(n));
        size_t start = 0;
        for (;;) {
            auto nl = stdin_buf_.find('\n', start);
            if (nl == std::string::npos) break;
            handle_line(std::string_view(stdin_buf_).substr(start, nl - start), fmt::format("stdin:{}", ++stdin_line_), nullptr);
            start = nl + 1;
        }
        stdin_buf_.erase(0, start);
        if (stdin_buf_.size() > (1u << 20)) {
            edge::out::warn(fmt::format("stdin:{}: line longer than 1 MiB skipped", stdin_line_ + 1));
            stdin_buf_.clear();
        }
        // One read per wake-up keeps the sessions and timers served while a big feed streams in.
        return;
    }
}

// ---- control socket and metrics -----------------------------------------------------
void Speaker::status_records(std::string& out) const {
    for (auto& ps : peers_) {
        auto& s = *ps->session;
        Record r("bgp_peer");
        r.str("peer", ps->cfg.bgp.name).str("address", ps->cfg.bgp.address.to_string());
        r.num("remote_as", uint64_t{ps->cfg.bgp.peer_as}).str("state", bgp::to_string(s.state()));
        if (s.state() == bgp::State::established) {
            r.num("uptime_ms", bgp::Loop::now_ms() - s.established_since_ms());
            r.strings("families", family_list(s.negotiated().families));
        }
        r.num("prefixes_sent", ps->prefixes_sent).num("withdrawals_sent", ps->withdrawals_sent);
        r.num("updates_sent", ps->updates_sent).num("updates_received", s.updates_received());
        r.num("routes_received", uint64_t{ps->received.size()});
        if (!s.last_error().empty()) r.str("last_error", s.last_error());
        out += line_of(r);
    }
    for (auto& g : groups_) {
        Record r("bgp_group");
        r.str("group", g->cfg.name).num("prefixes", uint64_t{g->cfg.prefixes.size()});
        r.boolean("health_checked", g->cfg.health.has_value());
        if (g->cfg.health) r.boolean("healthy", g->healthy).str("detail", g->detail);
        out += line_of(r);
    }
    Record r("bgp_speaker");
    r.num("local_as", uint64_t{cfg_.local_as}).str("router_id", net::IpAddr::v4(cfg_.router_id).to_string());
    r.num("routes", uint64_t{rib_.size()}).num("flows", uint64_t{flows_.size()});
    r.num("commands", commands_).num("command_errors", command_errors_).num("events_dropped", emit_.dropped());
    out += line_of(r);
}

void Speaker::routes_records(std::string& out) const {
    std::vector<std::pair<net::Prefix, const Entry*>> v;
    rib_.for_each([&](const net::Prefix& p, const Entry& e) { v.emplace_back(p, &e); });
    std::sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.first < b.first; });
    auto fill = [&](Record& r, const RouteAttrs& a, int source) {
        r.str("next_hop", a.next_hop ? a.next_hop->to_string() : "self");
        std::vector<std::string> cs;
        for (auto c : a.communities) cs.push_back(fmt::format("{}:{}", c >> 16, c & 0xffff));
        if (!cs.empty()) r.strings("communities", cs);
        cs.clear();
        for (auto& l : a.large_communities) cs.push_back(l.to_string());
        if (!cs.empty()) r.strings("large_communities", cs);
        cs.clear();
        for (auto& e : a.ext_communities) cs.push_back(e.to_string());
        if (!cs.empty()) r.strings("ext_communities", cs);
        if (a.med) r.num("med", uint64_t{*a.med});
        if (a.prepend) r.num("prepend", a.prepend);
        r.str("source", source == 0 ? "command" : groups_[static_cast<size_t>(source - 1)]->cfg.name);
    };
    for (auto& [p, e] : v) {
        Record r("bgp_rib");
        r.str("prefix", p.to_string());
        fill(r, *e->attrs, e->source);
        out += line_of(r);
    }
    for (auto& [k, f] : flows_) {
        Record r("bgp_rib");
        r.str("flow", k);
        fill(r, *f.attrs, f.source);
        out += line_of(r);
    }
}

std::string Speaker::metrics_text() const {
    std::string m;
    m += "# TYPE bgp_announce_session_established gauge\n";
    for (auto& ps : peers_)
        m += fmt::format("bgp_announce_session_established{{peer=\"{}\"}} {}\n", ps->cfg.bgp.name,
                         ps->session->state() == bgp::State::established ? 1 : 0);
    m += "# TYPE bgp_announce_prefixes_sent_total counter\n";
    for (auto& ps : peers_) m += fmt::format("bgp_announce_prefixes_sent_total{{peer=\"{}\"}} {}\n", ps->cfg.bgp.name, ps->prefixes_sent);
    m += "# TYPE bgp_announce_withdrawals_sent_total counter\n";
    for (auto& ps : peers_) m += fmt::format("bgp_announce_withdrawals_sent_total{{peer=\"{}\"}} {}\n", ps->cfg.bgp.name, ps->withdrawals_sent);
    m += "# TYPE bgp_announce_updates_sent_total counter\n";
    for (auto& ps : peers_) m += fmt::format("bgp_announce_updates_sent_total{{peer=\"{}\"}} {}\n", ps->cfg.bgp.name, ps->updates_sent);
    m += "# TYPE bgp_announce_updates_received_total counter\n";
    for (auto& ps : peers_)
        m += fmt::format("bgp_announce_updates_received_total{{peer=\"{}\"}} {}\n", ps->cfg.bgp.name, ps->session->updates_received());
    m += "# TYPE bgp_announce_routes_received gauge\n";
    for (auto& ps : peers_) m += fmt::format("bgp_announce_routes_received{{peer=\"{}\"}} {}\n", ps->cfg.bgp.name, ps->received.size());
    m += "# TYPE bgp_announce_group_healthy gauge\n";
    for (auto& g : groups_)
        if (g->cfg.health) m += fmt::format("bgp_announce_group_healthy{{group=\"{}\"}} {}\n", g->cfg.name, g->healthy ? 1 : 0);
    m += fmt::format("# TYPE bgp_announce_routes gauge\nbgp_announce_routes {}\n", rib_.size());
    m += fmt::format("# TYPE bgp_announce_flows gauge\nbgp_announce_flows {}\n", flows_.size());
    m += fmt::format("# TYPE bgp_announce_commands_total counter\nbgp_announce_commands_total {}\n", commands_);
    m += fmt::format("# TYPE bgp_announce_command_errors_total counter\nbgp_announce_command_errors_total {}\n", command_errors_);
    m += fmt::format("# TYPE bgp_announce_events_dropped_total counter\nbgp_announce_events_dropped_total {}\n", emit_.dropped());
    return m;
}

namespace {
// Reads what a short-lived client sent within a small deadline (local sockets only).
std::string read_request(int fd) {
    timeval tv{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string req;
    char buf[4096];
    while (req.size() < (1u << 20)) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
        if (req.find("\r\n\r\n") != std::string::npos) break;  // HTTP request head
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
}  // namespace

void Speaker::on_control_accept() {
    int fd = accept4(control_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    // The client sends its lines and shuts down its write side.
    std::string req = read_request(fd);
    std::string reply;
    size_t start = 0;
    while (start < req.size()) {
        auto nl = req.find('\n', start);
        if (nl == std::string::npos) nl = req.size();
        handle_line(std::string_view(req).substr(start, nl - start), "control", &reply);
        start = nl + 1;
    }
    write_all(fd, reply);
    close(fd);
    flush();
}

void Speaker::on_metrics_accept() {
    int fd = accept4(metrics_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    auto req = read_request(fd);
    std::string body = metrics_text();
    std::string resp;
    if (req.compare(0, 4, "GET ") == 0)
        resp = fmt::format("HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{}",
                           body.size(), body);
    else
        resp = "HTTP/1.0 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n";
    write_all(fd, resp);
    close(fd);
}

// ---- lifecycle ----------------------------------------------------------------------
void Speaker::on_signal() {
    signalfd_siginfo si{};
    while (read(signal_fd_, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
            shutdown(si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
            return;
        }
    }
}

void Speaker::shutdown(const std::string& why) {
    if (stopping_) return;
    stopping_ = true;
    edge::out::info(fmt::format("{}: withdrawing {} route(s) and {} rule(s), closing sessions", why, rib_.size(), flows_.size()));
    flush();
    std::vector<net::Prefix> all;
    rib_.for_each([&](const net::Prefix& p, const Entry&) { all.push_back(p); });
    std::vector<bgp::FlowSpec> fl;
    for (auto& [k, f] : flows_) fl.push_back(f.spec);
    for (auto& ps : peers_) {
        if (ps->session->state() == bgp::State::established) send_routes(*ps, {}, all, {}, fl, false);
        ps->session->stop(bgp::Notification::shutdown(cfg_.shutdown_message));
    }
    loop_.stop();
}

int Speaker::run() {
    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    signal_fd_ = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    loop_.add(signal_fd_, EPOLLIN, [this](uint32_t) { on_signal(); });

    for (auto& p : cfg_.peers) {
        auto ps = std::make_unique<PeerState>();
        ps->cfg = p;
        PeerState* raw = ps.get();
        bgp::Session::Handlers h;
        h.state = [this, raw](bgp::Session&, bgp::State f, bgp::State t, const std::string& why) { on_state(*raw, f, t, why); };
        h.update = [this, raw](bgp::Session&, const bgp::Decoded& d) { on_update(*raw, d); };
        h.route_refresh = [this, raw](bgp::Session&, const bgp::RouteRefresh& rr) {
            Record r("bgp_route_refresh");
            r.str("peer", raw->cfg.bgp.name).str("family", rr.af.to_string());
            emit_.emit(r);
            send_all(*raw);
        };
        h.notification = [this, raw](bgp::Session&, const bgp::Notification& n, bool sent) {
            Record r("bgp_notification");
            r.str("peer", raw->cfg.bgp.name).str("direction", sent ? "sent" : "received");
            r.num("code", n.code).num("subcode", n.subcode).str("name", n.name());
            if (auto m = n.shutdown_message()) r.str("message", *m);
            r.text(fmt::format("notification {} {}: {}", sent ? "sent to" : "received from", raw->cfg.bgp.name, n.describe()));
            emit_.emit(r);
        };
        ps->session = std::make_unique<bgp::Session>(loop_, p.bgp, std::move(h));
        peers_.push_back(std::move(ps));
    }

    for (auto& ep : cfg_.listen) {
        int fd = bgp::listen_on(ep);
        for (auto& ps : peers_)
            if (!ps->cfg.bgp.md5_password.empty() && ps->cfg.bgp.address.family() == ep.addr.family())
                if (int e = bgp::set_tcp_md5(fd, ps->cfg.bgp.address, ps->cfg.bgp.md5_password))
                    edge::failure("TCP MD5 for {} on {}: {}", ps->cfg.bgp.address.to_string(), ep.to_string(), std::strerror(e));
        listeners_.push_back(fd);
        loop_.add(fd, EPOLLIN, [this, fd](uint32_t) {
            for (;;) {
                sockaddr_storage ss{};
                socklen_t len = sizeof ss;
                int c = accept4(fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (c < 0) return;
                net::IpAddr from;
                if (ss.ss_family == AF_INET) {
                    std::array<uint8_t, 4> b;
                    std::memcpy(b.data(), &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, 4);
                    from = net::IpAddr::v4(b);
                } else {
                    std::array<uint8_t, 16> b;
                    std::memcpy(b.data(), &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, 16);
                    from = net::IpAddr::v6(b);
                }
                // The peer with this address, and with this local address when it names one.
                sockaddr_storage ls{};
                socklen_t llen = sizeof ls;
                std::optional<net::IpAddr> local;
                if (getsockname(c, reinterpret_cast<sockaddr*>(&ls), &llen) == 0) {
                    if (ls.ss_family == AF_INET) {
                        std::array<uint8_t, 4> b;
                        std::memcpy(b.data(), &reinterpret_cast<sockaddr_in*>(&ls)->sin_addr, 4);
                        local = net::IpAddr::v4(b);
                    } else {
                        std::array<uint8_t, 16> b;
                        std::memcpy(b.data(), &reinterpret_cast<sockaddr_in6*>(&ls)->sin6_addr, 16);
                        local = net::IpAddr::v6(b);
                    }
                }
                PeerState* best = nullptr;
                for (auto& ps : peers_) {
                    if (ps->cfg.bgp.address != from) continue;
                    if (ps->cfg.bgp.local_address && local && *ps->cfg.bgp.local_address != *local) continue;
                    if (!best || (ps->cfg.bgp.local_address && !best->cfg.bgp.local_address)) best = ps.get();
                }
                bool taken = best != nullptr;
                if (best) best->session->accept(c);
                if (!taken) {
                    edge::out::debug(fmt::format("connection from unknown peer {} refused", from.to_string()));
                    close(c);
                }
            }
        });
    }

    if (!opt_.control_socket.empty()) {
        unlink(opt_.control_socket.c_str());
        control_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        if (opt_.control_socket.size() >= sizeof sa.sun_path) edge::usage_error("control socket path too long: {}", opt_.control_socket);
        std::strcpy(sa.sun_path, opt_.control_socket.c_str());
        if (bind(control_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(control_fd_, 16) != 0)
            edge::failure("cannot listen on control socket {}: {}", opt_.control_socket, std::strerror(errno));
        loop_.add(control_fd_, EPOLLIN, [this](uint32_t) { on_control_accept(); });
    }
    if (!opt_.metrics.empty()) {
        auto ep = net::Endpoint::parse(opt_.metrics);
        if (!ep) edge::usage_error("--metrics '{}': {} (ADDR:PORT)", opt_.metrics, ep.error());
        metrics_fd_ = bgp::listen_on(*ep);
        loop_.add(metrics_fd_, EPOLLIN, [this](uint32_t) { on_metrics_accept(); });
    }

    // Health results come from checker threads through an eventfd.
    health_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    loop_.add(health_fd_, EPOLLIN, [this](uint32_t) {
        uint64_t v;
        [[maybe_unused]] auto r = read(health_fd_, &v, sizeof v);
        std::vector<std::tuple<size_t, bool, std::string>> results;
        {
            std::lock_guard lk(health_mu_);
            results.swap(health_results_);
        }
        for (auto& [i, ok, detail] : results) {
            auto& g = *groups_[i];
            g.detail = detail;
            bool before = g.healthy, known_before = g.known;
            if (ok) {
                g.fail_run = 0;
                if (++g.ok_run >= g.cfg.health->rise) g.healthy = true;
            } else {
                g.ok_run = 0;
                if (++g.fail_run >= g.cfg.health->fall || !g.known) {
                    g.healthy = false;
                    g.known = true;
                }
            }
            if (g.healthy) g.known = true;
            if (g.healthy != before || g.known != known_before) {
                Record rec("bgp_health");
                rec.str("group", g.cfg.name).boolean("healthy", g.healthy).str("detail", detail);
                rec.text(fmt::format("health {} {} ({})", g.cfg.name, g.healthy ? "up" : "down", detail));
                emit_.emit(rec);
                apply_group(g);
            }
        }
    });
    for (size_t i = 0; i < cfg_.groups.size(); ++i) {
        auto g = std::make_unique<GroupState>();
        g->cfg = cfg_.groups[i];
        groups_.push_back(std::move(g));
    }
    for (size_t i = 0; i < groups_.size(); ++i) {
        auto& g = *groups_[i];
        if (!g.cfg.health) {
            apply_group(g);
            continue;
        }
        g.checker = std::make_unique<HealthChecker>(*g.cfg.health, [this, i](bool ok, std::string detail) {
            {
                std::lock_guard lk(health_mu_);
                health_results_.emplace_back(i, ok, std::move(detail));
            }
            uint64_t one = 1;
            [[maybe_unused]] auto w = write(health_fd_, &one, sizeof one);
        });
    }

    // stdin: streamed through the loop. A regular file or /dev/null cannot be polled: it is
    // read a chunk per loop turn instead, so the sessions come up while a big file is parsed.
    try {
        loop_.add(0, EPOLLIN, [this](uint32_t) { on_stdin(); });
    } catch (const std::exception&) {
        std::function<void()> chunk;
        chunk = [this, &chunk] {
            on_stdin();
            if (stdin_open_) loop_.after_ms(0, chunk);
        };
        loop_.after_ms(0, chunk);
        for (auto& ps : peers_) ps->session->start();
        loop_.run();
        peers_.clear();
        return exit_code_;
    }

    for (auto& ps : peers_) ps->session->start();
    loop_.run();
    peers_.clear();
    return exit_code_;
}

}  // namespace bgp_announce
