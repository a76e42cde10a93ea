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

    return tool.run(argc, argv);
}
