// quic-probe: QUIC diagnostics. `decode` reads QUIC out of packet captures
// (Initial decryption: SNI, ALPN, connection IDs, versions, Retry, timing).
#include "cli/tool.hpp"
#include "options.hpp"

using namespace quic_probe;

int main(int argc, char** argv) {
    edge::cli::Tool tool("quic-probe", "quic-probe: QUIC diagnostics: decode QUIC connections in packet captures");
    tool.add_library("BoringSSL (QUIC packet protection)");

    DecodeOptions d;
    auto* dec = tool.command(
        "decode", "QUIC connections in a capture: addresses, versions, connection IDs, SNI, ALPN, Retry, timing",
        [&] {
            edge::out::Output output(tool.globals().json);
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

    return tool.run(argc, argv);
}
