// The BPF side of `xdp-lb replay`, kept apart from the pcap side: libpcap's
// <pcap/bpf.h> and the kernel's <linux/bpf.h> cannot share a translation unit.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cli/tool.hpp"

namespace xlb {

class ReplayEngine {
public:
    // Loads xdp_lb and fills its maps from the -c configuration, as `run` does.
    explicit ReplayEngine(const edge::cli::Globals& g);
    ~ReplayEngine();

    struct Result {
        uint32_t verdict = 0;
        const char* verdict_name = "";
        std::vector<uint8_t> data;  // the frame after the program
        std::string reason;         // the most specific counter the packet moved
    };
    // One frame (Ethernet) through the program with BPF_PROG_TEST_RUN.
    Result run(std::span<const uint8_t> frame);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace xlb
