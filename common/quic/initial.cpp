#include "quic/initial.hpp"

#include <openssl/aead.h>
#include <openssl/aes.h>
#include <openssl/chacha.h>
#include <openssl/digest.h>
#include <openssl/hkdf.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <cstring>

#include <algorithm>
#include <string>

namespace edge::quic {

namespace {

const EVP_MD* digest_for(Cipher c) noexcept {
    return c == Cipher::aes_256_gcm ? EVP_sha384() : EVP_sha256();
}

const EVP_AEAD* aead_for(Cipher c) noexcept {
    switch (c) {
        case Cipher::aes_128_gcm: return EVP_aead_aes_128_gcm();
        case Cipher::aes_256_gcm: return EVP_aead_aes_256_gcm();
        case Cipher::chacha20_poly1305: return EVP_aead_chacha20_poly1305();
    }
    return nullptr;
}

std::size_t key_len_for(Cipher c) noexcept { return c == Cipher::aes_128_gcm ? 16 : 32; }

// Nonce = IV XOR packet number left-padded to the IV length (RFC 9001 5.3).
std::array<std::uint8_t, 12> make_nonce(const std::vector<std::uint8_t>& iv, std::uint64_t pn) {
    std::array<std::uint8_t, 12> nonce{};
    std::copy_n(iv.begin(), std::min<std::size_t>(iv.size(), nonce.size()), nonce.begin());
    for (std::size_t i = 0; i < 8; ++i) nonce[nonce.size() - 1 - i] ^= static_cast<std::uint8_t>(pn >> (8 * i));
    return nonce;
}

// HKDF-Expand-Label for outputs of at most one hash block (every QUIC key, IV, HP key
// and Initial secret), with stack buffers: T(1) = HMAC(secret, info || 0x01).
bool expand_label(Bytes secret, std::string_view label, std::uint8_t* out, std::size_t out_len, const EVP_MD* md) {
    std::uint8_t info[2 + 1 + 6 + 255 + 1 + 1];
    const std::size_t full = 6 + label.size();
    if (full > 255 || out_len > EVP_MD_size(md)) return false;
    std::size_t n = 0;
    info[n++] = static_cast<std::uint8_t>(out_len >> 8);
    info[n++] = static_cast<std::uint8_t>(out_len);
    info[n++] = static_cast<std::uint8_t>(full);
    std::memcpy(info + n, "tls13 ", 6);
    n += 6;
    std::memcpy(info + n, label.data(), label.size());
    n += label.size();
    info[n++] = 0;  // empty context
    info[n++] = 1;  // HKDF-Expand counter
    std::uint8_t t[EVP_MAX_MD_SIZE];
    unsigned t_len = 0;
    if (!HMAC(md, secret.data(), secret.size(), info, n, t, &t_len)) return false;
    std::memcpy(out, t, out_len);
    return true;
}

bool valid_keys(const PacketKeys& k) noexcept {
    const std::size_t n = key_len_for(k.cipher);
    return k.key.size() == n && k.hp.size() == n && k.iv.size() == 12;
}

}  // namespace

Result<std::vector<std::uint8_t>> hkdf_expand_label(Bytes secret, std::string_view label, Bytes context,
                                                    std::size_t out_len, Cipher suite) {
    // struct { uint16 length; opaque label<7..255> = "tls13 " + label; opaque context<0..255>; }
    const std::string full = std::string("tls13 ") + std::string(label);
    if (full.size() > 255 || context.size() > 255 || out_len > 0xffff) return Error::invalid;
    std::vector<std::uint8_t> info;
    info.push_back(static_cast<std::uint8_t>(out_len >> 8));
    info.push_back(static_cast<std::uint8_t>(out_len));
    info.push_back(static_cast<std::uint8_t>(full.size()));
    info.insert(info.end(), full.begin(), full.end());
    info.push_back(static_cast<std::uint8_t>(context.size()));
    info.insert(info.end(), context.begin(), context.end());

    std::vector<std::uint8_t> out(out_len);
    if (!HKDF_expand(out.data(), out.size(), digest_for(suite), secret.data(), secret.size(), info.data(),
                     info.size()))
        return Error::crypto;
    return out;
}

Result<PacketKeys> derive_packet_keys(std::uint32_t version, Cipher cipher, Bytes secret) {
    const auto* info = version_info(version);
    if (!info) return Error::unsupported_version;
    PacketKeys k;
    k.cipher = cipher;
    const EVP_MD* md = digest_for(cipher);
    k.key.resize(key_len_for(cipher));
    k.iv.resize(12);
    k.hp.resize(key_len_for(cipher));
    if (!expand_label(secret, info->key_label, k.key.data(), k.key.size(), md) ||
        !expand_label(secret, info->iv_label, k.iv.data(), k.iv.size(), md) ||
        !expand_label(secret, info->hp_label, k.hp.data(), k.hp.size(), md))
        return Error::crypto;
    return k;
}

Result<InitialSecrets> derive_initial_secrets(std::uint32_t version, Bytes client_dcid) {
    const auto* info = version_info(version);
    if (!info) return Error::unsupported_version;
    InitialSecrets s;
    std::size_t prk_len = 0;
    if (!HKDF_extract(s.initial.data(), &prk_len, EVP_sha256(), client_dcid.data(), client_dcid.size(),
                      info->initial_salt.data(), info->initial_salt.size()) ||
        prk_len != s.initial.size())
        return Error::crypto;
    if (!expand_label(s.initial, "client in", s.client.data(), 32, EVP_sha256()) ||
        !expand_label(s.initial, "server in", s.server.data(), 32, EVP_sha256()))
        return Error::crypto;
    return s;
}

Result<InitialKeys> derive_initial_keys(std::uint32_t version, Bytes client_dcid) {
    auto s = derive_initial_secrets(version, client_dcid);
    if (!s) return s.error;
    auto c = derive_packet_keys(version, Cipher::aes_128_gcm, s->client);
    auto sv = derive_packet_keys(version, Cipher::aes_128_gcm, s->server);
    if (!c) return c.error;
    if (!sv) return sv.error;
    return InitialKeys{std::move(c.value), std::move(sv.value)};
}

Result<std::array<std::uint8_t, 5>> header_protection_mask(Cipher cipher, Bytes hp_key, Bytes sample) {
    if (sample.size() < kHpSampleLen || hp_key.size() != key_len_for(cipher)) return Error::invalid;
    std::array<std::uint8_t, 5> mask{};
    if (cipher == Cipher::chacha20_poly1305) {
        // RFC 9001 5.4.4: counter = sample[0..3] little endian, nonce = sample[4..15].
        const std::uint32_t counter = std::uint32_t{sample[0]} | (std::uint32_t{sample[1]} << 8) |
                                      (std::uint32_t{sample[2]} << 16) | (std::uint32_t{sample[3]} << 24);
        const std::uint8_t zeros[5] = {};
        CRYPTO_chacha_20(mask.data(), zeros, sizeof zeros, hp_key.data(), sample.data() + 4, counter);
        return mask;
    }
    AES_KEY aes;
    if (AES_set_encrypt_key(hp_key.data(), static_cast<unsigned>(hp_key.size() * 8), &aes) != 0)
        return Error::crypto;
    std::uint8_t block[16];
    AES_encrypt(sample.data(), block, &aes);  // one ECB block
    std::copy_n(block, mask.size(), mask.begin());
    return mask;
}

std::uint64_t decode_packet_number(std::uint64_t largest_pn, std::uint64_t truncated_pn,
                                   std::size_t pn_len) noexcept {
    if (pn_len < 1 || pn_len > 4) return truncated_pn;
    const std::uint64_t expected = largest_pn + 1;
    const std::uint64_t win = 1ULL << (pn_len * 8);
    const std::uint64_t hwin = win / 2;
    const std::uint64_t mask = win - 1;
    const std::uint64_t candidate = (expected & ~mask) | (truncated_pn & mask);
    // Pick the candidate closest to the expected number, staying within 0..2^62.
    if (candidate + hwin <= expected && candidate < (1ULL << 62) - win) return candidate + win;
    if (candidate > expected + hwin && candidate >= win) return candidate - win;
    return candidate;
}

Result<OpenedPacket> open_packet(Bytes packet, std::size_t pn_offset, const PacketKeys& keys,
                                 std::uint64_t largest_pn) {
    if (!valid_keys(keys)) return Error::invalid;
    if (pn_offset == 0 || pn_offset > packet.size()) return Error::truncated;
    // The sample starts 4 bytes after the packet number offset (RFC 9001 5.4.2).
    if (packet.size() - pn_offset < 4 + kHpSampleLen) return Error::truncated;
    auto mask = header_protection_mask(keys.cipher, keys.hp, packet.subspan(pn_offset + 4, kHpSampleLen));
    if (!mask) return mask.error;

    const bool is_long = (packet[0] & 0x80) != 0;
    OpenedPacket out;
    const std::uint8_t first = packet[0] ^ (mask->at(0) & (is_long ? 0x0f : 0x1f));
    out.pn_length = static_cast<std::size_t>(first & 0x03) + 1;
    out.reserved_bits_zero = (first & (is_long ? 0x0c : 0x18)) == 0;
    const std::size_t hdr_len = pn_offset + out.pn_length;
    if (packet.size() < hdr_len + kAeadTagLen) return Error::truncated;

    out.header.assign(packet.begin(), packet.begin() + static_cast<std::ptrdiff_t>(hdr_len));
    out.header[0] = first;
    std::uint64_t truncated = 0;
    for (std::size_t i = 0; i < out.pn_length; ++i) {
        out.header[pn_offset + i] ^= (*mask)[1 + i];
        truncated = (truncated << 8) | out.header[pn_offset + i];
    }
    out.packet_number = decode_packet_number(largest_pn, truncated, out.pn_length);

    const auto nonce = make_nonce(keys.iv, out.packet_number);
    bssl::ScopedEVP_AEAD_CTX ctx;
    if (!EVP_AEAD_CTX_init(ctx.get(), aead_for(keys.cipher), keys.key.data(), keys.key.size(),
                           EVP_AEAD_DEFAULT_TAG_LENGTH, nullptr))
        return Error::crypto;
    const Bytes ct = packet.subspan(hdr_len);
    out.payload.resize(ct.size());
    std::size_t plain_len = 0;
    if (!EVP_AEAD_CTX_open(ctx.get(), out.payload.data(), &plain_len, out.payload.size(), nonce.data(),
                           nonce.size(), ct.data(), ct.size(), out.header.data(), out.header.size()))
        return Error::crypto;
    out.payload.resize(plain_len);
    return out;
}

struct PreparedKeys::Impl {
    Cipher cipher = Cipher::aes_128_gcm;
    std::array<std::uint8_t, 12> iv{};
    AES_KEY hp_aes{};
    std::array<std::uint8_t, 32> hp_chacha{};
    bssl::ScopedEVP_AEAD_CTX aead;
};

PreparedKeys::PreparedKeys() = default;
PreparedKeys::~PreparedKeys() = default;
PreparedKeys::PreparedKeys(PreparedKeys&&) noexcept = default;
PreparedKeys& PreparedKeys::operator=(PreparedKeys&&) noexcept = default;

Cipher PreparedKeys::cipher() const noexcept { return impl_ ? impl_->cipher : Cipher::aes_128_gcm; }

Result<KeyMaterial> KeyMaterial::from(const PacketKeys& k) {
    if (!valid_keys(k)) return Error::invalid;
    KeyMaterial m;
    m.cipher = k.cipher;
    std::copy(k.key.begin(), k.key.end(), m.key);
    std::copy(k.iv.begin(), k.iv.end(), m.iv);
    std::copy(k.hp.begin(), k.hp.end(), m.hp);
    return m;
}

Error PreparedKeys::init(const PacketKeys& k) { return init(k.cipher, k.key, k.iv, k.hp); }

Error PreparedKeys::init(const KeyMaterial& k) {
    const std::size_t n = key_len_for(k.cipher);
    return init(k.cipher, Bytes(k.key, n), Bytes(k.iv, 12), Bytes(k.hp, n));
}

Error PreparedKeys::init(Cipher cipher, Bytes key, Bytes iv, Bytes hp) {
    const std::size_t n = key_len_for(cipher);
    if (key.size() != n || hp.size() != n || iv.size() != 12) {
        impl_.reset();
        return Error::invalid;
    }
    // Re-initialising reuses the allocation (the decoder's key cache does this a lot).
    std::unique_ptr<Impl> im = std::move(impl_);
    if (im) EVP_AEAD_CTX_cleanup(im->aead.get());
    else im = std::make_unique<Impl>();
    im->cipher = cipher;
    std::copy(iv.begin(), iv.end(), im->iv.begin());
    if (cipher == Cipher::chacha20_poly1305) {
        std::copy(hp.begin(), hp.end(), im->hp_chacha.begin());
    } else if (AES_set_encrypt_key(hp.data(), static_cast<unsigned>(hp.size() * 8), &im->hp_aes) != 0) {
        return Error::crypto;
    }
    if (!EVP_AEAD_CTX_init(im->aead.get(), aead_for(cipher), key.data(), key.size(), EVP_AEAD_DEFAULT_TAG_LENGTH,
                           nullptr))
        return Error::crypto;
    impl_ = std::move(im);
    return Error::ok;
}

Error PreparedKeys::open(Bytes packet, std::size_t pn_offset, std::uint64_t largest_pn, std::vector<std::uint8_t>& buf,
                         OpenedView& out) const {
    if (!impl_) return Error::invalid;
    if (pn_offset == 0 || pn_offset > packet.size()) return Error::truncated;
    if (packet.size() - pn_offset < 4 + kHpSampleLen) return Error::truncated;
    const std::uint8_t* sample = packet.data() + pn_offset + 4;
    std::uint8_t mask[16];
    if (impl_->cipher == Cipher::chacha20_poly1305) {
        const std::uint32_t counter = std::uint32_t{sample[0]} | (std::uint32_t{sample[1]} << 8) |
                                      (std::uint32_t{sample[2]} << 16) | (std::uint32_t{sample[3]} << 24);
        const std::uint8_t zeros[5] = {};
        CRYPTO_chacha_20(mask, zeros, sizeof zeros, impl_->hp_chacha.data(), sample + 4, counter);
    } else {
        AES_encrypt(sample, mask, &impl_->hp_aes);
    }
    const bool is_long = (packet[0] & 0x80) != 0;
    const std::uint8_t first = packet[0] ^ (mask[0] & (is_long ? 0x0f : 0x1f));
    out.pn_length = static_cast<std::size_t>(first & 0x03) + 1;
    out.reserved_bits_zero = (first & (is_long ? 0x0c : 0x18)) == 0;
    const std::size_t hdr_len = pn_offset + out.pn_length;
    if (packet.size() < hdr_len + kAeadTagLen) return Error::truncated;

    if (buf.size() < packet.size()) buf.resize(packet.size());
    std::uint8_t* hdr = buf.data();
    std::memcpy(hdr, packet.data(), hdr_len);
    hdr[0] = first;
    std::uint64_t truncated = 0;
    for (std::size_t i = 0; i < out.pn_length; ++i) {
        hdr[pn_offset + i] ^= mask[1 + i];
        truncated = (truncated << 8) | hdr[pn_offset + i];
    }
    out.packet_number = decode_packet_number(largest_pn, truncated, out.pn_length);
    std::uint8_t nonce[12];
    std::memcpy(nonce, impl_->iv.data(), 12);
    for (std::size_t i = 0; i < 8; ++i) nonce[11 - i] ^= static_cast<std::uint8_t>(out.packet_number >> (8 * i));
    const std::size_t ct_len = packet.size() - hdr_len;
    std::size_t plain_len = 0;
    if (!EVP_AEAD_CTX_open(impl_->aead.get(), hdr + hdr_len, &plain_len, ct_len, nonce, sizeof nonce,
                           packet.data() + hdr_len, ct_len, hdr, hdr_len))
        return Error::crypto;
    out.header = Bytes(hdr, hdr_len);
    out.payload = Bytes(hdr + hdr_len, plain_len);
    return Error::ok;
}


Error derive_initial_key_material(std::uint32_t version, Bytes client_dcid, KeyMaterial& client, KeyMaterial& server) {
    return derive_initial_key_material(version, client_dcid, client, &server);
}

namespace {

// SHA-256 compression of `n` 64-byte blocks (BoringSSL's, which uses the CPU's SHA
// extensions where there are some).
void sha256_compress(std::uint32_t state[8], const std::uint8_t* data, std::size_t n) {
    SHA256_TransformBlocks(state, data, n);
}

constexpr std::uint32_t kSha256Init[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                          0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

// The state words as the digest's bytes (big-endian).
void sha256_bytes(const std::uint32_t st[8], std::uint8_t* out) {
    for (int i = 0; i < 8; ++i) {
        const std::uint32_t w = __builtin_bswap32(st[i]);
        std::memcpy(out + 4 * i, &w, 4);
    }
}

// The last block of a SHA-256 whose input is one 64-byte block (an HMAC pad) and then
// `n` <= 55 bytes from `msg`: the message, 0x80, zeros, the length in bits.
void one_block(std::uint8_t blk[64], const std::uint8_t* msg, std::size_t n) {
    std::memset(blk, 0, 64);
    if (n) std::memcpy(blk, msg, n);  // an empty DCID may have no pointer at all
    blk[n] = 0x80;
    const std::uint64_t bits = __builtin_bswap64((64 + std::uint64_t{n}) * 8);
    std::memcpy(blk + 56, &bits, 8);
}

// HMAC-SHA256 (RFC 2104) of one key: its padded blocks hashed once, so each MAC of a
// message of up to 55 bytes is two compressions on the saved states. Keys of at most
// 64 bytes (all QUIC secrets and salts).
struct Hmac256 {
    std::uint32_t inner[8], outer[8];
    void key(const std::uint8_t* k, std::size_t n) {
        std::uint8_t pads[2][64];
        std::memset(pads[0], 0x36, 64);
        std::memset(pads[1], 0x5c, 64);
        for (std::size_t i = 0; i < n && i < 64; ++i) {
            pads[0][i] ^= k[i];
            pads[1][i] ^= k[i];
        }
        std::memcpy(inner, kSha256Init, sizeof inner);
        std::memcpy(outer, kSha256Init, sizeof outer);
        sha256_compress(inner, pads[0], 1);
        sha256_compress(outer, pads[1], 1);
    }
};

// HMACs under one key, of messages already laid out as their last block (one_block):
// all the inner hashes first, then the outer ones. No compression waits for the one
// before, so the CPU overlaps them (a MAC at a time chained each on the last).
template <std::size_t N>
void hmac_blocks(const Hmac256& h, const std::uint8_t* const (&blocks)[N], std::uint8_t (&out)[N][32]) {
    std::uint32_t st[N][8];
    for (std::size_t i = 0; i < N; ++i) {
        std::memcpy(st[i], h.inner, sizeof st[i]);
        sha256_compress(st[i], blocks[i], 1);
    }
    std::uint8_t outer_blk[N][64];
    for (std::size_t i = 0; i < N; ++i) {
        std::uint8_t digest[32];
        sha256_bytes(st[i], digest);
        one_block(outer_blk[i], digest, 32);
        std::memcpy(st[i], h.outer, sizeof st[i]);
        sha256_compress(st[i], outer_blk[i], 1);
    }
    for (std::size_t i = 0; i < N; ++i) sha256_bytes(st[i], out[i]);
}

// What a version's Initial keys take that does not depend on the DCID: the salt's HMAC
// pads, and each HKDF-Expand-Label's message (RFC 8446 7.1: length, "tls13 " label, empty
// context, then HKDF's counter byte 1) laid out as its HMAC's last block.
struct InitialSchedule {
    std::uint32_t version = 0;
    Hmac256 salt;
    std::uint8_t client_in[64], server_in[64], key[64], iv[64], hp[64];

    static void label_block(std::uint8_t blk[64], std::string_view label, std::size_t out_len) {
        std::uint8_t info[55];
        std::size_t n = 0;
        info[n++] = static_cast<std::uint8_t>(out_len >> 8);
        info[n++] = static_cast<std::uint8_t>(out_len);
        info[n++] = static_cast<std::uint8_t>(6 + label.size());
        std::memcpy(info + n, "tls13 ", 6);
        n += 6;
        std::memcpy(info + n, label.data(), label.size());
        n += label.size();
        info[n++] = 0;
        info[n++] = 1;
        one_block(blk, info, n);
    }
    // False when a label does not fit one block (no version has one that long).
    bool init(const VersionInfo& v) {
        for (auto l : {v.key_label, v.iv_label, v.hp_label})
            if (l.size() > 55 - 11) return false;
        salt.key(v.initial_salt.data(), v.initial_salt.size());
        label_block(client_in, "client in", 32);
        label_block(server_in, "server in", 32);
        label_block(key, v.key_label, 16);
        label_block(iv, v.iv_label, 12);
        label_block(hp, v.hp_label, 16);
        version = v.version;
        return true;
    }
};

}  // namespace

Error derive_initial_key_material(std::uint32_t version, Bytes client_dcid, KeyMaterial& client, KeyMaterial* server) {
    const auto* info = version_info(version);
    if (!info) return Error::unsupported_version;
    if (info->initial_salt.size() > 64) return Error::crypto;
    // One schedule per thread and version (captures rarely mix versions).
    thread_local InitialSchedule sched;
    if (sched.version != version && !sched.init(*info)) {
        sched.version = 0;
        return Error::crypto;
    }
    // HKDF-Extract(salt, dcid) = HMAC(salt, dcid), then the client's (and the server's)
    // secret, then key, IV and header-protection key from each.
    std::uint8_t initial[1][32];
    if (client_dcid.size() <= 55) {
        std::uint8_t blk[64];
        one_block(blk, client_dcid.data(), client_dcid.size());
        hmac_blocks(sched.salt, {blk}, initial);
    } else {  // a long CID of a long header (v1 and v2 allow 20 bytes; the rest is not ours to judge)
        unsigned len = 0;
        if (!HMAC(EVP_sha256(), info->initial_salt.data(), info->initial_salt.size(), client_dcid.data(),
                  client_dcid.size(), initial[0], &len))
            return Error::crypto;
    }
    Hmac256 prk;
    prk.key(initial[0], 32);
    std::uint8_t secrets[2][32];
    if (server) {
        hmac_blocks(prk, {sched.client_in, sched.server_in}, secrets);
    } else {
        std::uint8_t one[1][32];
        hmac_blocks(prk, {sched.client_in}, one);
        std::memcpy(secrets[0], one[0], 32);
    }
    for (int side = 0; side < (server ? 2 : 1); ++side) {
        Hmac256 h;
        h.key(secrets[side], 32);
        std::uint8_t out[3][32];
        hmac_blocks(h, {sched.key, sched.iv, sched.hp}, out);
        KeyMaterial& m = side == 0 ? client : *server;
        m = KeyMaterial{};
        std::memcpy(m.key, out[0], 16);
        std::memcpy(m.iv, out[1], 12);
        std::memcpy(m.hp, out[2], 16);
    }
    return Error::ok;
}

Result<OpenedPacket> open_initial(const PacketHeader& h, Bytes client_dcid, bool sent_by_client) {
    if (h.type != PacketType::initial) return Error::invalid;
    auto keys = derive_initial_keys(h.version, client_dcid);
    if (!keys) return keys.error;
    return open_packet(h.packet, h.pn_offset, sent_by_client ? keys->client : keys->server);
}

Result<std::vector<std::uint8_t>> seal_packet(Bytes header, std::size_t pn_offset, std::uint64_t pn,
                                              Bytes payload, const PacketKeys& keys) {
    if (!valid_keys(keys) || header.empty() || pn_offset >= header.size()) return Error::invalid;
    const std::size_t pn_len = header.size() - pn_offset;
    if (pn_len < 1 || pn_len > 4 || static_cast<std::size_t>(header[0] & 0x03) + 1 != pn_len)
        return Error::invalid;
    // Header protection samples 16 bytes starting 4 bytes past pn_offset.
    if (pn_len + payload.size() + kAeadTagLen < 4 + kHpSampleLen) return Error::invalid;

    std::vector<std::uint8_t> out(header.begin(), header.end());
    out.resize(header.size() + payload.size() + kAeadTagLen);
    const auto nonce = make_nonce(keys.iv, pn);
    bssl::ScopedEVP_AEAD_CTX ctx;
    if (!EVP_AEAD_CTX_init(ctx.get(), aead_for(keys.cipher), keys.key.data(), keys.key.size(),
                           EVP_AEAD_DEFAULT_TAG_LENGTH, nullptr))
        return Error::crypto;
    std::size_t ct_len = 0;
    if (!EVP_AEAD_CTX_seal(ctx.get(), out.data() + header.size(), &ct_len, out.size() - header.size(),
                           nonce.data(), nonce.size(), payload.data(), payload.size(), header.data(),
                           header.size()))
        return Error::crypto;
    out.resize(header.size() + ct_len);

    auto mask = header_protection_mask(keys.cipher, keys.hp, Bytes(out).subspan(pn_offset + 4, kHpSampleLen));
    if (!mask) return mask.error;
    const bool is_long = (out[0] & 0x80) != 0;
    out[0] = static_cast<std::uint8_t>(out[0] ^ ((*mask)[0] & (is_long ? 0x0f : 0x1f)));
    for (std::size_t i = 0; i < pn_len; ++i) out[pn_offset + i] ^= (*mask)[1 + i];
    return out;
}

Result<std::vector<std::uint8_t>> build_long_packet(const LongPacketSpec& spec, const PacketKeys& keys) {
    if (!is_supported_version(spec.version) || spec.type == LongType::retry) return Error::invalid;
    if (spec.pn_length < 1 || spec.pn_length > 4 || spec.dcid.size() > kMaxCidLenV1 ||
        spec.scid.size() > kMaxCidLenV1)
        return Error::invalid;
    std::vector<std::uint8_t> h;
    h.push_back(static_cast<std::uint8_t>(0xc0 | (long_type_to_bits(spec.version, spec.type) << 4) |
                                          (spec.pn_length - 1)));
    for (int shift = 24; shift >= 0; shift -= 8) h.push_back(static_cast<std::uint8_t>(spec.version >> shift));
    h.push_back(static_cast<std::uint8_t>(spec.dcid.size()));
    h.insert(h.end(), spec.dcid.begin(), spec.dcid.end());
    h.push_back(static_cast<std::uint8_t>(spec.scid.size()));
    h.insert(h.end(), spec.scid.begin(), spec.scid.end());
    if (spec.type == LongType::initial) {
        if (!encode_varint(spec.token.size(), h)) return Error::invalid;
        h.insert(h.end(), spec.token.begin(), spec.token.end());
    } else if (!spec.token.empty()) {
        return Error::invalid;
    }
    const std::uint64_t length = spec.pn_length + spec.payload.size() + kAeadTagLen;
    if (!encode_varint_fixed(length, std::max<std::size_t>(2, varint_size(length)), h)) return Error::invalid;
    const std::size_t pn_offset = h.size();
    for (std::size_t i = spec.pn_length; i-- > 0;) h.push_back(static_cast<std::uint8_t>(spec.packet_number >> (8 * i)));
    return seal_packet(h, pn_offset, spec.packet_number, spec.payload, keys);
}

Result<std::array<std::uint8_t, 16>> retry_integrity_tag(std::uint32_t version, Bytes original_dcid,
                                                         Bytes retry_without_tag) {
    const auto* info = version_info(version);
    if (!info) return Error::unsupported_version;
    if (original_dcid.size() > 255) return Error::invalid;
    // Retry Pseudo-Packet (RFC 9001 5.8): ODCID length, ODCID, then the Retry minus tag.
    std::vector<std::uint8_t> pseudo;
    pseudo.reserve(1 + original_dcid.size() + retry_without_tag.size());
    pseudo.push_back(static_cast<std::uint8_t>(original_dcid.size()));
    pseudo.insert(pseudo.end(), original_dcid.begin(), original_dcid.end());
    pseudo.insert(pseudo.end(), retry_without_tag.begin(), retry_without_tag.end());

    bssl::ScopedEVP_AEAD_CTX ctx;
    if (!EVP_AEAD_CTX_init(ctx.get(), EVP_aead_aes_128_gcm(), info->retry_key.data(), info->retry_key.size(),
                           EVP_AEAD_DEFAULT_TAG_LENGTH, nullptr))
        return Error::crypto;
    std::array<std::uint8_t, 16> tag{};
    std::size_t tag_len = 0;
    // The tag is the AEAD output for an empty plaintext with the pseudo-packet as AAD.
    if (!EVP_AEAD_CTX_seal(ctx.get(), tag.data(), &tag_len, tag.size(), info->retry_nonce.data(),
                           info->retry_nonce.size(), nullptr, 0, pseudo.data(), pseudo.size()) ||
        tag_len != tag.size())
        return Error::crypto;
    return tag;
}

bool verify_retry(const PacketHeader& retry, Bytes original_dcid) {
    if (retry.type != PacketType::retry || retry.retry_tag.size() != kRetryTagLen ||
        retry.packet.size() < kRetryTagLen)
        return false;
    auto tag = retry_integrity_tag(retry.version, original_dcid, retry.packet.first(retry.packet.size() - kRetryTagLen));
    if (!tag) return false;
    // Constant-time compare is not needed for a public tag, but costs nothing.
    std::uint8_t diff = 0;
    for (std::size_t i = 0; i < kRetryTagLen; ++i) diff |= static_cast<std::uint8_t>(tag->at(i) ^ retry.retry_tag[i]);
    return diff == 0;
}

}  // namespace edge::quic
