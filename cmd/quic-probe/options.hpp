// quic-probe's options, shared by its subcommands.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "out/output.hpp"

namespace quic_probe {

struct DecodeOptions {
    std::string pcap;
    std::string filter;
    std::vector<std::uint16_t> ports;  // beyond 443 and 4433
    bool packets = false;
    bool no_heuristics = false;
    std::string keylog;
};

int run_decode(const DecodeOptions& o, edge::out::Output& out);

}  // namespace quic_probe
