// synflood-guard: XDP SYN-flood defence (SYN cookies in XDP, per-source and
// per-destination token buckets, allow/deny lists, uRPF) with an adaptive control
// plane, and offline SYN-flood detection in captures that feeds bgp-announce.
#include <bpf/libbpf.h>

#include "options.hpp"

using namespace sfg;

int main(int argc, char** argv) {
    edge::cli::Tool tool("synflood-guard",
                         "synflood-guard: XDP SYN-flood defence and SYN-flood detection in captures");
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

    auto* detect = tool.command("detect",
                                "Find SYN floods in a capture; emit flood and mitigation records (exit 1 when found)",
                                with(run_detect));
    tool.file(detect->add_option("--pcap", o.pcap, "Capture to read (pcap or pcapng; '-' for stdin)"))->required();
    detect->add_option("--filter", o.filter, "libpcap filter expression applied first");
    detect->add_option("--floor-pps", o.floor_pps, "Fixed floor: SYN/s to one destination that can be a flood");
    detect->add_option("--factor", o.factor, "Threshold = max(floor, factor x baseline SYN/s)")->check(CLI::Range(1.0, 1e6));
    detect->add_option("--baseline-pps", o.baseline_pps,
                       "Baseline SYN/s per destination (default: its median per-second rate in the capture)");
    detect->add_option("--src-floor-pps", o.src_floor_pps, "SYN/s from one source that is a flood on its own");
    detect->add_option("--max-completion", o.max_completion,
                       "A flood completes fewer than this share of its handshakes (0..1)")
        ->check(CLI::Range(0.0, 1.0));
    tool.choices(detect->add_option("--action", o.action,
                                    "Mitigation: auto (FlowSpec, RTBH above --rtbh-bps), rtbh or flowspec"),
                 {"auto", "rtbh", "flowspec"});
    detect->add_option("--rtbh-bps", o.rtbh_bps, "auto: blackhole the victim when the flood reaches this many bits/s");
    detect->add_option("--top", o.top, "Top sources and source prefixes per flood")->check(CLI::Range(0, 1000));
    detect->add_flag("--series", o.series, "Also emit per-second SYN counts of every flooded destination");
    detect->add_option("--mitigation-duration", o.mitigation_duration,
                       "Seconds the routes should stay (duration_s in the mitigation records; 0: until withdrawn)")
        ->check(CLI::Range(int64_t{0}, int64_t{31536000}));

    auto* run = tool.command("run", "Attach the guard to an interface with the -c config; adapt to floods until SIGTERM",
                             with(run_run));
    iface(run, "Interface to protect");
    tool.choices(run->add_option("--mode", o.mode, "XDP mode: auto (native, else generic with a warning), native or generic"),
                 {"auto", "native", "generic"});
    run->add_option("--interval", o.interval, "Seconds between counter reads")->check(CLI::Range(0.1, 60.0));
    tool.file(run->add_option("--control-socket", o.control_socket,
                              "Unix socket for 'synflood-guard ctl' (overrides [guard] control_socket)"));
    run->add_option("--metrics", o.metrics, "Serve Prometheus metrics over HTTP on ADDR:PORT (overrides [guard] metrics)");

    auto* status = tool.command("status", "Protected destinations, their mode and thresholds on an interface",
                                with(run_status));
    iface(status, "Interface the guard runs on");

    auto* stats = tool.command("stats", "Counters by reason and per destination (rates with -w)", with(run_stats));
    iface(stats, "Interface the guard runs on");
    stats->add_option("-w,--watch", o.watch, "Measure rates over this many seconds (pps, bps)")->check(CLI::Range(0.1, 3600.0));

    auto* block = tool.command("block", "Drop everything from a source prefix (deny list) on a running guard",
                               with(run_block));
    iface(block, "Interface the guard runs on");
    block->add_option("prefix", o.prefix, "Source prefix, e.g. 198.51.100.0/24 or 2001:db8:bad::/48")->required();
    auto* unblock = tool.command("unblock", "Remove a source prefix from the deny list", with(run_unblock));
    iface(unblock, "Interface the guard runs on");
    unblock->add_option("prefix", o.prefix, "Source prefix given to block")->required();

    auto* ctl = tool.command("ctl", "Talk to a running guard: status, stats, block PREFIX, unblock PREFIX, reload, metrics",
                             with(run_ctl));
    tool.file(ctl->add_option("-s,--socket", o.socket, "The guard's control socket (run --control-socket)"))->required();
    ctl->add_option("command", o.words, "Command and its arguments")->required();

    auto* bench = tool.command("bench",
                               "ns/packet of the XDP guard with BPF_PROG_TEST_RUN beside a null XDP program (needs root)",
                               with(run_bench));
    bench->add_option("--repeat", o.repeat, "Runs per hot measurement")->check(CLI::Range(1000, 100000000));
    bench->add_option("--rounds", o.rounds, "Alternating rounds; medians are reported")->check(CLI::Range(1, 101));
    bench->add_option("--singles", o.singles, "Single runs per round for the cookie path")->check(CLI::Range(10, 1000000));

    return tool.run(argc, argv);
}
