// Just enough TLS 1.3 (RFC 8446) to describe a QUIC handshake from its Initial
// packets: ClientHello and ServerHello fields plus the QUIC transport
// parameters extension (RFC 9001 8.2, RFC 9000 18). Nothing is verified; this
// is for diagnostics and routing (SNI/ALPN), not for terminating TLS.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "quic/error.hpp"
#include "quic/wire.hpp"

namespace edge::quic {

namespace tls {
inline constexpr std::uint8_t kClientHello = 1;
inline constexpr std::uint8_t kServerHello = 2;
inline constexpr std::uint16_t kExtServerName = 0;
inline constexpr std::uint16_t kExtSupportedGroups = 10;
inline constexpr std::uint16_t kExtSignatureAlgorithms = 13;
inline constexpr std::uint16_t kExtAlpn = 16;
inline constexpr std::uint16_t kExtSupportedVersions = 43;
inline constexpr std::uint16_t kExtKeyShare = 51;
inline constexpr std::uint16_t kExtQuicTransportParams = 0x39;
inline constexpr std::uint16_t kExtQuicTransportParamsDraft = 0xffa5;  // pre-RFC drafts
inline constexpr std::uint16_t kTls13 = 0x0304;
}  // namespace tls

std::string_view cipher_suite_name(std::uint16_t suite) noexcept;   // "TLS_AES_128_GCM_SHA256" or ""
std::string_view named_group_name(std::uint16_t group) noexcept;    // "x25519" or ""
std::string_view tls_extension_name(std::uint16_t type) noexcept;   // "server_name" or ""
std::string_view transport_param_name(std::uint64_t id) noexcept;   // "initial_max_data" or ""

struct TransportParam {
    std::uint64_t id = 0;
    Bytes value;                            // view into the handshake bytes
    std::optional<std::uint64_t> integer;   // set for integer-valued known parameters
    std::string_view name;                  // empty if unknown/greased
};

// Parses the quic_transport_parameters extension body.
Result<std::vector<TransportParam>> parse_transport_params(Bytes ext);
// The same into `out` (cleared first, storage reused).
Error parse_transport_params(Bytes ext, std::vector<TransportParam>& out);

// One handshake message at the start of a (reassembled) CRYPTO stream.
struct HandshakeMessage {
    std::uint8_t type = 0;
    Bytes body;          // excluding the 4-byte header
    std::size_t size = 0;  // including the header
};
// Error::truncated means "wait for more CRYPTO data".
Result<HandshakeMessage> next_handshake_message(Bytes stream);

struct ClientHello {
    std::uint16_t legacy_version = 0;
    std::array<std::uint8_t, 32> random{};
    Bytes session_id;
    std::vector<std::uint16_t> cipher_suites;
    std::vector<std::uint16_t> extension_types;  // in wire order
    std::string sni;                             // empty if absent
    std::vector<std::string> alpn;
    std::vector<std::uint16_t> supported_versions;
    std::vector<std::uint16_t> key_share_groups;
    std::vector<std::uint16_t> supported_groups;
    std::vector<std::uint16_t> signature_algorithms;
    bool has_transport_params = false;
    std::vector<TransportParam> transport_params;
};

struct ServerHello {
    std::uint16_t legacy_version = 0;
    std::array<std::uint8_t, 32> random{};
    bool hello_retry_request = false;  // RFC 8446 4.1.3 magic random
    Bytes session_id;
    std::uint16_t cipher_suite = 0;
    std::vector<std::uint16_t> extension_types;
    std::uint16_t selected_version = 0;  // supported_versions, else legacy_version
    std::uint16_t key_share_group = 0;
};

// Both take a whole handshake message including its 4-byte header. The results
// hold views (session_id, transport parameter values) into `msg`.
Result<ClientHello> parse_client_hello(Bytes msg);
// The same into `ch`, reusing its vectors' storage (a decoder parsing many ClientHellos
// into one scratch object allocates nothing once it has grown). On error `ch` is partial.
Error parse_client_hello(Bytes msg, ClientHello& ch);
Result<ServerHello> parse_server_hello(Bytes msg);

}  // namespace edge::quic
