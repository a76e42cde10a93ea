// SSLKEYLOGFILE (NSS key log format) reader: TLS 1.3 traffic secrets by
// ClientHello random, so that a capture's Handshake and 1-RTT packets can be
// decrypted (RFC 9001 5.1: packet keys come from the TLS traffic secrets via
// HKDF-Expand-Label "quic key"/"quic iv"/"quic hp").
//
//   CLIENT_HANDSHAKE_TRAFFIC_SECRET <client_random hex> <secret hex>
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "quic/error.hpp"
#include "quic/initial.hpp"
#include "quic/wire.hpp"

namespace edge::quic {

struct TlsSecrets {
    std::vector<std::uint8_t> client_early;      // CLIENT_EARLY_TRAFFIC_SECRET
    std::vector<std::uint8_t> client_handshake;  // CLIENT_HANDSHAKE_TRAFFIC_SECRET
    std::vector<std::uint8_t> server_handshake;  // SERVER_HANDSHAKE_TRAFFIC_SECRET
    std::vector<std::uint8_t> client_app;        // CLIENT_TRAFFIC_SECRET_0
    std::vector<std::uint8_t> server_app;        // SERVER_TRAFFIC_SECRET_0
};

class KeyLog {
public:
    // Adds the lines of a key log. Comments, blank lines and labels other than the
    // TLS 1.3 ones above are ignored; malformed lines are counted and returned, and
    // the first one's 1-based number is kept in first_bad_line().
    std::size_t parse(std::string_view text);

    const TlsSecrets* find(const std::array<std::uint8_t, 32>& client_random) const;
    std::size_t size() const noexcept { return map_.size(); }
    std::size_t first_bad_line() const noexcept { return first_bad_; }

private:
    std::unordered_map<std::string, TlsSecrets> map_;  // key: the 32 random bytes
    std::size_t lines_ = 0;
    std::size_t first_bad_ = 0;
};

// The QUIC cipher for a TLS 1.3 cipher suite (0x1301..0x1303); false if unknown.
bool cipher_for_suite(std::uint16_t suite, Cipher& out) noexcept;

// Next-generation 1-RTT secret after a key update (RFC 9001 6.1: "quic ku",
// or "quicv2 ku" for v2).
Result<std::vector<std::uint8_t>> next_traffic_secret(std::uint32_t version, Cipher cipher, Bytes secret);

}  // namespace edge::quic
