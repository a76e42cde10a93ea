// QUIC packet protection (RFC 9001 5) on top of BoringSSL: Initial secret
// derivation per version, header protection, packet number recovery, AEAD
// open/seal, and Retry integrity tags (RFC 9001 5.8, RFC 9369 3.3.3).
//
// Initial packets are protected with keys any observer can derive from the
// client's first Destination Connection ID; that is what lets an edge box read
// the ClientHello without terminating TLS.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <cstdint>
#include <string_view>
#include <vector>

#include "quic/error.hpp"
#include "quic/header.hpp"
#include "quic/wire.hpp"

namespace edge::quic {

enum class Cipher : std::uint8_t { aes_128_gcm, aes_256_gcm, chacha20_poly1305 };

inline constexpr std::size_t kAeadTagLen = 16;
inline constexpr std::size_t kHpSampleLen = 16;

// TLS 1.3 HKDF-Expand-Label (RFC 8446 7.1). SHA-384 only for AES-256-GCM suites.
Result<std::vector<std::uint8_t>> hkdf_expand_label(Bytes secret, std::string_view label,
                                                    Bytes context, std::size_t out_len,
                                                    Cipher suite = Cipher::aes_128_gcm);

struct PacketKeys {
    Cipher cipher = Cipher::aes_128_gcm;
    std::vector<std::uint8_t> key;
    std::vector<std::uint8_t> iv;
    std::vector<std::uint8_t> hp;
};

// key/iv/hp from a traffic secret using the version's labels ("quic key" or "quicv2 key").
Result<PacketKeys> derive_packet_keys(std::uint32_t version, Cipher cipher, Bytes secret);

struct InitialSecrets {
    std::array<std::uint8_t, 32> initial{};
    std::array<std::uint8_t, 32> client{};
    std::array<std::uint8_t, 32> server{};
};

struct InitialKeys {
    PacketKeys client;  // protects packets the client sends
    PacketKeys server;
};

// client_dcid: the Destination Connection ID of the client's first Initial.
Result<InitialSecrets> derive_initial_secrets(std::uint32_t version, Bytes client_dcid);
Result<InitialKeys> derive_initial_keys(std::uint32_t version, Bytes client_dcid);

// 5-byte header protection mask from a 16-byte sample (RFC 9001 5.4.3 / 5.4.4).
Result<std::array<std::uint8_t, 5>> header_protection_mask(Cipher cipher, Bytes hp_key, Bytes sample);

// RFC 9000 A.3: full packet number from its truncated encoding of pn_len bytes.
std::uint64_t decode_packet_number(std::uint64_t largest_pn, std::uint64_t truncated_pn,
                                   std::size_t pn_len) noexcept;

struct OpenedPacket {
    std::vector<std::uint8_t> header;   // header with protection removed (incl. packet number)
    std::uint64_t packet_number = 0;
    std::size_t pn_length = 0;
    bool reserved_bits_zero = true;     // RFC 9000 17.2/17.3.1: nonzero is a protocol violation
    std::vector<std::uint8_t> payload;  // decrypted frames
};

// Removes header protection and decrypts one packet. `packet` is exactly the packet
// (PacketHeader::packet), pn_offset from PacketHeader. largest_pn is the largest
// packet number already received in this space (0 if none).
Result<OpenedPacket> open_packet(Bytes packet, std::size_t pn_offset, const PacketKeys& keys,
                                 std::uint64_t largest_pn = 0);

// Packet keys set up once for opening many packets: the AEAD context and the header
// protection key schedule are built here instead of per packet (open_packet does both
// every call). The decoder keeps one per connection, direction and space.
struct OpenedView {
    std::uint64_t packet_number = 0;
    std::size_t pn_length = 0;
    bool reserved_bits_zero = true;
    Bytes header;   // protection removed; views into the caller's buffer
    Bytes payload;  // decrypted frames; views into the caller's buffer
};

// Packet keys in fixed storage (no heap): what the decoder keeps per connection.
struct KeyMaterial {
    Cipher cipher = Cipher::aes_128_gcm;
    std::uint8_t key[32] = {};  // key_len(cipher) bytes used, the rest zero
    std::uint8_t iv[12] = {};
    std::uint8_t hp[32] = {};
    bool operator==(const KeyMaterial&) const = default;
    static Result<KeyMaterial> from(const PacketKeys& k);
};

class PreparedKeys {
public:
    PreparedKeys();
    ~PreparedKeys();
    PreparedKeys(PreparedKeys&&) noexcept;
    PreparedKeys& operator=(PreparedKeys&&) noexcept;

    Error init(const PacketKeys& keys);
    Error init(const KeyMaterial& keys);
    // Same as init(PacketKeys), from raw key material (key/hp of the cipher's length, 12-byte iv).
    Error init(Cipher cipher, Bytes key, Bytes iv, Bytes hp);
    bool ready() const noexcept { return impl_ != nullptr; }
    Cipher cipher() const noexcept;

    // Like open_packet(), without allocating once `buf` has grown: the unprotected header
    // and the plaintext go to `buf`, and `out` views into it.
    Error open(Bytes packet, std::size_t pn_offset, std::uint64_t largest_pn, std::vector<std::uint8_t>& buf,
               OpenedView& out) const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Derives both directions' Initial keys for (version, client_dcid) with no heap
// allocation (the decoder's per-connection path).
Error derive_initial_key_material(std::uint32_t version, Bytes client_dcid, KeyMaterial& client, KeyMaterial& server);
// The same, server keys only if `server` is not null (the client's alone take 5 HMACs of 8).
Error derive_initial_key_material(std::uint32_t version, Bytes client_dcid, KeyMaterial& client, KeyMaterial* server);

// Convenience: derives Initial keys from client_dcid and opens an Initial packet.
// For client Initials pass the header's own DCID; for server Initials pass the
// DCID the client originally chose.
Result<OpenedPacket> open_initial(const PacketHeader& h, Bytes client_dcid, bool sent_by_client);

// Encrypts `payload` and applies header protection. `header` is the plaintext
// header ending with the pn_len-byte packet number at pn_offset (its Length field
// must already count pn_len + payload + 16).
Result<std::vector<std::uint8_t>> seal_packet(Bytes header, std::size_t pn_offset, std::uint64_t pn,
                                              Bytes payload, const PacketKeys& keys);

struct LongPacketSpec {
    std::uint32_t version = kVersion1;
    LongType type = LongType::initial;
    Bytes dcid;
    Bytes scid;
    Bytes token;              // Initial only
    std::uint64_t packet_number = 0;
    std::size_t pn_length = 4;  // 1..4
    Bytes payload;            // plaintext frames (caller pads Initials to 1200 bytes)
};

// Builds and protects an Initial/0-RTT/Handshake packet. The Length field uses a
// 2-byte varint when it fits, like the RFC examples, so fixtures match byte for byte.
Result<std::vector<std::uint8_t>> build_long_packet(const LongPacketSpec& spec, const PacketKeys& keys);

// Retry integrity tag over the pseudo-packet (original DCID + Retry without tag).
Result<std::array<std::uint8_t, 16>> retry_integrity_tag(std::uint32_t version, Bytes original_dcid,
                                                         Bytes retry_without_tag);
// true iff the parsed Retry's tag matches for original_dcid.
bool verify_retry(const PacketHeader& retry, Bytes original_dcid);

}  // namespace edge::quic
