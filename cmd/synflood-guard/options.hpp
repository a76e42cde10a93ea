// synflood-guard's options and commands.
#pragma once
#include <string>
#include <vector>

#include "cli/tool.hpp"
#include "out/output.hpp"

namespace sfg {

struct Options {
    // detect
    std::string pcap;
    std::string filter;
    double floor_pps = 1000;
    double factor = 8;
    double baseline_pps = -1;
    double src_floor_pps = 1000;
    double max_completion = 0.5;
    std::string action = "auto";
    double rtbh_bps = 1e9;
    int top = 5;
    bool series = false;
    int64_t mitigation_duration = 0;
    // live
    std::string interface;
    std::string mode = "auto";  // auto | native | generic
    double watch = 0;           // stats -w SECONDS
    double interval = 1;        // run: seconds between counter reads
    std::string prefix;         // block / unblock
    std::string control_socket; // run: unix socket for ctl
    std::string metrics;        // run: ADDR:PORT for Prometheus metrics
    std::string socket;         // ctl -s
    std::vector<std::string> words;  // ctl COMMAND...
    // bench
    int repeat = 1000000;       // hot runs per measurement
    int rounds = 9;             // alternating rounds
    int singles = 2000;         // single runs per round (cookie path)
};

int run_detect(const Options& o, const edge::cli::Globals& g, edge::out::Output& out);
int run_run(const Options& o, const edge::cli::Globals& g, edge::out::Output& out);
int run_status(const Options& o, const edge::cli::Globals& g, edge::out::Output& out);
int run_stats(const Options& o, const edge::cli::Globals& g, edge::out::Output& out);
int run_block(const Options& o, const edge::cli::Globals& g, edge::out::Output& out);
int run_unblock(const Options& o, const edge::cli::Globals& g, edge::out::Output& out);
int run_ctl(const Options& o, const edge::cli::Globals& g, edge::out::Output& out);
int run_bench(const Options& o, const edge::cli::Globals& g, edge::out::Output& out);

}  // namespace sfg
