// edgectl trace: BGP -> Maglev -> guard -> cache for one flow.
#include "trace.hpp"

#include <algorithm>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/error.hpp"
#include "hash/flow_hash.hpp"
#include "lab_conf.hpp"
#include "lab_http.hpp"
#include "lab_lbmap.hpp"
#include "lab_plan.hpp"
#include "lab_procs.hpp"
#include "lab_query.hpp"
#include "lab_state.hpp"
#include "lab_sys.hpp"
#include "maglev/maglev.hpp"
#include "net/flow.hpp"
#include "out/record.hpp"
#include "stack.hpp"

namespace edgectl {

using edge::out::Record;
using edge::net::IpAddr;
using edge::net::Prefix;

namespace {

bool in_list(const std::vector<std::string>& list, const IpAddr& a) {
    for (auto& s : list)
        if (auto p = Prefix::parse(s); p && p->contains(a)) return true;
    return false;
}

struct Candidate {
    const Pop* pop;
    std::string as_path, via;
    std::optional<uint32_t> med;
    bool best = false;
};

size_t path_len(const std::string& as_path) {
    std::istringstream in(as_path);
    size_t n = 0;
    for (std::string w; in >> w;) n++;
    return n;
}

// Every PoP's announcement as the stack makes it, and BGP's choice among them: shortest AS
// path, lowest MED (the lab's BIRD compares MEDs across neighbour ASes: `med metric`; a
// missing MED counts as 0), lowest router ID.
std::vector<Candidate> stack_candidates(const Stack& s) {
    std::vector<Candidate> cands;
    for (auto& p : s.pops) {
        std::string path = std::to_string(p.asn);
        for (int i = 0; i < p.prepend; i++) path += " " + std::to_string(p.asn);
        cands.push_back({&p, path, "", p.med, false});
    }
    Candidate* b = nullptr;
    for (auto& c : cands)
        if (!b || path_len(c.as_path) < path_len(b->as_path) ||
            (path_len(c.as_path) == path_len(b->as_path) &&
             (c.med.value_or(0) < b->med.value_or(0) ||
              (c.med.value_or(0) == b->med.value_or(0) && c.pop->router_id < b->pop->router_id))))
            b = &c;
    if (b) b->best = true;
    return cands;
}

std::string med_text(const std::optional<uint32_t>& m) { return m ? std::to_string(*m) : "none"; }

// Why the best candidate won, in BGP's order: AS path length, MED (a missing MED counts as
// 0), then the lowest router ID.
std::string explain(const Candidate& b, const std::vector<Candidate>& all) {
    if (all.size() == 1) return "the only path";
    size_t bl = path_len(b.as_path);
    bool shorter = true, med_lower = true;
    for (auto& c : all) {
        if (&c == &b) continue;
        if (path_len(c.as_path) <= bl) shorter = false;
        if (path_len(c.as_path) == bl && c.med.value_or(0) <= b.med.value_or(0)) med_lower = false;
    }
    auto vs = [&](auto f) {
        std::vector<std::string> o;
        for (auto& c : all)
            if (&c != &b) o.push_back(fmt::format("{} {}", c.pop->name, f(c)));
        return fmt::format("{} vs {}", f(b), fmt::join(o, ", "));
    };
    if (shorter) return fmt::format("the shortest AS path ({})", vs([](const Candidate& c) { return fmt::format("{} AS", path_len(c.as_path)); }));
    if (med_lower) return fmt::format("equal AS path lengths, the lowest MED ({})", vs([](const Candidate& c) { return med_text(c.med); }));
    bool rid_lowest = true;
    for (auto& c : all)
        if (&c != &b && path_len(c.as_path) == bl && c.med.value_or(0) == b.med.value_or(0) && c.pop->router_id < b.pop->router_id)
            rid_lowest = false;
    if (!rid_lowest) return "equal AS path lengths and MEDs: another of BIRD's tie-breaks (the route's age or the neighbour address)";
    return fmt::format("equal AS path lengths and MEDs, the lowest router ID ({})",
                       vs([](const Candidate& c) { return c.pop->router_id.to_string(); }));
}

// The lab, when one is up and built from this stack.
std::optional<lab::Plan> live_plan(const Stack& s) {
    lab::State st(lab::state_dir());
    if (!st.exists()) return std::nullopt;
    try {
        return lab::make_plan(s, st.dir());
    } catch (const edge::Error&) {
        return std::nullopt;
    }
}

}  // namespace

std::string predicted_pop(const Stack& s) {
    for (auto& c : stack_candidates(s))
        if (c.best) return c.pop->name;
    return "";
}

int run_trace(const TraceOptions& o, edge::out::Output& out) {
    Stack s = load_stack(o.file);
    auto key = edge::net::parse_flow(o.flow);
    if (!key) edge::usage_error("--flow '{}': {}", o.flow, key.error());
    IpAddr src = edge::net::flow_src(*key), dst = edge::net::flow_dst(*key);
    uint16_t dport = edge::net::flow_dport(*key);
    std::string proto = edge::net::proto_to_string(key->proto);
    auto live = live_plan(s);
    lab::State st(lab::state_dir());

    // 1. BGP: which PoP.
    const Prefix* prefix = nullptr;
    for (auto& p : s.prefixes)
        if (p.contains(dst) && (!prefix || p.length() > prefix->length())) prefix = &p;
    if (!prefix) {
        out.emit(Record("trace_bgp").str("flow", o.flow).null("pop").text(
            fmt::format("BGP: {} is in no anycast prefix of {}: no PoP announces it", dst.to_string(), s.path)));
        return 1;
    }
    // Every PoP's route to the prefix: live from BIRD, else as the stack announces it.
    std::vector<Candidate> cands;
    std::string source = "stack";
    bool bird_ok = false;
    if (live)
        for (auto& r : lab::bird_routes(lab::bird_ctl(*live), prefix->to_string(), &bird_ok))
            for (size_t i = 0; i < live->pops.size(); i++)
                if (lab::bird_proto(live->pops[i]) == r.proto)
                    cands.push_back({&live->stack.pops[i], r.as_path, r.via, r.med, r.best});
    if (!cands.empty() || bird_ok) {
        source = "bird";  // (no route at all: every PoP withdrew it)
    } else {
        cands = stack_candidates(s);
    }
    const Candidate* best = nullptr;
    for (auto& c : cands)
        if (c.best) best = &c;
    if (!best) {
        out.emit(Record("trace_bgp").str("flow", o.flow).str("prefix", prefix->to_string()).null("pop").str("source", source).text(
            cands.empty() ? fmt::format("BGP:    BIRD has no path for {}: every PoP withdrew it; the ISP cannot reach the VIP", prefix->to_string())
                          : fmt::format("BGP:    BIRD has {} path{} for {} and no best one: the ISP cannot reach the VIP", cands.size(),
                                        cands.size() == 1 ? "" : "s", prefix->to_string())));
        return 1;
    }
    const Pop* pop = best->pop;
    std::string why = (source == "bird" ? "BIRD's best path" : "predicted from the stack") + std::string(": ") + explain(*best, cands);
    std::vector<Record> crecs;
    for (auto& c : cands) {
        Record cr("route");
        cr.str("pop", c.pop->name).str("as_path", c.as_path).num("as_path_length", uint64_t{path_len(c.as_path)});
        if (c.med) cr.num("med", uint64_t{*c.med});
        else cr.null("med");
        if (!c.via.empty()) cr.str("next_hop", c.via);
        crecs.push_back(cr.boolean("best", c.best));
    }
    out.emit(Record("trace_bgp").str("flow", o.flow).str("prefix", prefix->to_string()).str("pop", pop->name).str("as_path", best->as_path)
                 .str("source", source).str("reason", why).objects("routes", crecs)
                 .text(fmt::format("BGP:    {} -> {} (AS path {}, MED {}): {}", prefix->to_string(), pop->name, best->as_path,
                                   med_text(best->med), why)));
    for (auto& c : cands)
        out.line(fmt::format("          {} {:<6} AS path {:<14} MED {:<5}{}{}", c.best ? "*" : " ", c.pop->name, c.as_path,
                             med_text(c.med), c.via.empty() ? "" : " via " + c.via, c.best ? "  <- best" : ""));

    // 2. The balancer: Maglev over the PoP's backends (weight > 0), as xdp-lb builds it.
    bool service = false;
    for (auto& v : s.vips)
        if (v.address == dst)
            for (auto& svc : v.services) service = service || (svc.port == dport && svc.proto == proto);
    if (!service) {
        out.emit(Record("trace_lb").str("pop", pop->name).null("backend").text(
            fmt::format("xdp-lb: no service {}:{}/{}: the balancer passes the packet to its own stack", dst.to_string(), dport, proto)));
        return 0;
    }
    std::vector<edge::maglev::Backend> bs;
    for (auto& b : pop->backends)
        if (b.weight > 0) bs.push_back({b.address.to_string(), b.weight});
    edge::maglev::Table table(bs, s.table_size, {});
    auto hk = edge::hash::parse_key(s.hash_key);
    uint64_t h = edge::hash::flow_hash(*key, *hk);
    uint32_t slot = edge_flow_slot(h, s.table_size), ring = s.table_size;
    std::string maglev = bs[table.lookup(h)].name, backend = maglev, picked_by = "maglev", lb_source = "stack";
    std::string text;
    Record lr("trace_lb");
    std::optional<lab::LbFlowView> view;
    // A live lab: the balancer's own tables (its Maglev table as last loaded, its connection table).
    if (live) {
        for (auto& lp : live->pops)
            if (lp.name == pop->name)
                for (auto& x : lab::xdp_progs(lp.ns_lb))
                    if (x.ifname == lp.lb_if) view = lab::lb_flow_view(x.id, *key);
        if (!view) view = lab::LbFlowView{.error = fmt::format("no XDP program on {}'s balancer", pop->name)};
    }
    if (view && view->error.empty() && view->service) {
        lb_source = "xdp-lb";
        h = view->hash;
        slot = view->slot;
        ring = view->ring_size;
        maglev = view->maglev_backend;
        bool ct_used = view->ct_entry && !view->ct_backend.empty();
        backend = ct_used ? view->ct_backend : maglev;
        picked_by = ct_used ? "conntrack" : "maglev";
        std::string ct_text;
        if (!view->ct_entry) ct_text = "no connection-table entry: a new flow, Maglev's choice is recorded on its first packet";
        else if (view->ct_backend.empty()) ct_text = "a connection-table entry for a backend that no longer exists: Maglev's choice replaces it";
        else if (view->ct_backend == maglev)
            ct_text = fmt::format("connection-table entry -> {} (the same as Maglev's choice)", view->ct_backend);
        else
            ct_text = fmt::format("connection-table entry -> {}, NOT Maglev's choice {}: the established flow stays on {} "
                                  "(its backend was drained or the table changed since it began); a new SYN would go to {}",
                                  view->ct_backend, maglev.empty() ? "(none)" : maglev, view->ct_backend, maglev.empty() ? "nowhere" : maglev);
        text = fmt::format("xdp-lb: flow hash {:016x}, slot {} of {} in {}'s live table: Maglev picks {}; {}; packets go to {}", h, slot,
                           ring, pop->name, maglev.empty() ? "nothing (every backend drained)" : maglev, ct_text,
                           backend.empty() ? "nowhere (dropped)" : backend);
        lr.boolean("conntrack", view->ct_entry);
        if (view->ct_entry && !view->ct_backend.empty()) lr.str("conntrack_backend", view->ct_backend).boolean("conntrack_current", view->ct_current);
        else lr.null("conntrack_backend");
    } else {
        text = fmt::format("xdp-lb: flow hash {:016x}, slot {} of {}: backend {} (of {}; predicted from the stack for a new flow -- "
                           "an established one keeps its connection-table entry{})",
                           h, slot, s.table_size, backend, bs.size(),
                           view && !view->error.empty() ? "; the live tables: " + view->error
                           : view                       ? "; the live balancer has no such service"
                                                        : "");
        lr.null("conntrack");
        if (view && !view->error.empty()) lr.str("live_error", view->error);
    }
    if (backend.empty()) {
        out.emit(lr.str("pop", pop->name).str("flow_hash", fmt::format("{:016x}", h)).num("slot", uint64_t{slot}).null("backend")
                     .str("maglev_backend", maglev).str("picked_by", "none").str("source", lb_source).text(text));
        return 0;
    }
    out.emit(lr.str("pop", pop->name).str("flow_hash", fmt::format("{:016x}", h)).num("slot", uint64_t{slot}).str("backend", backend)
                 .str("maglev_backend", maglev).str("picked_by", picked_by).num("backends", uint64_t{bs.size()}).str("source", lb_source)
                 .text(text));

    // 3. The guard in front of the backend.
    std::string verdict, mode = "unknown";
    if (in_list(s.deny, src)) verdict = "dropped: the source is on the deny list";
    else if (in_list(s.allow, src)) verdict = "passed: the source is on the allow list";
    else if (proto != "tcp") verdict = "passed: the guard protects TCP only";
    else {
        if (live) {
            for (auto& lp : live->pops)
                if (lp.name == pop->name)
                    for (auto& b : lp.backends)
                        if (b.addr == backend) {
                            try {
                                auto g = lab::find_proc(st, fmt::format("{}/{}/synflood-guard", pop->name, backend));
                                auto j = lab::tool_json(g, {lab::tool_path("synflood-guard"), "-j", "status", "-i", b.srv_if});
                                std::istringstream in(j);
                                for (std::string line; std::getline(in, line);)
                                    if (line.find(fmt::format("port {}\"", dport)) != std::string::npos) {
                                        auto p = line.find("\"mode\":\"");
                                        if (p != std::string::npos) mode = line.substr(p + 8, line.find('"', p + 8) - p - 8);
                                    }
                            } catch (const edge::Error&) {
                            }
                        }
        }
        verdict = mode == "cookie" ? "a SYN is answered with a SYN cookie from XDP (flood mode); the handshake completes on the cookie ACK"
                                   : fmt::format("a SYN passes to the kernel ({}), within {} SYN/s per source{}",
                                                 mode == "unknown" ? "no lab is up: pass mode until a flood switches it to cookies"
                                                                   : "mode " + mode,
                                                 s.src_pps,
                                                 s.urpf != "off" ? fmt::format(" and a {} uRPF check", s.urpf) : "");
    }
    out.emit(Record("trace_guard").str("backend", backend).str("mode", mode).str("verdict", verdict).text("guard:  " + verdict));

    // 4. The cache.
    if (proto != "tcp" || dport != s.cache_port) {
        out.emit(Record("trace_cache").null("key").text(fmt::format("cache:  port {}/{} is not the cache port {}/tcp", dport, proto, s.cache_port)));
        return 0;
    }
    // The Host header a client sends for http://VIP/ (an IPv6 address in brackets).
    std::string host = !o.host.empty() ? o.host : dst.is_v4() ? dst.to_string() : "[" + dst.to_string() + "]";
    std::string ckey = host + o.path;
    std::transform(ckey.begin(), ckey.begin() + static_cast<long>(host.size()), ckey.begin(), ::tolower);
    Record r("trace_cache");
    r.str("key", ckey).str("backend", backend);
    std::string cached = "unknown (no lab is up)";
    if (live) {
        for (auto& lp : live->pops)
            if (lp.name == pop->name)
                for (auto& b : lp.backends)
                    if (b.addr == backend) {
                        lab::HttpConn c(b.ns_srv, dst.to_string(), dport, 2);
                        c.set_host(host);
                        auto resp = c.get(o.path, 2, "Cache-Control: only-if-cached\r\n");
                        if (resp) {
                            r.boolean("cached", resp->status == 200);
                            cached = resp->status == 200 ? fmt::format("cached (age {} s)", resp->header("Age")) : "not cached";
                        }
                    }
    }
    if (cached.rfind("unknown", 0) == 0) r.null("cached");
    out.emit(r.text(fmt::format("cache:  key {} on {}: {}", ckey, backend, cached)));
    return 0;
}

}  // namespace edgectl
