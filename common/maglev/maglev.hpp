// Maglev consistent hashing (Eisenbud et al., NSDI 2016): each backend walks its own
// permutation of the table (offset, skip) and backends take turns claiming the next free
// slot. Weighted: a backend claims slots in proportion to its weight.
//
// One implementation for maglev-calc and xdp-lb: the BPF map is filled from Table::entries().
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "hash/flow_hash.hpp"

namespace edge::maglev {

inline constexpr uint32_t default_size = 65537;
inline constexpr uint32_t min_size = 7;
inline constexpr uint32_t max_size = 16777213;  // largest prime below 2^24: 64 MiB of entries

struct Backend {
    std::string name;
    uint32_t weight = 1;
};

struct Permutation {
    uint32_t offset;
    uint32_t skip;  // 1..M-1
};

bool is_prime(uint64_t n);
// The primes just below and just above n (below is 0 when there is none).
std::pair<uint64_t, uint64_t> nearest_primes(uint64_t n);

// Throws edge::UsageError: M not prime or out of range, no backends, duplicate names,
// weight 0, more backends than slots.
void validate(std::span<const Backend> backends, uint64_t size);

// The keys that derive offset and skip from a backend's name (two independent SipHash keys).
struct NameKeys {
    hash::Key offset{0x6d61676c65762d6fULL, 0x66667365742d6b31ULL};
    hash::Key skip{0x6d61676c65762d73ULL, 0x6b69702d6b65792dULL};
};
Permutation permutation(std::string_view name, uint32_t size, const NameKeys& keys = {});

// The population step. Given (offset, skip) per backend and weights, fills a table of
// `size` entries with backend indexes. Exposed so tests can feed the paper's example.
std::vector<uint32_t> populate(std::span<const Permutation> perms, std::span<const uint32_t> weights, uint32_t size);

class Table {
public:
    Table(std::vector<Backend> backends, uint32_t size, const NameKeys& keys = {});

    uint32_t size() const { return size_; }
    const std::vector<Backend>& backends() const { return backends_; }
    const std::vector<uint32_t>& entries() const { return entries_; }
    // The slot of a flow hash: floor(hash * M / 2^64) (edge_flow_slot in edge/flow.h,
    // the same in BPF).
    uint32_t slot(uint64_t flow_hash) const { return edge_flow_slot(flow_hash, size_); }
    // The backend index for a flow hash.
    uint32_t lookup(uint64_t flow_hash) const { return entries_[slot(flow_hash)]; }
    // Entries owned by each backend.
    std::vector<uint64_t> counts() const;

private:
    std::vector<Backend> backends_;
    uint32_t size_;
    std::vector<uint32_t> entries_;
};

}  // namespace edge::maglev
