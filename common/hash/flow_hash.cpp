#include "hash/flow_hash.hpp"

#include <openssl/siphash.h>

#include <fmt/format.h>

namespace edge::hash {

std::optional<Key> parse_key(std::string_view hex) {
    if (hex.size() != 32) return std::nullopt;
    uint8_t b[16];
    for (size_t i = 0; i < 16; i++) {
        auto nib = [](char c) -> int {
            if (c >= '0' && c <= '9') return c - '0';
            if (c >= 'a' && c <= 'f') return c - 'a' + 10;
            if (c >= 'A' && c <= 'F') return c - 'A' + 10;
            return -1;
        };
        int hi = nib(hex[2 * i]), lo = nib(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        b[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    Key k;
    k.k0 = k.k1 = 0;
    for (int i = 7; i >= 0; i--) k.k0 = k.k0 << 8 | b[i];
    for (int i = 15; i >= 8; i--) k.k1 = k.k1 << 8 | b[i];
    return k;
}

std::string format_key(const Key& k) {
    std::string s;
    for (int i = 0; i < 8; i++) fmt::format_to(std::back_inserter(s), "{:02x}", (k.k0 >> (8 * i)) & 0xff);
    for (int i = 0; i < 8; i++) fmt::format_to(std::back_inserter(s), "{:02x}", (k.k1 >> (8 * i)) & 0xff);
    return s;
}

uint64_t siphash(std::string_view data, const Key& key) {
    const uint64_t k[2] = {key.k0, key.k1};
    return SIPHASH_24(k, reinterpret_cast<const uint8_t*>(data.data()), data.size());
}

}  // namespace edge::hash
