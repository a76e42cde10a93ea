// maglev-calc's options, shared by its subcommands.
#pragma once
#include <string>
#include <vector>

#include "cli/tool.hpp"
#include "hash/flow_hash.hpp"
#include "maglev/maglev.hpp"
#include "out/output.hpp"

namespace maglev_calc {

struct BackendSet {
    std::string list;  // -b a,b=2,c
    std::string file;  // --backends FILE|-
};

struct Options {
    BackendSet backends;
    uint64_t size = edge::maglev::default_size;
    std::string hash_key;  // 32 hex digits; empty = default
    bool dump = false;
    std::vector<std::string> flows;  // lookup: flow strings, or "-" for JSON Lines on stdin
    std::string pcap;
    std::string filter;  // libpcap filter expression for --pcap
    BackendSet to;       // diff: the new set
    unsigned threads = 0;  // pcap: worker threads (0 = one per core, up to 4)
};

edge::hash::Key hash_key(const Options& o);
std::vector<edge::maglev::Backend> load_backends(const BackendSet& s, const char* what);
edge::maglev::Table build_table(const std::vector<edge::maglev::Backend>& b, uint64_t size);

int run_table(const Options& o, edge::out::Output& out);
int run_lookup(const Options& o, edge::out::Output& out);
int run_diff(const Options& o, edge::out::Output& out);
int run_pcap(const Options& o, edge::out::Output& out);

}  // namespace maglev_calc
