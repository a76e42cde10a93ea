// xdp-lb: an XDP layer-4 load balancer (Maglev, connection table, IP-in-IP
// encapsulation, QUIC connection-id routing), its backend decap program, and an
// offline replay of captures through the real BPF program.
#include "lb.hpp"
#include "options.hpp"

using namespace xlb;

int main(int argc, char** argv) {
    edge::cli::Tool tool("xdp-lb", "xdp-lb: XDP layer-4 load balancer with Maglev, connection tracking and QUIC CID routing");
    tool.add_library(fmt::format("libbpf {}.{}", libbpf_major_version(), libbpf_minor_version()));
    Options o;
    auto with = [&](int (*f)(const Options&, const edge::cli::Globals&, edge::out::Output&)) {
        return [&, f] {
            edge::out::Output output(tool.globals().json);
            edge::cli::Globals g = tool.globals();
            if (auto* c = tool.app().get_config_ptr(); c && c->count() > 0) g.config = c->as<std::string>();
            return f(o, g, output);
        };
    };
    auto iface = [&](CLI::App* cmd, const char* what) { cmd->add_option("-i,--interface", o.interface, what)->required(); };
    auto mode = [&](CLI::App* cmd) {
        tool.choices(cmd->add_option("--mode", o.mode, "XDP mode: auto (native, else generic with a warning), native or generic"),
                     {"auto", "native", "generic"});
    };

    auto* run = tool.command("run", "Attach the balancer to an interface and serve the -c config until SIGTERM (SIGHUP reloads)",
                             with(run_run));
    iface(run, "Interface to attach to");
    mode(run);

    auto* replay = tool.command("replay", "Run every packet of a capture through the real BPF program (BPF_PROG_TEST_RUN)",
                                with(run_replay));
    tool.file(replay->add_option("--pcap", o.pcap, "Capture to replay (Ethernet or raw IP; '-' for stdin)"))->required();
    tool.file(replay->add_option("--out", o.out, "Write the packets the program sends (XDP_TX) or passes to this pcap"));
    replay->add_flag("--per-packet", o.per_packet, "One record per packet instead of one per flow");

    auto* status = tool.command("status", "Services, backends and table shares of the balancer running on an interface",
                                with(run_status));
    iface(status, "Interface the balancer runs on");

    auto* stats = tool.command("stats", "Counters per service, per backend and per reason (rates with -w)", with(run_stats));
    iface(stats, "Interface the balancer runs on");
    stats->add_option("-w,--watch", o.watch, "Measure rates over this many seconds (pps, bps)")->check(CLI::Range(0.1, 3600.0));

    auto* decap = tool.command("decap", "Attach the backend decapsulation program to an interface until SIGTERM",
                               with(run_decap));
    iface(decap, "Interface that receives encapsulated packets");
    mode(decap);
    decap->add_option("--address", o.addresses, "Outer destination to decapsulate (repeatable; default: the interface's addresses)");
    decap->add_flag("--any", o.any, "Decapsulate whatever the outer destination");

    auto* bench = tool.command("bench", "ns/packet of the data plane with BPF_PROG_TEST_RUN, beside a null XDP program",
                               with(run_bench));
    bench->add_option("--repeat", o.repeat, "Runs per measurement (hot)")->check(CLI::Range(1000u, 100000000u));
    bench->add_option("--rounds", o.rounds, "Alternating rounds; medians are reported")->check(CLI::Range(1, 101));
    bench->add_option("--cold-flows", o.cold_flows, "Distinct flows for the cold measurement (0 skips it)")->check(CLI::Range(0, 10000000));
    bench->add_option("--case", o.cases, "Measure only these cases (repeatable; the null program always runs)")
        ->check(CLI::IsMember({"vip_miss", "new_flow", "conntrack_hit", "quic_short", "daisy_hit"}));

    auto* load = tool.command("load", "Attach the balancer with the -c config and pin its maps, without a foreground process",
                              with(run_load));
    iface(load, "Interface to attach to");
    mode(load);
    auto* unload = tool.command("unload", "Detach a balancer started by load and remove its pins", with(run_unload));
    iface(unload, "Interface the balancer runs on");

    auto svc_opts = [&](CLI::App* cmd, bool required) {
        auto* v = cmd->add_option("--vip", o.vip, "The service's VIP address");
        auto* p = cmd->add_option("--port", o.port, "The service's port")->check(CLI::Range(1, 65535));
        tool.choices(cmd->add_option("--proto", o.proto, "The service's protocol (default tcp)"), {"tcp", "udp"});
        if (required) {
            v->required();
            p->required();
        }
    };
    // Nested commands: the action runs on the command and dispatches on the verb given.
    auto verb_of = [](CLI::App* cmd) -> std::string {
        for (auto* c : cmd->get_subcommands()) return c->get_name();
        return "";
    };
    CLI::App* service = nullptr;
    service = tool.command("service", "Add, delete or list services of a balancer started by load (edits the pinned maps)", [&] {
        edge::out::Output output(tool.globals().json);
        return run_service(verb_of(service), o, tool.globals(), output);
    });
    service->require_subcommand(1);
    auto* sadd = service->add_subcommand("add", "Add a service: --vip, --port, --proto, --quic, --backend ADDR[=WEIGHT]...");
    iface(sadd, "Interface the balancer runs on");
    svc_opts(sadd, true);
    sadd->add_flag("--quic", o.quic, "A QUIC service (UDP): short headers routed by the server id in the CID");
    sadd->add_flag("--daisy-chain", o.daisy_chain,
                   "Daisy chaining (TCP): mid-connection packets carry the slot's previous backend (GUE), whose decap takes them over");
    sadd->add_option("--backend", o.backends, "A backend ADDR or ADDR=WEIGHT (repeatable)");
    auto* sdel = service->add_subcommand("del", "Delete a service (its flows pass to the stack from then on)");
    iface(sdel, "Interface the balancer runs on");
    svc_opts(sdel, true);
    auto* slist = service->add_subcommand("list", "The services and their backends and weights");
    iface(slist, "Interface the balancer runs on");

    CLI::App* backend = nullptr;
    backend = tool.command("backend", "Add, delete, drain, reweigh or list a service's backends (Maglev table recomputed, atomic flip)", [&] {
        edge::out::Output output(tool.globals().json);
        return run_backend(verb_of(backend), o, tool.globals(), output);
    });
    backend->require_subcommand(1);
    for (auto [verb, desc] : std::vector<std::pair<const char*, const char*>>{
             {"add", "Add a backend to a service (--weight, --mac)"},
             {"del", "Remove a backend from a service; its established flows stay on it"},
             {"drain", "Set a backend's weight to 0: no new flows, established flows stay"},
             {"set", "Change a backend's --weight or --mac"},
             {"list", "The backends of one service (--vip --port) or of all"}}) {
        auto* b = backend->add_subcommand(verb, desc);
        iface(b, "Interface the balancer runs on");
        bool list = std::string(verb) == "list";
        svc_opts(b, !list);
        if (list) continue;
        b->add_option("--address", o.backend, "The backend's address")->required();
        if (std::string(verb) == "add" || std::string(verb) == "set") {
            b->add_option("--weight", o.weight, "Maglev weight, 0 drains")->check(CLI::Range(0, 1000000));
            b->add_option("--mac", o.mac, "Destination MAC for this backend");
        }
    }

    return tool.run(argc, argv);
}
