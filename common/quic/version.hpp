// QUIC version numbers and the per-version constants needed to read Initial
// and Retry packets without a TLS stack.
//
// About 0x709a50c4 ("QUIC v2 draft", NGTCP2_PROTO_VER_V2_DRAFT in ngtcp2 0.12.x):
// it is the provisional codepoint of draft-ietf-quic-v2-01..04 (RFC 9369 registers
// it as "QUIC v2 draft codepoint"). Those drafts use initial salt
// a707c203a59b47184a1d62ca570406ea7ae3e5d3 (the installed libngtcp2_crypto
// contains exactly these bytes), the "quicv2 key/iv/hp/ku" labels, the same
// long-header type remapping as RFC 9369 (Initial 0b01, 0-RTT 0b10,
// Handshake 0b11, Retry 0b00) and Retry key ba858dc7b43de5dbf87617ff4ab253db /
// nonce 141b99c239b03e785d6a2e9f (matching NGTCP2_RETRY_KEY_V2_DRAFT).
// Only the version number, salt and Retry key/nonce differ from RFC 9369.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace edge::quic {

inline constexpr std::uint32_t kVersionNegotiation = 0x00000000;
inline constexpr std::uint32_t kVersion1 = 0x00000001;
inline constexpr std::uint32_t kVersion2 = 0x6b3343cf;       // RFC 9369
inline constexpr std::uint32_t kVersion2Draft = 0x709a50c4;  // draft-ietf-quic-v2-01..04
inline constexpr std::uint32_t kVersionDraft29 = 0xff00001d;

// RFC 9000 15: versions matching 0x?a?a?a?a are reserved to exercise negotiation.
constexpr bool is_grease_version(std::uint32_t v) noexcept {
    return (v & 0x0f0f0f0fu) == 0x0a0a0a0au;
}

// Long header packet type as carried in bits 4-5 of the first byte differs
// between versions; this is the version-independent meaning.
enum class LongType : std::uint8_t { initial, zero_rtt, handshake, retry };

// Everything version-specific that Initial/Retry processing depends on.
struct VersionInfo {
    std::uint32_t version;
    std::string_view name;
    std::array<std::uint8_t, 20> initial_salt;
    std::string_view key_label;  // "quic key" / "quicv2 key"
    std::string_view iv_label;
    std::string_view hp_label;
    std::string_view ku_label;
    std::array<std::uint8_t, 16> retry_key;
    std::array<std::uint8_t, 12> retry_nonce;
    bool v2_packet_types;  // RFC 9369 3.2 remapping
};

// nullptr for versions we cannot decrypt (unknown, VN, grease).
const VersionInfo* version_info(std::uint32_t v) noexcept;
inline bool is_supported_version(std::uint32_t v) noexcept { return version_info(v) != nullptr; }

// "v1", "v2", "v2-draft", "draft-29", "negotiation", "grease(0x1a2a3a4a)",
// other drafts "draft-NN", else "unknown(0x...)".
std::string version_name(std::uint32_t v);

// Maps the two type bits of a long header to a LongType for the given version
// (unknown versions are read with v1 semantics; callers should check support).
LongType long_type_from_bits(std::uint32_t version, std::uint8_t bits) noexcept;
std::uint8_t long_type_to_bits(std::uint32_t version, LongType t) noexcept;

}  // namespace edge::quic
