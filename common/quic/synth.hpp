// Synthetic QUIC handshakes for tests and benchmarks: a TLS ClientHello and
// ServerHello, EncryptedExtensions, CRYPTO frames, and whole protected packets
// built with the real packet protection (initial.hpp), so a decoder can be
// tested on captures no peer has to produce. Nothing here is a TLS stack: the
// key shares and secrets are arbitrary bytes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "quic/initial.hpp"
#include "quic/wire.hpp"

namespace edge::quic::synth {

using Buf = std::vector<std::uint8_t>;

struct ClientHelloSpec {
    std::array<std::uint8_t, 32> random{};
    std::string sni = "example.com";  // empty: no server_name extension
    std::vector<std::string> alpn{"h3"};
    std::vector<std::uint16_t> cipher_suites{0x1301, 0x1302, 0x1303};
    std::vector<std::uint16_t> groups{0x001d, 0x0017};
    Buf initial_scid;                  // initial_source_connection_id transport parameter
    std::size_t padding_bytes = 0;     // a padding extension (21) this long, to make big hellos
};

// Whole handshake messages, including the 4-byte handshake header.
Buf client_hello(const ClientHelloSpec& spec);
Buf server_hello(const std::array<std::uint8_t, 32>& random, std::uint16_t suite = 0x1301,
                 std::uint16_t group = 0x001d);
Buf encrypted_extensions(const std::string& alpn, Bytes original_dcid, Bytes initial_scid);

// Frames.
void crypto_frame(Buf& out, std::uint64_t offset, Bytes data);
void ack_frame(Buf& out, std::uint64_t largest);
void connection_close(Buf& out, std::uint64_t error, const std::string& reason, bool application);
void new_connection_id(Buf& out, std::uint64_t seq, Bytes cid);

// A long-header packet (Initial, 0-RTT, Handshake). If `pad_to` is set, PADDING is
// added so that the whole packet is that long (1200 for a client's Initial).
Buf long_packet(std::uint32_t version, LongType type, Bytes dcid, Bytes scid, std::uint64_t pn, Buf payload,
                const PacketKeys& keys, std::size_t pad_to = 0, Bytes token = {});
// A 1-RTT packet (short header, key phase 0). fixed_bit false: greased to 0 as RFC 9287
// allows (ngtcp2 does it once the peer sent grease_quic_bit).
Buf short_packet(Bytes dcid, std::uint64_t pn, Buf payload, const PacketKeys& keys, bool fixed_bit = true);
// A Retry with a valid integrity tag for `original_dcid`.
Buf retry(std::uint32_t version, Bytes dcid, Bytes scid, Bytes token, Bytes original_dcid);
Buf version_negotiation(Bytes dcid, Bytes scid, const std::vector<std::uint32_t>& versions);

}  // namespace edge::quic::synth
