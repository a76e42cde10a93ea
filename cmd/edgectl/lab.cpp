// edgectl lab up|down|status.
#include "lab.hpp"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "cli/error.hpp"
#include "lab_conf.hpp"
#include "lab_http.hpp"
#include "lab_net.hpp"
#include "lab_procs.hpp"
#include "lab_query.hpp"
#include "lab_sys.hpp"
#include "out/record.hpp"

namespace edgectl::lab {

using edge::out::Record;

void say(edge::out::Output& out, const std::string& step, const std::string& text) {
    out.emit(Record("lab_event").str("step", step).str("message", text).text(text));
}

namespace {

void preflight() {
    if (geteuid() != 0) edge::failure("the lab needs root (network namespaces, XDP): run it with sudo");
    for (const char* t : {"xdp-lb", "synflood-guard", "cache-proxy", "bgp-announce"})
        if (access(tool_path(t).c_str(), X_OK) != 0)
            edge::failure("{} not found at {}: build the project, or set EDGE_BIN to the directory of the tools", t, tool_path(t));
    for (const char* t : {"ip", "bird", "birdc", "nginx", "ethtool", "nsenter", "ss"})
        if (run({"sh", "-c", std::string("command -v ") + t}, 5).rc != 0)
            edge::failure("{} not installed: apt-get install iproute2 bird2 nginx ethtool util-linux", t);
}

void wait_ready(const Plan& pl, State& st, edge::out::Output& out) {
    double t;
    for (auto& p : st.procs()) {
        if (p.name == "origin" || p.name == "bird" || p.name.find("cache-proxy") != std::string::npos ||
            p.name.find("bgp-announce") != std::string::npos)
            continue;
        auto err = log_path(st.dir(), p.name, "err");
        wait_until(st, p.name + " attaching its XDP program", 30, [&] { return read_file(err).find("attached") != std::string::npos; });
    }
    say(out, "up", "XDP programs attached (native): balancers, decap, guards");
    t = wait_until(st, "BIRD answering on " + bird_ctl(pl), 15, [&] { return run({"birdc", "-s", bird_ctl(pl), "show", "status"}, 3).rc == 0; });
    t = wait_until(st, "the origin answering", 15, [&] { return http_get(pl.ns_org, pl.org_addr, pl.org_port, "/index.html", 1).has_value(); });
    for (auto& p : pl.pops)
        for (auto& b : p.backends)
            wait_until(st, fmt::format("cache-proxy on {} ({})", b.addr, b.ns_srv), 20,
                       [&] { return !cache_stats(b.ns_srv, pl.stack.admin.empty() ? "127.0.0.1:9090" : pl.stack.admin).empty(); });
    say(out, "up", "origin, BIRD and every cache-proxy answer");
    for (auto& p : pl.pops) {
        t = wait_until(st, fmt::format("{}: BGP session with the ISP established", p.name), 30, [&] {
            auto v = bgp_peers(bgp_sock(p));
            if (v.empty()) return false;
            for (auto& x : v)
                if (x.state != "established") return false;
            return true;
        });
    }
    std::string prefix = pl.pops[0].v4_prefixes.at(0);
    t = wait_until(st, fmt::format("BIRD holding {} from every PoP", prefix), 30,
                   [&] { return bird_routes(bird_ctl(pl), prefix).size() == pl.pops.size(); });
    say(out, "up", fmt::format("BGP sessions established; BIRD has {} from {} PoPs", prefix, pl.pops.size()));
    wait_until(st, "a route to the VIP in the ISP's FIB", 10, [&] { return !fib_next_hop(pl.ns_isp, pl.vip).empty(); });
    std::string why;
    t = wait_until(st, fmt::format("the client reaching http://{}:{}/", pl.vip, pl.port), 15, [&] {
        auto r = http_get(pl.ns_cli, pl.vip, pl.port, "/index.html", 2, &why);
        return r && r->status == 200;
    });
    (void)t;
    say(out, "up", fmt::format("the client reaches http://{}:{}/ through the edge", pl.vip, pl.port));
    if (!pl.vip6.empty()) {
        wait_until(st, fmt::format("the client reaching http://[{}]:{}/", pl.vip6, pl.port), 15, [&] {
            auto r = http_get(pl.ns_cli, pl.vip6, pl.port, "/index.html", 2, &why);
            return r && r->status == 200;
        });
        say(out, "up", fmt::format("and http://[{}]:{}/ over IPv6", pl.vip6, pl.port));
    }
}

}  // namespace

Plan bring_up(const std::string& file, edge::out::Output& out) {
    install_signal_handlers();
    Stack s = load_stack(file);
    Plan pl = make_plan(s, state_dir());
    preflight();
    State st(pl.dir);
    if (st.exists()) {
        for (auto& p : st.procs())
            if (alive(p.pid, p.start))
                edge::failure("a lab is already up ({}): edgectl lab down first", pl.dir);
        teardown(pl.dir);
    }
    if (auto left = lab_namespaces(); !left.empty())
        edge::failure("namespace {} exists (a lab not cleaned up?): edgectl lab down removes every el-* namespace", left[0]);
    try {
        st.create();
        st.set("stack", s.path);
        write_peer_configs(pl);
        write_tool_configs(pl, pl.stack);
        for (auto& p : pl.pops) std::ofstream(p.dir + "/healthy") << "ok\n";
        say(out, "up", fmt::format("stack {} ({}): {} PoPs, VIP {}:{}, state in {}", pl.stack.name, s.path, pl.pops.size(), pl.vip,
                                   pl.port, pl.dir));
        build_network(pl, st);
        say(out, "up", fmt::format("{} namespaces and their links", pl.namespaces().size()));
        start_all(pl, st);
        say(out, "up", fmt::format("{} processes started", st.procs().size()));
        wait_ready(pl, st, out);
    } catch (...) {
        ignore_signals();
        for (auto& l : teardown(pl.dir)) edge::out::warn("teardown: " + l);
        throw;
    }
    return pl;
}

int up(const std::string& file, edge::out::Output& out) {
    try {
        bring_up(file, out);
    } catch (const Interrupted&) {
        edge::failure("interrupted: everything the lab had started was removed");
    }
    say(out, "up", "the lab is up: edgectl lab status, edgectl lab down");
    return 0;
}

int down(edge::out::Output& out) {
    ignore_signals();
    std::string dir = state_dir();
    bool had = State(dir).exists();
    auto lines = teardown(dir);
    if (!had && lines.empty()) {
        say(out, "down", "no lab was up");
        return 0;
    }
    for (auto& l : lines) say(out, "down", l);
    say(out, "down", "the lab is down");
    return 0;
}

int status(edge::out::Output& out) {
    State st(state_dir());
    if (!st.exists()) {
        out.emit(Record("lab_status").boolean("up", false).str("dir", st.dir()).text("no lab is up (" + st.dir() + ")"));
        return 1;
    }
    auto procs = st.procs();
    size_t running = 0;
    for (auto& p : procs) running += alive(p.pid, p.start);
    auto nss = st.namespaces();
    size_t present = 0;
    for (auto& n : nss) present += access(("/run/netns/" + n).c_str(), F_OK) == 0;
    out.emit(Record("lab_status")
                 .boolean("up", running == procs.size() && present == nss.size())
                 .str("dir", st.dir())
                 .str("stack", st.get("stack"))
                 .num("namespaces", uint64_t{present})
                 .num("processes", uint64_t{procs.size()})
                 .num("running", uint64_t{running})
                 .text(fmt::format("lab in {} (stack {}): {}/{} namespaces, {}/{} processes running", st.dir(), st.get("stack"), present,
                                   nss.size(), running, procs.size())));
    for (auto& p : procs) {
        bool a = alive(p.pid, p.start);
        out.emit(Record("lab_process").str("name", p.name).str("namespace", p.ns).num("pid", int64_t{p.pid}).boolean("running", a).text(
            fmt::format("  {:<38} pid {:<7} {:<10} {}", p.name, p.pid, p.ns, a ? "running" : "EXITED")));
    }
    for (auto& p : procs) {
        if (p.name.size() < 13 || p.name.substr(p.name.size() - 13) != "/bgp-announce") continue;
        std::string pop = p.name.substr(0, p.name.size() - 13);
        for (auto& b : bgp_peers(st.dir() + "/" + pop + "/bgp.sock"))
            out.emit(Record("lab_bgp_session").str("pop", pop).str("peer", b.peer).str("state", b.state).num("announced", b.announced).text(
                fmt::format("  BGP {} -> {}: {}, {} routes announced", pop, b.peer, b.state, b.announced)));
    }
    if (access((st.dir() + "/bird.ctl").c_str(), F_OK) == 0) {
        auto rt = run({"birdc", "-s", st.dir() + "/bird.ctl", "show", "route"}, 5);
        std::istringstream in(rt.out);
        std::string line, net;
        while (std::getline(in, line)) {
            if (line.find("unicast [") == std::string::npos) continue;
            if (line[0] != ' ') net = line.substr(0, line.find(' '));
            BirdRoute br;
            auto s = line.find("unicast [") + 9;
            br.proto = line.substr(s, line.find(' ', s) - s);
            br.best = line.find("] * ") != std::string::npos;
            out.emit(Record("lab_isp_route").str("prefix", net).str("protocol", br.proto).boolean("best", br.best).text(
                fmt::format("  ISP route {:<20} from {} {}", net, br.proto, br.best ? "(best)" : "")));
        }
    }
    for (auto& n : nss)
        for (auto& x : xdp_progs(n))
            out.emit(Record("lab_xdp").str("namespace", x.ns).str("interface", x.ifname).str("mode", x.mode).num("prog_id", uint64_t{x.id}).text(
                fmt::format("  XDP {:<10} {:<12} {} id {}", x.ns, x.ifname, x.mode, x.id)));
    return running == procs.size() ? 0 : 1;
}

}  // namespace edgectl::lab
