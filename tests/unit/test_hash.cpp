#include <doctest/doctest.h>

#include <openssl/siphash.h>

#include <cstring>
#include <random>

#include "hash/flow_hash.hpp"

using namespace edge::hash;

TEST_CASE("the shared C flow hash is SipHash-2-4 (checked against BoringSSL)") {
    std::mt19937_64 rng(42);
    for (int i = 0; i < 10000; i++) {
        edge_flow_key k;
        std::memset(&k, 0, sizeof k);
        auto* b = reinterpret_cast<uint8_t*>(&k);
        for (size_t j = 0; j < sizeof k; j++) b[j] = static_cast<uint8_t>(rng());
        Key key{rng(), rng()};
        const uint64_t kk[2] = {key.k0, key.k1};
        if (i % 2 == 0) {
            // IPv6: all 40 bytes of the key.
            k.family = EDGE_FAMILY_V6;
            CHECK(flow_hash(k, key) == SIPHASH_24(kk, b, sizeof k));
        } else {
            // IPv4: addresses' first 4 bytes, then ports, proto, family, pad.
            k.family = EDGE_FAMILY_V4;
            uint8_t packed[16];
            std::memcpy(packed, k.src, 4);
            std::memcpy(packed + 4, k.dst, 4);
            std::memcpy(packed + 8, &k.sport, 8);
            CHECK(flow_hash(k, key) == SIPHASH_24(kk, packed, sizeof packed));
        }
    }
}

TEST_CASE("SipHash-2-4 reference vector (Aumasson & Bernstein, 8-byte message)") {
    // Key 00..0f, message 00..07: the paper's test vector list, entry 8.
    Key key;  // the default key is 00..0f
    uint64_t w = 0x0706050403020100ULL;
    CHECK(edge_siphash_words(key.k0, key.k1, &w, 1) == 0x93f5f5799a932462ULL);
    CHECK(siphash(std::string_view("\x00\x01\x02\x03\x04\x05\x06\x07", 8), key) == 0x93f5f5799a932462ULL);
}

TEST_CASE("hash keys parse from and format to 32 hex digits") {
    auto k = parse_key("000102030405060708090a0b0c0d0e0f");
    REQUIRE(k);
    CHECK(*k == Key{});
    CHECK(format_key(*k) == "000102030405060708090a0b0c0d0e0f");
    CHECK_FALSE(parse_key("00"));
    CHECK_FALSE(parse_key("zz0102030405060708090a0b0c0d0e0f"));
    CHECK_FALSE(parse_key("000102030405060708090a0b0c0d0e0f00"));
}

TEST_CASE("flow slot is the hash modulo the table size") {
    CHECK(edge_flow_slot(65537 * 3 + 5, 65537) == 5);
}
