// The flow hash shared with BPF (bpf/include/edge/flow.h), plus keyed hashing of names.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "edge/flow.h"

static_assert(sizeof(edge_flow_key) == 40, "edge_flow_key is hashed as five 64-bit words");

namespace edge::hash {

// A 128-bit SipHash key. The default is the constant in flow.h; deployments choose
// their own with --hash-key (32 hex digits), and must give the same key to every tool.
struct Key {
    uint64_t k0 = EDGE_HASH_KEY0;
    uint64_t k1 = EDGE_HASH_KEY1;
    bool operator==(const Key&) const = default;
};

// Parses 32 hex digits (the 16 key bytes in order, as SipHash reads them).
std::optional<Key> parse_key(std::string_view hex);
std::string format_key(const Key& k);

inline uint64_t flow_hash(const edge_flow_key& k, const Key& key = {}) {
    return edge_flow_hash(&k, key.k0, key.k1);
}

// SipHash-2-4 of arbitrary bytes (BoringSSL), for names and anything not shared with BPF.
uint64_t siphash(std::string_view data, const Key& key);

}  // namespace edge::hash
