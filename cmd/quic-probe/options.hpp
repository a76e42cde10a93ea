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
    std::vector<std::string> fields;  // --fields: only these fields of each connection
    bool fields_given = false;
};

int run_decode(const DecodeOptions& o, edge::out::Output& out);

struct ProbeOptions {
    std::vector<std::string> targets;  // HOST[:PORT]
    std::string targets_file;          // one target per line, '-' for stdin
    std::vector<std::string> alpn{"h3"};
    std::string sni;
    std::string ca;
    bool insecure = false;
    double timeout = 5.0;  // seconds, per connection step
    std::string session;
    std::vector<std::string> tests;
    std::string path = "/";
    std::vector<std::string> versions{"v1", "v2draft"};
    int concurrency = 1;
    double rate = 0;  // new targets per second, 0 = unlimited
    bool ipv4 = false, ipv6 = false;
};

int run_probe(const ProbeOptions& o, edge::out::Output& out, int verbose);

}  // namespace quic_probe
