// Capture files: the whole input is a file, read by the mapped path (classic pcap)
// or libpcap (pcapng), then every frame through the parser.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "cli/error.hpp"
#include "pcap/reader.hpp"
#include "pcap/scan.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static std::string path = "/tmp/edge-fuzz-pcap-" + std::to_string(getpid());
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return 0;
    std::fwrite(data, 1, size, f);
    std::fclose(f);
    try {
        edge::pcap::Reader r(path);
        if (!r.link()) return 0;
        uint64_t n = 0;
        edge::pcap::scan(r, [&](const edge::net::Packet& p, const edge::pcap::Frame& fr) {
            n += p.payload_len + fr.data.size();
        });
    } catch (const edge::Error&) {
        // Open errors are the expected answer to most inputs.
    }
    return 0;
}
