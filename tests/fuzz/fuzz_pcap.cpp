// Capture files: the whole input is a file, read by the mapped path (classic pcap)
// or libpcap (pcapng), then every frame through the parser; and the same file read by
// FileReader (no libpcap: bgp-announce's reader), every frame's bytes touched.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "cli/error.hpp"
#include "pcap/file_reader.hpp"
#include "pcap/reader.hpp"
#include "pcap/scan.hpp"

static volatile uint64_t sink;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static std::string path = "/tmp/edge-fuzz-pcap-" + std::to_string(getpid());
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return 0;
    std::fwrite(data, 1, size, f);
    std::fclose(f);
    try {
        edge::pcap::Reader r(path);
        uint64_t n = 0;
        if (r.link())
            edge::pcap::scan(r, [&](const edge::net::Packet& p, const edge::pcap::Frame& fr) {
                n += p.payload_len + fr.data.size();
            });
    } catch (const edge::Error&) {
        // Open errors are the expected answer to most inputs.
    }
    try {
        edge::pcap::FileReader r(path);
        edge::pcap::Frame fr;
        uint64_t sum = 0;
        while (r.next(fr))
            for (uint8_t b : fr.data) sum += b;  // ASan checks each frame lies inside the input
        sink = sum + r.frames();  // keeps the reads
    } catch (const edge::Error&) {
    }
    return 0;
}
