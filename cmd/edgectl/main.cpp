// edgectl: the edge as one stack file — validate it, render each tool's config per PoP,
// show a summary, run the whole edge in network namespaces (lab), show its status, trace
// a flow through it. Without FILE, the built-in examples/edge.toml is used.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/error.hpp"
#include "cli/tool.hpp"
#include "out/output.hpp"
#include "out/record.hpp"
#include "lab.hpp"
#include "render.hpp"
#include "stack.hpp"
#include "status.hpp"
#include "trace.hpp"

using namespace edgectl;
using edge::out::Record;

namespace {

struct Options {
    std::string file;  // "" = built-in
    std::string out;
};

size_t service_count(const Stack& s) {
    size_t n = 0;
    for (auto& v : s.vips) n += v.services.size();
    return n;
}
size_t backend_count(const Stack& s) {
    size_t n = 0;
    for (auto& p : s.pops) n += p.backends.size();
    return n;
}

int run_validate(const Options& o, edge::out::Output& out) {
    Stack s = load_stack(o.file);
    out.emit(Record("stack_check")
                 .str("file", s.path)
                 .boolean("ok", true)
                 .num("pops", uint64_t{s.pops.size()})
                 .num("vips", uint64_t{s.vips.size()})
                 .num("services", uint64_t{service_count(s)})
                 .num("backends", uint64_t{backend_count(s)})
                 .text(fmt::format("{}: OK: {} PoPs, {} VIPs, {} services, {} backends", s.path, s.pops.size(), s.vips.size(),
                                   service_count(s), backend_count(s))));
    return 0;
}

int run_render(const Options& o, edge::out::Output& out) {
    Stack s = load_stack(o.file);
    for (auto& f : render(s, o.out))
        out.emit(Record("rendered_file").str("pop", f.pop).str("tool", f.tool).str("path", f.path).text(
            fmt::format("{}: {} ({})", f.pop, f.path, f.tool)));
    return 0;
}

int run_show(const Options& o, edge::out::Output& out) {
    Stack s = load_stack(o.file);
    std::vector<std::string> prefixes;
    for (auto& p : s.prefixes) prefixes.push_back(p.to_string());
    out.emit(Record("stack")
                 .str("name", s.name)
                 .str("file", s.path)
                 .strings("prefixes", prefixes)
                 .num("pops", uint64_t{s.pops.size()})
                 .num("maglev_table_size", uint64_t{s.table_size})
                 .str("hash_key", s.hash_key)
                 .str("origin", s.origin)
                 .text(fmt::format("stack {} ({}): anycast {}; Maglev M={}; origin {}", s.name, s.path, fmt::join(prefixes, ", "),
                                   s.table_size, s.origin)));
    for (auto& v : s.vips) {
        std::vector<std::string> svcs;
        for (auto& x : v.services) svcs.push_back(fmt::format("{}/{}", x.port, x.proto));
        out.emit(Record("vip").str("address", v.address.to_string()).strings("services", svcs).text(
            fmt::format("vip {}: {}", v.address.to_string(), fmt::join(svcs, " "))));
    }
    for (auto& p : s.pops) {
        std::vector<std::string> peers, backends;
        std::vector<Record> peer_recs, backend_recs;
        for (auto& q : p.peers) {
            peers.push_back(q.name == q.address.to_string() ? fmt::format("{} AS{}", q.name, q.remote_as)
                                                             : fmt::format("{} {} AS{}", q.name, q.address.to_string(), q.remote_as));
            peer_recs.push_back(Record("peer").str("name", q.name).str("address", q.address.to_string()).num("remote_as", uint64_t{q.remote_as}));
        }
        for (auto& b : p.backends) {
            backends.push_back(b.weight == 1 ? b.address.to_string() : fmt::format("{}={}", b.address.to_string(), b.weight));
            backend_recs.push_back(Record("backend").str("address", b.address.to_string()).num("weight", uint64_t{b.weight}));
        }
        Record r("pop");
        r.str("name", p.name).num("asn", uint64_t{p.asn}).str("router_id", p.router_id.to_string());
        if (p.health.empty()) r.null("health");
        else r.str("health", p.health);
        if (p.med) r.num("med", uint64_t{*p.med});
        else r.null("med");
        r.num("prepend", uint64_t(p.prepend));
        r.objects("peers", peer_recs).objects("backends", backend_recs);
        std::string bgp = p.med ? fmt::format(" MED {}", *p.med) : "";
        if (p.prepend) bgp += fmt::format(" prepend {}", p.prepend);
        r.text(fmt::format("pop {}: AS{} router-id {}{}; peers: {}; backends: {}{}", p.name, p.asn, p.router_id.to_string(), bgp,
                           fmt::join(peers, ", "), fmt::join(backends, " "), p.health.empty() ? "" : "; health " + p.health));
        out.emit(r);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    edge::cli::Tool tool("edgectl", "edgectl: the edge as one stack file: validate it, render every tool's config per PoP, run it in a lab, trace a flow");
    Options o;
    auto with = [&](int (*f)(const Options&, edge::out::Output&)) {
        return [&, f] {
            edge::out::Output output(tool.globals().json);
            return f(o, output);
        };
    };
    auto stack_arg = [&](CLI::App* cmd) {
        tool.file(cmd->add_option("file", o.file, "Stack file ('-' for stdin; default: the built-in examples/edge.toml)"));
    };

    auto* validate = tool.command("validate", "Check a stack file: syntax, types and cross-checks (exit 2 with FILE:LINE: key: why)",
                                  with(run_validate));
    stack_arg(validate);

    auto* render = tool.command("render", "Write each tool's config per PoP: OUT/<pop>/{xdp-lb,synflood-guard,cache-proxy,bgp-announce,maglev-calc}.toml, backends.txt",
                                with(run_render));
    stack_arg(render);
    tool.file(render->add_option("-o,--out", o.out, "Directory to write into (created; files are replaced)"))->required();

    auto* show = tool.command("show", "The stack's summary: prefixes, VIPs and services, PoPs with peers and backends",
                              with(run_show));
    stack_arg(show);

    tool.command("status", "One view of every running lab component, from control sockets and pinned maps (exit 1 if one is down)", [&] {
        edge::out::Output output(tool.globals().json);
        return run_status(output);
    });

    TraceOptions t;
    auto* trace = tool.command("trace", "One flow layer by layer: the PoP BGP routes it to, the Maglev backend, the guard, the cache", [&] {
        edge::out::Output output(tool.globals().json);
        t.file = o.file;
        return run_trace(t, output);
    });
    stack_arg(trace);
    trace->add_option("--flow", t.flow, "The flow: SRC:PORT-VIP:PORT/PROTO")->required();
    trace->add_option("--path", t.path, "Request path for the cache key (default /)");
    trace->add_option("--host", t.host, "Host header for the cache key (default: the VIP)");

    CLI::App* lab = nullptr;
    lab = tool.command("lab", "The whole edge in network namespaces: ISP (BIRD), PoPs, balancers, guards, caches, origin (root)", [&] {
        edge::out::Output output(tool.globals().json);
        for (auto* c : lab->get_subcommands()) {
            if (c->get_name() == "up") return lab::up(o.file, output);
            if (c->get_name() == "down") return lab::down(output);
            if (c->get_name() == "status") return lab::status(output);
            if (c->get_name() == "demo") return lab::demo(o.file, output);
        }
        edge::usage_error("lab needs a command: up, down, status or demo");
    });
    lab->require_subcommand(1);
    stack_arg(lab->add_subcommand("up", "Build the lab from the stack and start every daemon; returns when traffic flows"));
    lab->add_subcommand("down", "Stop every lab process (recorded PIDs) and delete every el-* namespace");
    lab->add_subcommand("status", "Namespaces, processes, BGP sessions, ISP routes and XDP programs of the running lab (exit 1 when not up)");
    stack_arg(lab->add_subcommand("demo", "Up, then show and assert each layer: routes, miss/hit, failover, drain, SYN flood, stats; then down"));

    return tool.run(argc, argv);
}
