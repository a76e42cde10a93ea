// edgectl lab: starting and watching the daemons of the lab.
#include "lab_procs.hpp"

#include <fstream>

#include <fmt/format.h>

#include "cli/error.hpp"
#include "lab_conf.hpp"
#include "lab_sys.hpp"

namespace edgectl::lab {

std::string log_path(const std::string& dir, const std::string& name, const std::string& ext) {
    std::string n = name;
    for (auto& c : n)
        if (c == '/') c = '_';
    return fmt::format("{}/logs/{}.{}", dir, n, ext);
}

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

ProcEntry start_proc(State& st, const std::string& name, const std::string& ns, const std::vector<std::string>& argv,
                     const std::string& iface) {
    ProcEntry p;
    p.name = name;
    p.ns = ns;
    p.iface = iface;
    p.pid = spawn(in_ns(ns, argv), log_path(st.dir(), name, "out"), log_path(st.dir(), name, "err"));
    for (int i = 0; i < 100 && !p.start; i++) p.start = start_time(p.pid);
    st.add_proc(p);
    return p;
}

ProcEntry find_proc(const State& st, const std::string& name) {
    for (auto& p : st.procs())
        if (p.name == name) return p;
    edge::failure("no process {} in the lab (is it up? edgectl lab status)", name);
}

void check_procs(const State& st) {
    for (auto& p : st.procs()) {
        if (alive(p.pid, p.start)) continue;
        std::string err = read_file(log_path(st.dir(), p.name, "err"));
        while (!err.empty() && err.back() == '\n') err.pop_back();
        if (auto nl = err.rfind('\n'); nl != std::string::npos) err = err.substr(nl + 1);
        edge::failure("{} (pid {}, namespace {}) exited: {}", p.name, p.pid, p.ns, err.empty() ? "no message" : err);
    }
}

double wait_until(const State& st, const std::string& what, double secs, const std::function<bool()>& pred) {
    double t0 = now_s();
    for (;;) {
        if (pred()) return now_s() - t0;
        check_procs(st);
        if (now_s() - t0 > secs) edge::failure("{}: not within {} s", what, secs);
        sleep_ms(100);
    }
}

std::vector<std::string> in_proc(const ProcEntry& p, std::vector<std::string> argv) {
    argv.insert(argv.begin(), {"nsenter", "-t", std::to_string(p.pid), "-m", "-n"});
    return argv;
}

void start_all(const Plan& pl, State& st) {
    const std::string xlb = tool_path("xdp-lb"), sfg = tool_path("synflood-guard"), cp = tool_path("cache-proxy"),
                      bgp = tool_path("bgp-announce");
    std::string o = origin_dir(pl);
    start_proc(st, "origin", pl.ns_org, {"nginx", "-p", o + "/", "-e", o + "/error.log", "-c", o + "/nginx.conf"});
    start_proc(st, "bird", pl.ns_isp, {"bird", "-f", "-c", pl.dir + "/bird.conf", "-s", bird_ctl(pl), "-P", pl.dir + "/bird.pid"});
    for (auto& p : pl.pops) {
        auto conf = [&](const char* f) { return conf_file(pl, p, f); };
        // XDP_TX on a veth needs an XDP program on the peer end: a decap that matches nothing.
        start_proc(st, p.name + "/lb-peer", p.ns_rtr, {xlb, "-j", "decap", "-i", p.lb_port, "--address", "192.0.2.255", "--mode", "native"}, p.lb_port);
        start_proc(st, p.name + "/xdp-lb", p.ns_lb, {xlb, "-j", "-c", conf("xdp-lb.toml"), "run", "-i", p.lb_if, "--mode", "native"}, p.lb_if);
        for (size_t i = 0; i < p.backends.size(); i++) {
            auto& b = p.backends[i];
            std::string n = fmt::format("{}/{}", p.name, b.addr);
            start_proc(st, n + "/decap", b.ns, {xlb, "-j", "decap", "-i", b.out_if, "--mode", "native"}, b.out_if);
            start_proc(st, n + "/guard-peer", b.ns, {xlb, "-j", "decap", "-i", b.in_if, "--address", "192.0.2.255", "--mode", "native"}, b.in_if);
            start_proc(st, n + "/synflood-guard", b.ns_srv, {sfg, "-j", "-c", conf("synflood-guard.toml"), "run", "-i", b.srv_if, "--mode", "native"}, b.srv_if);
            start_proc(st, n + "/cache-proxy", b.ns_srv, {cp, "-j", "-c", conf("cache-proxy.toml"), "--access-log", access_log(p, i)});
        }
        start_proc(st, p.name + "/bgp-announce", p.ns_rtr, {bgp, "-j", "-c", conf("bgp-announce.toml"), "run", "--control-socket", bgp_sock(p)});
    }
}

}  // namespace edgectl::lab
