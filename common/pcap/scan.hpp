// Walk every packet of a capture through the parser, counting what could not be used,
// with progress on stderr. Shared by every tool that reads captures.
#pragma once
#include <cstdint>
#include <string>

#include "net/packet.hpp"
#include "out/progress.hpp"
#include "pcap/reader.hpp"

namespace edge::pcap {

struct ScanStats {
    uint64_t frames = 0;
    uint64_t bytes = 0;      // wire bytes of all frames
    uint64_t ip = 0;         // frames with an IP header parsed
    uint64_t non_ip = 0;     // ARP, LLDP, ...: skipped
    uint64_t truncated = 0;  // cut inside a header (snaplen): skipped
    uint64_t malformed = 0;  // headers that contradict themselves: skipped
    bool file_truncated = false;  // the file itself ends mid-record
    std::string file_error;

    // One line for stderr ("skipped 3 non-IP, 1 malformed of 1000 frames"), empty when nothing was skipped.
    std::string skipped_summary() const;
};

// Throws edge::UsageError for a link type the parser does not handle.
void require_link(const Reader& r);

// Calls f(packet, frame) for every frame whose IP header parsed (status ok). L4
// checksums are not verified unless opts ask for it.
template <typename F>
ScanStats scan(Reader& r, F&& f, const net::ParseOptions& opts = {false}) {
    require_link(r);
    ScanStats st;
    out::Progress progress("reading " + r.path(), r.size());
    Frame fr;
    const net::LinkType link = *r.link();
    while (r.next(fr)) {
        st.frames++;
        st.bytes += fr.wire_len;
        net::Packet p = net::parse_packet(fr.data, link, opts);
        switch (p.status) {
        case net::ParseStatus::ok:
            st.ip++;
            f(p, fr);
            break;
        case net::ParseStatus::not_ip: st.non_ip++; break;
        case net::ParseStatus::truncated: st.truncated++; break;
        default: st.malformed++; break;
        }
        progress.tick([&] { return r.position(); });
    }
    progress.finish();
    st.file_truncated = r.truncated();
    st.file_error = r.error();
    return st;
}

// Prints the skip summary and the truncation error (if any) on stderr. Returns the exit
// code a tool should use: 2 when the file was cut short (bad input), 0 otherwise.
int report(const Reader& r, const ScanStats& st);

}  // namespace edge::pcap
