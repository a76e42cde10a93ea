// quic-probe: QUIC diagnostics. `probe` (the default: `quic-probe HOST[:PORT]`) connects
// to a server and reports how it behaves; `decode` reads QUIC out of packet captures
// (Initial decryption: SNI, ALPN, connection IDs, versions, Retry, timing).
#include <cstring>
#include <string>
#include <vector>

#include <gnutls/gnutls.h>
#include <nghttp3/version.h>
#include <ngtcp2/version.h>

#include "cli/tool.hpp"
#include "options.hpp"
#include "probe_util.hpp"

using namespace quic_probe;

namespace {

// `quic-probe [global options] HOST ...` means `quic-probe probe HOST ...`: insert the
// subcommand before the first argument that is neither a global option nor a command.
std::vector<std::string> with_default_command(int argc, char** argv) {
    std::vector<std::string> args(argv, argv + argc);
    static const char* takes_value[] = {"--color", "-c", "--config", "--completion"};
    static const char* flags[] = {"-h", "--help", "-V", "--version", "-j", "--json", "-v", "--verbose", "-q", "--quiet"};
    for (std::size_t i = 1; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "probe" || a == "decode" || a == "help") return args;
        bool is_value_opt = false, is_flag = false;
        for (auto* o : takes_value) is_value_opt |= a == o;
        for (auto* f : flags) is_flag |= a == f;
        if (a.rfind("--color=", 0) == 0 || a.rfind("--config=", 0) == 0 || a.rfind("--completion=", 0) == 0) is_flag = true;
        if (a.size() > 1 && a[0] == '-' && a[1] != '-' && a.find_first_not_of("jvq", 1) == std::string::npos) is_flag = true;
        if (is_value_opt) {
            ++i;
            continue;
        }
        if (is_flag) continue;
        args.insert(args.begin() + static_cast<long>(i), "probe");
        return args;
    }
    return args;
}

}  // namespace

int main(int argc, char** argv) {
    edge::cli::Tool tool("quic-probe",
                         "quic-probe: QUIC diagnostics: probe a server's handshake, versions, Retry, 0-RTT, migration, "
                         "amplification and HTTP/3 (quic-probe HOST[:PORT] is quic-probe probe HOST[:PORT]); decode "
                         "QUIC connections in packet captures");
    tool.add_library("BoringSSL (QUIC packet protection)");
    tool.add_library(std::string("ngtcp2 ") + NGTCP2_VERSION);
    tool.add_library(std::string("GnuTLS ") + gnutls_check_version(nullptr));
    tool.add_library(std::string("nghttp3 ") + NGHTTP3_VERSION);

    ProbeOptions p;
    std::string tests_csv;
    auto* pr = tool.command(
        "probe", "Connect to HOST[:PORT] (default port 443) over QUIC and report version, ALPN, TLS, certificate, "
                 "timings, RTT, Retry, version negotiation, transport parameters; --test runs checks",
        [&] {
            edge::out::Output output(tool.globals().json);
            return run_probe(p, output, tool.globals().verbose);
        });
    pr->add_option("target", p.targets, "HOST[:PORT], [IPV6]:PORT; several targets are probed in turn (see -P)");
    tool.file(pr->add_option("--targets", p.targets_file, "Read targets from FILE, one per line ('-' for stdin, # comments)"));
    pr->add_option("--alpn", p.alpn, "ALPN protocols to offer, most preferred first (comma-separated)")->delimiter(',');
    pr->add_option("--sni", p.sni, "TLS server name (default: the host, none for an IP address); also the name checked in the certificate");
    tool.file(pr->add_option("--ca", p.ca, "Trust only the CA certificates in FILE (PEM) instead of the system store"));
    pr->add_flag("-k,--insecure", p.insecure, "Report but do not fail on certificate verification errors");
    pr->add_option("-t,--timeout", p.timeout, "Seconds to wait for each connection step (handshake, response, check)");
    tool.file(pr->add_option("--session", p.session,
                             "Session file: resume (and send 0-RTT) from the ticket in FILE if it is for this target; "
                             "store the newest ticket there"));
    auto* topt = pr->add_option("--test", p.tests,
                                "Checks to run (comma-separated, or all): handshake, versionnegotiation, retry, "
                                "resumption, zerortt, keyupdate, chacha20, rebind, migration, amplification, http3")
                     ->delimiter(',');
    std::vector<std::string> choices = test_names();
    choices.insert(choices.begin(), "all");
    tool.choices(topt, choices);
    pr->add_option("--path", p.path, "Path for HTTP/3 GETs (http3, 0-RTT, keyupdate, rebind, migration)");
    pr->add_option("--versions", p.versions,
                   "QUIC versions we speak, preferred first; the first Initial uses the first (v1, v2draft, 0xHEX)")
        ->delimiter(',');
    pr->add_option("-P,--concurrency", p.concurrency, "Probe this many targets at once");
    pr->add_option("--rate", p.rate, "Start at most this many targets per second (0: no limit)");
    pr->add_flag("-4", p.ipv4, "Use IPv4 addresses only");
    pr->add_flag("-6", p.ipv6, "Use IPv6 addresses only");

    DecodeOptions d;
    CLI::Option* fopt = nullptr;
    auto* dec = tool.command(
        "decode", "QUIC connections in a capture: addresses, versions, connection IDs, SNI, ALPN, Retry, timing",
        [&] {
            edge::out::Output output(tool.globals().json);
            d.fields_given = fopt->count() > 0;
            return run_decode(d, output);
        });
    tool.file(dec->add_option("--pcap", d.pcap, "Capture to read (pcap or pcapng; '-' for stdin)"))->required();
    dec->add_option("-f,--filter", d.filter, "libpcap filter applied to the capture, e.g. 'udp port 443'");
    dec->add_option("--port", d.ports, "More UDP ports to take as QUIC besides 443 and 4433 (repeat or comma-separate)")
        ->delimiter(',');
    dec->add_flag("--packets", d.packets, "Also print one record per QUIC packet (type quic_packet)");
    dec->add_flag("--no-heuristics", d.no_heuristics,
                  "Only the QUIC ports: do not take other UDP starting with a known QUIC long header");
    tool.file(dec->add_option("--keylog", d.keylog,
                              "TLS key log (SSLKEYLOGFILE format) to decrypt Handshake and 1-RTT packets too"));
    fopt = dec->add_option("--fields", d.fields,
                                 "Print only these fields of each connection (comma-separated, e.g. original_dcid,sni): "
                                 "tab-separated, or -j objects of type quic_connection; decrypts only what they need")
                     ->delimiter(',');

    auto args = with_default_command(argc, argv);
    std::vector<char*> av;
    for (auto& a : args) av.push_back(a.data());
    return tool.run(static_cast<int>(av.size()), av.data());
}
