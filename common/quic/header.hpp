// QUIC packet header parsing (RFC 9000 17, RFC 8999 invariants, RFC 9369 3.2)
// and splitting of coalesced packets in a UDP datagram. Only the unprotected
// parts are decoded here: the packet number and the reserved bits are still
// under header protection (see initial.hpp to remove it).
//
// All Bytes members are views into the caller's buffer; keep it alive.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "quic/error.hpp"
#include "quic/version.hpp"
#include "quic/wire.hpp"

namespace edge::quic {

inline constexpr std::size_t kMaxCidLenV1 = 20;  // RFC 9000 17.2; RFC 8999 allows 255
inline constexpr std::size_t kRetryTagLen = 16;

enum class PacketType : std::uint8_t {
    initial,
    zero_rtt,
    handshake,
    retry,
    version_negotiation,
    one_rtt,       // short header
    unknown_long,  // long header of a version we do not know: only invariants parsed
};

std::string_view packet_type_name(PacketType t) noexcept;

struct PacketHeader {
    PacketType type = PacketType::unknown_long;
    bool long_header = false;
    bool fixed_bit = false;     // RFC 9287 allows it to be greased to 0, so only reported
    std::uint8_t first_byte = 0;  // still header-protected for Initial/0-RTT/Handshake/1-RTT
    std::uint32_t version = 0;
    Bytes dcid;
    Bytes scid;
    Bytes token;                  // Initial token or Retry token
    std::uint64_t length = 0;     // Length field: packet number + protected payload
    std::size_t pn_offset = 0;    // packet number offset from packet start (0: none)
    std::size_t size = 0;         // bytes this packet occupies in the datagram
    Bytes packet;                 // the whole packet (first `size` bytes)
    std::vector<std::uint32_t> supported_versions;  // Version Negotiation
    Bytes retry_tag;                                // Retry integrity tag (16 bytes)

    // True for packets whose payload is AEAD-protected and has a packet number.
    bool is_protected() const noexcept {
        return type == PacketType::initial || type == PacketType::zero_rtt ||
               type == PacketType::handshake || type == PacketType::one_rtt;
    }
};

// Parses the packet at the start of `data`. Short headers carry no DCID length,
// so the caller supplies the length it issued (short_dcid_len, 0..20).
Result<PacketHeader> parse_packet_header(Bytes data, std::size_t short_dcid_len = 0);

struct Datagram {
    std::vector<PacketHeader> packets;
    // Bytes after the last parsable packet (e.g. zero padding some stacks append);
    // RFC 9000 12.2 says receivers may ignore them.
    std::size_t trailing_bytes = 0;
};

// Splits a UDP datagram into its coalesced packets (RFC 9000 12.2). Fails only if
// the first packet does not parse; later garbage ends the split as trailing bytes.
Result<Datagram> split_datagram(Bytes datagram, std::size_t short_dcid_len = 0);
// The same into `out`, reusing its storage (a decoder splitting every datagram of a
// capture allocates nothing once it has grown). On error `out` is unspecified.
Error split_datagram(Bytes datagram, std::size_t short_dcid_len, Datagram& out);

}  // namespace edge::quic
