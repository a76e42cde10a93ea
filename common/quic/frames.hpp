// Frame parsing for decrypted QUIC payloads (RFC 9000 19) and a bounded CRYPTO
// stream reassembler. Frames we do not inspect are skipped by their RFC 9000
// layout; a type we do not know ends parsing with Error::unknown_frame, because
// frame lengths are implicit and guessing would misread everything after it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "quic/error.hpp"
#include "quic/wire.hpp"

namespace edge::quic {

namespace frame_type {
inline constexpr std::uint64_t padding = 0x00;
inline constexpr std::uint64_t ping = 0x01;
inline constexpr std::uint64_t ack = 0x02;
inline constexpr std::uint64_t ack_ecn = 0x03;
inline constexpr std::uint64_t crypto = 0x06;
inline constexpr std::uint64_t new_token = 0x07;
inline constexpr std::uint64_t connection_close = 0x1c;
inline constexpr std::uint64_t connection_close_app = 0x1d;
inline constexpr std::uint64_t handshake_done = 0x1e;
}  // namespace frame_type

std::string_view frame_type_name(std::uint64_t type) noexcept;

struct AckRange {
    std::uint64_t gap = 0;
    std::uint64_t length = 0;
};

struct Frame {
    std::uint64_t type = 0;
    std::size_t offset = 0;  // position of the frame in the payload
    std::size_t size = 0;    // encoded size (a run of PADDING is one frame)

    // ACK
    std::uint64_t largest_acked = 0;
    std::uint64_t ack_delay = 0;
    std::uint64_t first_ack_range = 0;
    std::vector<AckRange> ack_ranges;
    std::uint64_t ecn_counts[3] = {0, 0, 0};  // ECT0, ECT1, CE for ACK_ECN

    // CRYPTO
    std::uint64_t crypto_offset = 0;
    Bytes data;  // CRYPTO data, NEW_TOKEN token, NEW_CONNECTION_ID CID, or CONNECTION_CLOSE reason

    // CONNECTION_CLOSE
    std::uint64_t error_code = 0;
    std::uint64_t frame_type_field = 0;  // transport close only
};

// Parses every frame in payload. On error the frames parsed so far are lost;
// use parse_frames_partial to keep them.
Result<std::vector<Frame>> parse_frames(Bytes payload);
// Like parse_frames but returns what was parsed before an error in `out`.
Error parse_frames_partial(Bytes payload, std::vector<Frame>& out);

// Reassembles a CRYPTO stream (offset-addressed, out of order, overlapping,
// with gaps) into a contiguous prefix. Memory is capped: data beyond `cap`
// bytes of stream is rejected with Error::too_large.
class CryptoReassembler {
public:
    explicit CryptoReassembler(std::size_t cap = 64 * 1024) : cap_(cap) {}

    // Overlapping bytes keep the first copy received (RFC 9000 2.2 lets a receiver
    // assume retransmitted data is identical).
    Error add(std::uint64_t offset, Bytes data);

    // Bytes available from stream offset 0 without a gap.
    Bytes contiguous() const noexcept { return Bytes(buf_.data(), contiguous_); }
    std::size_t received_bytes() const noexcept { return received_; }
    bool has_gaps() const noexcept { return received_ != contiguous_; }
    std::size_t cap() const noexcept { return cap_; }

private:
    std::size_t cap_;
    std::vector<std::uint8_t> buf_;
    std::vector<bool> have_;
    std::size_t contiguous_ = 0;
    std::size_t received_ = 0;
};

}  // namespace edge::quic
