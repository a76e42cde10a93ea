// Follows the client side of one QUIC connection's Initial packets and pulls
// out the ClientHello, which may span several Initial packets (large key shares
// such as post-quantum hybrids push it past one datagram).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "quic/error.hpp"
#include "quic/frames.hpp"
#include "quic/initial.hpp"
#include "quic/tls.hpp"
#include "quic/wire.hpp"

namespace edge::quic {

class ClientHelloSniffer {
public:
    ClientHelloSniffer() = default;
    // The parsed ClientHello points into our own buffer, so copying would dangle.
    ClientHelloSniffer(const ClientHelloSniffer&) = delete;
    ClientHelloSniffer& operator=(const ClientHelloSniffer&) = delete;

    // Feeds one client->server UDP datagram. Non-Initial packets are ignored.
    // Keys come from the DCID and version of the first Initial that decrypts.
    // Returns an error if an Initial fails to decrypt or carries malformed
    // frames/TLS; the sniffer stays usable for later datagrams.
    Error feed(Bytes datagram);

    bool complete() const noexcept { return complete_; }
    const ClientHello& client_hello() const noexcept { return hello_; }
    std::uint32_t version() const noexcept { return version_; }
    const std::vector<std::uint8_t>& original_dcid() const noexcept { return dcid_; }
    std::size_t initial_packets() const noexcept { return packets_; }

private:
    Error feed_packet(const PacketHeader& h);

    bool started_ = false;
    bool complete_ = false;
    std::uint32_t version_ = 0;
    std::vector<std::uint8_t> dcid_;
    PacketKeys keys_;
    std::uint64_t largest_pn_ = 0;
    std::size_t packets_ = 0;
    CryptoReassembler crypto_;
    std::vector<std::uint8_t> hello_bytes_;
    ClientHello hello_;
};

}  // namespace edge::quic
