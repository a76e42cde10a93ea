// edgectl trace: BGP -> Maglev -> guard -> cache for one flow.
#include "trace.hpp"

#include <algorithm>
#include <sstream>

#include <fmt/format.h>

#include "cli/error.hpp"
#include "hash/flow_hash.hpp"
#include "lab_conf.hpp"
#include "lab_http.hpp"
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
    const Pop* pop = nullptr;
    std::string why, as_path, source;
    if (live && dst.is_v4()) {
        for (auto& r : lab::bird_routes(lab::bird_ctl(*live), prefix->to_string()))
            if (r.best)
                for (size_t i = 0; i < live->pops.size(); i++)
                    if (lab::bird_proto(live->pops[i]) == r.proto) {
                        pop = &live->stack.pops[i];
                        as_path = r.as_path;
                        why = fmt::format("BIRD's best path (protocol {}, next hop {})", r.proto, r.via);
                    }
        source = "bird";
    }
    if (!pop) {
        // Every PoP announces the same prefixes with a one-AS path and no MED: BGP's tie
        // breaks go to the lowest BGP identifier (router_id).
        for (auto& p : s.pops)
            if (!pop || p.router_id < pop->router_id) pop = &p;
        as_path = std::to_string(pop->asn);
        why = fmt::format("predicted: every PoP announces {} with AS path length 1 and no MED; the lowest router ID ({}) wins",
                          prefix->to_string(), pop->router_id.to_string());
        source = "stack";
    }
    out.emit(Record("trace_bgp").str("flow", o.flow).str("prefix", prefix->to_string()).str("pop", pop->name).str("as_path", as_path)
                 .str("source", source).str("reason", why)
                 .text(fmt::format("BGP:    {} -> {} (AS path {}): {}", prefix->to_string(), pop->name, as_path, why)));

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
    uint32_t slot = static_cast<uint32_t>(h % s.table_size);
    std::string backend = bs[table.lookup(h)].name;
    out.emit(Record("trace_lb").str("pop", pop->name).str("flow_hash", fmt::format("{:016x}", h)).num("slot", uint64_t{slot})
                 .str("backend", backend).num("backends", uint64_t{bs.size()})
                 .text(fmt::format("xdp-lb: flow hash {:016x}, slot {} of {}: backend {} (of {}; a new flow -- an established one keeps "
                                   "its connection-table entry)",
                                   h, slot, s.table_size, backend, bs.size())));

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
    std::string host = o.host.empty() ? dst.to_string() : o.host;
    std::string ckey = host + o.path;
    std::transform(ckey.begin(), ckey.begin() + static_cast<long>(host.size()), ckey.begin(), ::tolower);
    Record r("trace_cache");
    r.str("key", ckey).str("backend", backend);
    std::string cached = "unknown (no lab is up)";
    if (live && dst.is_v4()) {
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
