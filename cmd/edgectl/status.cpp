// edgectl status: per component, from its control socket or pinned maps.
#include "status.hpp"

#include <sstream>

#include <fmt/format.h>

#include "lab_plan.hpp"
#include "lab_query.hpp"
#include "lab_state.hpp"
#include "lab_sys.hpp"
#include "out/record.hpp"

namespace edgectl {

using edge::out::Record;
using namespace lab;

namespace {

std::string field(const std::string& line, const std::string& key) {
    auto p = line.find("\"" + key + "\":\"");
    if (p == std::string::npos) return "";
    p += key.size() + 4;
    return line.substr(p, line.find('"', p) - p);
}

// pop-a/10.1.1.11/synflood-guard -> {"pop-a", "10.1.1.11", "synflood-guard"}
std::vector<std::string> parts(const std::string& name) {
    std::vector<std::string> v;
    std::istringstream in(name);
    for (std::string x; std::getline(in, x, '/');) v.push_back(x);
    return v;
}

Record base(const ProcEntry& p, const std::string& component, bool running) {
    auto w = parts(p.name);
    Record r("component_status");
    r.str("component", component).str("name", p.name).str("namespace", p.ns).num("pid", int64_t{p.pid}).boolean("running", running);
    return r;
}

std::string first_line(const std::string& jsonl, const std::string& needle) {
    std::istringstream in(jsonl);
    for (std::string line; std::getline(in, line);)
        if (line.find(needle) != std::string::npos) return line;
    return "";
}

}  // namespace

int run_status(edge::out::Output& out) {
    State st(state_dir());
    if (!st.exists()) {
        out.emit(Record("component_status").str("component", "lab").boolean("running", false).text(
            fmt::format("no lab is up ({}): edgectl lab up", st.dir())));
        return 1;
    }
    bool all = true;
    for (auto& p : st.procs()) {
        bool a = alive(p.pid, p.start);
        all = all && a;
        auto w = parts(p.name);
        const std::string comp = w.back();
        std::string where = w.size() > 1 ? p.name.substr(0, p.name.rfind('/')) : "";
        std::string head = fmt::format("{:<15} {:<20}", comp, where.empty() ? p.ns : where);
        Record r = base(p, comp, a);
        if (!a) {
            out.emit(r.text(head + " NOT RUNNING"));
            continue;
        }
        if (comp == "bgp-announce") {
            auto j = run({tool_path("bgp-announce"), "-j", "ctl", "-s", st.dir() + "/" + w[0] + "/bgp.sock", "status"}, 5).out;
            auto peer = first_line(j, "\"type\":\"bgp_peer\""), grp = first_line(j, "\"type\":\"bgp_group\"");
            bool healthy = grp.find("\"healthy\":true") != std::string::npos;
            auto sent = static_cast<uint64_t>(json_num(peer, "", "prefixes_sent"));
            r.str("peer", field(peer, "peer")).str("session", field(peer, "state")).num("prefixes_sent", sent).boolean("healthy", healthy);
            r.text(fmt::format("{} session {} {}, {} prefixes sent, health check {}", head, field(peer, "peer"), field(peer, "state"), sent,
                               healthy ? "passing" : "FAILING (withdrawn)"));
        } else if (comp == "bird") {
            auto t = run({"birdc", "-s", st.dir() + "/bird.ctl", "show", "protocols"}, 5).out;
            size_t up = 0, bgp = 0;
            std::istringstream in(t);
            for (std::string line; std::getline(in, line);)
                if (line.find(" BGP ") != std::string::npos) {
                    bgp++;
                    up += line.find("Established") != std::string::npos;
                }
            r.num("bgp_sessions", uint64_t{bgp}).num("established", uint64_t{up});
            r.text(fmt::format("{} {}/{} BGP sessions established", head, up, bgp));
        } else if (comp == "xdp-lb" && !p.iface.empty()) {
            auto j = tool_json(p, {tool_path("xdp-lb"), "-j", "stats", "-i", p.iface});
            uint64_t pk = 0, nf = 0;
            std::istringstream in(j);
            for (std::string line; std::getline(in, line);)
                if (line.find("\"type\":\"lb_service_stats\"") != std::string::npos) {
                    pk += static_cast<uint64_t>(json_num(line, "", "packets"));
                    nf += static_cast<uint64_t>(json_num(line, "", "new_flows"));
                }
            auto reasons = first_line(j, "\"type\":\"lb_reasons\"");
            r.str("interface", p.iface).num("packets", pk).num("new_flows", nf).num("tx", static_cast<uint64_t>(json_num(reasons, "", "tx")));
            r.text(fmt::format("{} on {}: {} VIP packets, {} new flows, {} sent to backends", head, p.iface, pk, nf,
                               static_cast<uint64_t>(json_num(reasons, "", "tx"))));
        } else if (comp == "synflood-guard" && !p.iface.empty()) {
            auto s = tool_json(p, {tool_path("synflood-guard"), "-j", "status", "-i", p.iface});
            auto j = tool_json(p, {tool_path("synflood-guard"), "-j", "stats", "-i", p.iface});
            std::string mode = "pass";
            std::istringstream in(s);
            for (std::string line; std::getline(in, line);)
                if (line.find("\"type\":\"guard_destination\"") != std::string::npos && field(line, "mode") != "pass") mode = field(line, "mode");
            auto reasons = first_line(j, "\"type\":\"guard_reasons\"");
            auto cookies = static_cast<uint64_t>(json_num(reasons, "", "cookie_sent"));
            auto acks = static_cast<uint64_t>(json_num(reasons, "", "cookie_ack_ok"));
            r.str("interface", p.iface).str("mode", mode).num("cookies_sent", cookies).num("cookie_acks_ok", acks);
            r.text(fmt::format("{} on {}: mode {}, {} cookies sent, {} cookie ACKs ok", head, p.iface, mode, cookies, acks));
        } else if (comp == "cache-proxy") {
            auto j = cache_stats(p.ns, "127.0.0.1:9090");
            auto h = static_cast<uint64_t>(json_num(j, "", "requests_total_cache_hit"));
            auto m = static_cast<uint64_t>(json_num(j, "", "requests_total_cache_miss"));
            auto objs = static_cast<uint64_t>(json_num(j, "", "cache_objects"));
            r.num("hits", h).num("misses", m).num("objects", objs);
            r.text(fmt::format("{} {} hits, {} misses, {} objects cached", head, h, m, objs));
        } else {
            if (!p.iface.empty()) r.str("interface", p.iface);
            r.text(fmt::format("{} running{}", head, p.iface.empty() ? "" : " on " + p.iface));
        }
        out.emit(r);
    }
    return all ? 0 : 1;
}

}  // namespace edgectl
