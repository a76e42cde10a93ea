// xdp-lb's options and commands.
#pragma once
#include <string>
#include <vector>

#include "cli/tool.hpp"
#include "out/output.hpp"

namespace xlb {

struct Options {
    std::string interface;
    std::string mode = "auto";  // auto | native | generic
    std::string pcap;
    std::string out;
    bool per_packet = false;
    double watch = 0;  // stats -w SECONDS
    std::vector<std::string> addresses;  // decap --address
    bool any = false;                    // decap --any
    uint32_t repeat = 1000000;           // bench
    int rounds = 5;                      // bench
    int cold_flows = 100000;             // bench
    std::vector<std::string> cases;      // bench --case (empty: all)
    // service / backend
    std::string vip;
    uint16_t port = 0;
    std::string proto = "tcp";
    bool quic = false;
    bool daisy_chain = false;  // service add --daisy-chain
    std::vector<std::string> backends;  // service add --backend ADDR[=WEIGHT]
    std::string backend;                // backend --address
    int64_t weight = -1;                // backend add/set --weight (-1: not given)
    std::string mac;                    // backend add/set --mac
};

std::string pin_dir(const std::string& ifname);
int ifindex_of(const std::string& ifname);

int run_run(const Options& o, const edge::cli::Globals& g, edge::out::Output& out);
int run_replay(const Options& o, const edge::cli::Globals& g, edge::out::Output& out);
int run_status(const Options& o, const edge::cli::Globals& g, edge::out::Output& out);
int run_stats(const Options& o, const edge::cli::Globals& g, edge::out::Output& out);
int run_decap(const Options& o, const edge::cli::Globals& g, edge::out::Output& out);
int run_bench(const Options& o, const edge::cli::Globals& g, edge::out::Output& out);
int run_load(const Options& o, const edge::cli::Globals& g, edge::out::Output& out);
int run_unload(const Options& o, const edge::cli::Globals& g, edge::out::Output& out);
int run_service(const std::string& verb, const Options& o, const edge::cli::Globals& g, edge::out::Output& out);
int run_backend(const std::string& verb, const Options& o, const edge::cli::Globals& g, edge::out::Output& out);

}  // namespace xlb
