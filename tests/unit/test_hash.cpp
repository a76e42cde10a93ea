#include <doctest/doctest.h>

#include <openssl/siphash.h>

#include <cstring>
#include <random>
#include <vector>

#include "hash/flow_hash.hpp"

using namespace edge::hash;

namespace {
// SipHash-c-d of arbitrary bytes, written from the paper (Aumasson & Bernstein, 2012)
// byte by byte and independently of edge/flow.h: c compression rounds per 8-byte
// word, the last word holding the length in its top byte, d finalization rounds.
uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }
uint64_t ref_siphash(int c, int d, uint64_t k0, uint64_t k1, const uint8_t* in, size_t len) {
    uint64_t v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
    auto round = [&] {
        v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);
        v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;
        v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;
        v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);
    };
    auto word = [&](uint64_t m) {
        v3 ^= m;
        for (int i = 0; i < c; i++) round();
        v0 ^= m;
    };
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t m = 0;
        for (int j = 7; j >= 0; j--) m = (m << 8) | in[i + j];
        word(m);
    }
    uint64_t last = static_cast<uint64_t>(len & 0xff) << 56;
    for (size_t j = 0; i + j < len; j++) last |= static_cast<uint64_t>(in[i + j]) << (8 * j);
    word(last);
    v2 ^= 0xff;
    for (int r = 0; r < d; r++) round();
    return v0 ^ v1 ^ v2 ^ v3;
}
}  // namespace

TEST_CASE("the byte-wise SipHash-c-d reference is SipHash-2-4 for c=2, d=4 (checked against BoringSSL)") {
    std::mt19937_64 rng(7);
    for (int i = 0; i < 2000; i++) {
        uint8_t buf[64];
        size_t len = rng() % sizeof buf;
        for (auto& b : buf) b = static_cast<uint8_t>(rng());
        const uint64_t kk[2] = {rng(), rng()};
        CHECK(ref_siphash(2, 4, kk[0], kk[1], buf, len) == SIPHASH_24(kk, buf, len));
    }
    // And 1-3 is another function (the reference takes its rounds from c and d).
    const uint8_t m[16] = {};
    CHECK(ref_siphash(1, 3, 1, 2, m, 16) != ref_siphash(2, 4, 1, 2, m, 16));
}

TEST_CASE("the shared C flow hash is SipHash-1-3 (checked against the reference)") {
    std::mt19937_64 rng(42);
    for (int i = 0; i < 10000; i++) {
        edge_flow_key k;
        std::memset(&k, 0, sizeof k);
        auto* b = reinterpret_cast<uint8_t*>(&k);
        for (size_t j = 0; j < sizeof k; j++) b[j] = static_cast<uint8_t>(rng());
        Key key{rng(), rng()};
        if (i % 2 == 0) {
            // IPv6: all 40 bytes of the key.
            k.family = EDGE_FAMILY_V6;
            CHECK(flow_hash(k, key) == ref_siphash(1, 3, key.k0, key.k1, b, sizeof k));
        } else {
            // IPv4: addresses' first 4 bytes, then ports, proto, family, pad.
            k.family = EDGE_FAMILY_V4;
            uint8_t packed[16];
            std::memcpy(packed, k.src, 4);
            std::memcpy(packed + 4, k.dst, 4);
            std::memcpy(packed + 8, &k.sport, 8);
            CHECK(flow_hash(k, key) == ref_siphash(1, 3, key.k0, key.k1, packed, sizeof packed));
        }
    }
}

TEST_CASE("SipHash-1-3 words: the reference on whole words, and not SipHash-2-4") {
    std::mt19937_64 rng(3);
    for (int n = 1; n <= EDGE_FLOW_KEY_WORDS; n++) {
        uint64_t w[EDGE_FLOW_KEY_WORDS];
        for (auto& x : w) x = rng();
        uint64_t k0 = rng(), k1 = rng();
        CHECK(edge_siphash13_words(k0, k1, w, n) == ref_siphash(1, 3, k0, k1, reinterpret_cast<const uint8_t*>(w), 8 * n));
        CHECK(edge_siphash13_words(k0, k1, w, n) != ref_siphash(2, 4, k0, k1, reinterpret_cast<const uint8_t*>(w), 8 * n));
    }
}

TEST_CASE("SipHash-2-4 reference vector (Aumasson & Bernstein, 8-byte message)") {
    // Key 00..0f, message 00..07: the paper's test vector list, entry 8.
    Key key;  // the default key is 00..0f
    uint64_t w = 0x0706050403020100ULL;
    CHECK(ref_siphash(2, 4, key.k0, key.k1, reinterpret_cast<const uint8_t*>(&w), 8) == 0x93f5f5799a932462ULL);
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

TEST_CASE("flow slot is floor(hash * M / 2^64), computed without 128-bit arithmetic") {
    std::mt19937_64 rng(11);
    const uint32_t sizes[] = {7, 251, 65537, 1000003, 16777213, 0xffffffffu};
    for (uint32_t m : sizes) {
        const uint64_t edges[] = {0, 1, 0xffffffffULL, 0x100000000ULL, ~0ULL, ~0ULL - 1, 0x8000000000000000ULL};
        for (uint64_t h : edges)
            CHECK(edge_flow_slot(h, m) == static_cast<uint32_t>((static_cast<unsigned __int128>(h) * m) >> 64));
        for (int i = 0; i < 20000; i++) {
            uint64_t h = rng();
            uint32_t s = edge_flow_slot(h, m);
            CHECK(s < m);
            CHECK(s == static_cast<uint32_t>((static_cast<unsigned __int128>(h) * m) >> 64));
        }
    }
    CHECK(edge_flow_slot(0, 65537) == 0);
    CHECK(edge_flow_slot(~0ULL, 65537) == 65536);
    CHECK(edge_flow_slot(0x8000000000000000ULL, 65537) == 32768);  // the middle of the hash range
}

TEST_CASE("flow slots of random flows spread evenly over a table") {
    // Hashes of distinct flows, scaled: every slot of a small table within a few
    // standard deviations of the mean (an all-in-one-slot bug fails at once).
    const uint32_t m = 251;
    std::vector<uint32_t> n(m);
    edge_flow_key k;
    std::memset(&k, 0, sizeof k);
    k.family = EDGE_FAMILY_V4;
    k.proto = 6;
    for (uint32_t i = 0; i < 251 * 400; i++) {
        std::memcpy(k.src, &i, 4);
        n[edge_flow_slot(flow_hash(k), m)]++;
    }
    for (uint32_t c : n) {
        CHECK(c > 400 - 5 * 20);
        CHECK(c < 400 + 5 * 20);
    }
}
