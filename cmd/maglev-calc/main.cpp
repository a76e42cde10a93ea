// maglev-calc: Maglev consistent-hashing tables — build, look up flows, measure
// disruption when backends change, map every flow of a capture to a backend.
#include "cli/tool.hpp"
#include "options.hpp"

using namespace maglev_calc;

namespace {
void backend_options(edge::cli::Tool& tool, CLI::App* cmd, BackendSet& set) {
    cmd->add_option("-b,--backend-list", set.list, "Backends: NAME[=WEIGHT],... (weights 1..1000000)");
    tool.file(cmd->add_option("--backends", set.file, "Backends file: one 'NAME [WEIGHT]' a line, '-' for stdin"));
}
void table_options(edge::cli::Tool& tool, CLI::App* cmd, Options& o) {
    backend_options(tool, cmd, o.backends);
    cmd->add_option("-m,--size", o.size, "Table size M, a prime (65537, 655373, ...)");
    cmd->add_option("--hash-key", o.hash_key, "SipHash key for the flow hash: 32 hex digits (must match xdp-lb)");
}
void pcap_options(edge::cli::Tool& tool, CLI::App* cmd, Options& o, bool required) {
    auto* p = tool.file(cmd->add_option("--pcap", o.pcap, "Capture to read (pcap or pcapng; '-' for stdin)"));
    if (required) p->required();
    cmd->add_option("-f,--filter", o.filter, "libpcap filter applied to the capture, e.g. 'dst port 443'");
}
}  // namespace

int main(int argc, char** argv) {
    edge::cli::Tool tool("maglev-calc", "maglev-calc: Maglev consistent-hashing tables for L4 load balancing");
    tool.add_library("BoringSSL (SipHash)");
    Options o;
    auto with_out = [&](int (*f)(const Options&, edge::out::Output&)) {
        return [&, f] {
            edge::out::Output output(tool.globals().json);
            return f(o, output);
        };
    };

    auto* table = tool.command("table", "Build a table: entries per backend, imbalance, --dump the table", with_out(run_table));
    table_options(tool, table, o);
    table->add_flag("--dump", o.dump, "Print every table entry (index and backend)");

    auto* lookup = tool.command("lookup", "Backend for each flow: arguments, JSON Lines on stdin ('-'), or --pcap",
                                with_out(run_lookup));
    table_options(tool, lookup, o);
    lookup->add_option("flows", o.flows, "SRC:PORT-DST:PORT/PROTO ([v6]:port), or '-' for {\"type\":\"flow\"} lines on stdin");
    pcap_options(tool, lookup, o, false);

    auto* diff = tool.command("diff", "Entries and flows that move when the backend set changes", with_out(run_diff));
    table_options(tool, diff, o);
    diff->add_option("--to", o.to.list, "The new backends: NAME[=WEIGHT],...");
    tool.file(diff->add_option("--to-file", o.to.file, "The new backends from a file"));
    pcap_options(tool, diff, o, false);

    auto* pcap = tool.command("pcap", "Packets, bytes and flows per backend for a capture", with_out(run_pcap));
    table_options(tool, pcap, o);
    pcap_options(tool, pcap, o, true);
    pcap->add_option("-t,--threads", o.threads, "Worker threads for a mapped pcap file (0 = one per core, up to 4)")
        ->check(CLI::Range(0u, 64u));

    return tool.run(argc, argv);
}
