#include "quic/frames.hpp"

#include <algorithm>
#include <cstring>

namespace edge::quic {

std::string_view frame_type_name(std::uint64_t type) noexcept {
    switch (type) {
        case 0x00: return "PADDING";
        case 0x01: return "PING";
        case 0x02: return "ACK";
        case 0x03: return "ACK_ECN";
        case 0x04: return "RESET_STREAM";
        case 0x05: return "STOP_SENDING";
        case 0x06: return "CRYPTO";
        case 0x07: return "NEW_TOKEN";
        case 0x10: return "MAX_DATA";
        case 0x11: return "MAX_STREAM_DATA";
        case 0x12: return "MAX_STREAMS_BIDI";
        case 0x13: return "MAX_STREAMS_UNI";
        case 0x14: return "DATA_BLOCKED";
        case 0x15: return "STREAM_DATA_BLOCKED";
        case 0x16: return "STREAMS_BLOCKED_BIDI";
        case 0x17: return "STREAMS_BLOCKED_UNI";
        case 0x18: return "NEW_CONNECTION_ID";
        case 0x19: return "RETIRE_CONNECTION_ID";
        case 0x1a: return "PATH_CHALLENGE";
        case 0x1b: return "PATH_RESPONSE";
        case 0x1c: return "CONNECTION_CLOSE";
        case 0x1d: return "CONNECTION_CLOSE_APP";
        case 0x1e: return "HANDSHAKE_DONE";
        case 0x30: return "DATAGRAM";
        case 0x31: return "DATAGRAM_LEN";
        default: break;
    }
    if (type >= 0x08 && type <= 0x0f) return "STREAM";
    return "UNKNOWN";
}

namespace {

bool skip_varints(Reader& r, int n) {
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i)
        if (!r.varint(v)) return false;
    return true;
}

bool read_len_bytes(Reader& r, Bytes& out) {
    std::uint64_t len = 0;
    if (!r.varint(len) || len > r.remaining()) return false;
    return r.bytes(static_cast<std::size_t>(len), out);
}

// Parses the body of one frame whose type is already read.
Error parse_body(Reader& r, Frame& f) {
    const std::uint64_t t = f.type;
    switch (t) {
        case frame_type::ping:
        case frame_type::handshake_done:
            return Error::ok;
        case frame_type::ack:
        case frame_type::ack_ecn: {
            std::uint64_t count = 0;
            if (!r.varint(f.largest_acked) || !r.varint(f.ack_delay) || !r.varint(count) ||
                !r.varint(f.first_ack_range))
                return Error::truncated;
            // Each range needs at least two bytes, which bounds allocation by input size.
            if (count > r.remaining() / 2) return Error::truncated;
            f.ack_ranges.reserve(static_cast<std::size_t>(count));
            for (std::uint64_t i = 0; i < count; ++i) {
                AckRange ar;
                if (!r.varint(ar.gap) || !r.varint(ar.length)) return Error::truncated;
                f.ack_ranges.push_back(ar);
            }
            if (t == frame_type::ack_ecn)
                for (auto& c : f.ecn_counts)
                    if (!r.varint(c)) return Error::truncated;
            return Error::ok;
        }
        case frame_type::crypto: {
            if (!r.varint(f.crypto_offset) || !read_len_bytes(r, f.data)) return Error::truncated;
            if (f.crypto_offset + f.data.size() > kVarintMax) return Error::invalid;
            return Error::ok;
        }
        case frame_type::new_token:
            return read_len_bytes(r, f.data) ? Error::ok : Error::truncated;
        case frame_type::connection_close:
        case frame_type::connection_close_app:
            if (!r.varint(f.error_code)) return Error::truncated;
            if (t == frame_type::connection_close && !r.varint(f.frame_type_field)) return Error::truncated;
            return read_len_bytes(r, f.data) ? Error::ok : Error::truncated;
        case 0x04:  // RESET_STREAM: id, error, final size
            return skip_varints(r, 3) ? Error::ok : Error::truncated;
        case 0x05:  // STOP_SENDING
        case 0x11:  // MAX_STREAM_DATA
        case 0x15:  // STREAM_DATA_BLOCKED
            return skip_varints(r, 2) ? Error::ok : Error::truncated;
        case 0x10: case 0x12: case 0x13: case 0x14: case 0x16: case 0x17: case 0x19:
            return skip_varints(r, 1) ? Error::ok : Error::truncated;
        case 0x18: {  // NEW_CONNECTION_ID: seq, retire, cid<1..20>, 16-byte reset token
            Bytes cid;
            if (!skip_varints(r, 2) || !r.vec8(cid)) return Error::truncated;
            if (cid.empty() || cid.size() > 20) return Error::invalid;
            f.data = cid;  // the new connection ID
            return r.skip(16) ? Error::ok : Error::truncated;
        }
        case 0x1a:
        case 0x1b:
            return r.skip(8) ? Error::ok : Error::truncated;
        case 0x30:  // DATAGRAM without length runs to the end of the packet
            r.skip(r.remaining());
            return Error::ok;
        case 0x31:
            return read_len_bytes(r, f.data) ? Error::ok : Error::truncated;
        default:
            break;
    }
    if (t >= 0x08 && t <= 0x0f) {  // STREAM: OFF=0x04, LEN=0x02, FIN=0x01
        std::uint64_t id = 0, off = 0;
        if (!r.varint(id)) return Error::truncated;
        if ((t & 0x04) && !r.varint(off)) return Error::truncated;
        if (t & 0x02) return read_len_bytes(r, f.data) ? Error::ok : Error::truncated;
        r.bytes(r.remaining(), f.data);
        return Error::ok;
    }
    return Error::unknown_frame;
}

}  // namespace

Error parse_frames_partial(Bytes payload, std::vector<Frame>& out) {
    Reader r(payload);
    while (!r.empty()) {
        Frame f;
        f.offset = r.pos();
        if (!r.varint(f.type)) return Error::truncated;
        if (f.type == frame_type::padding) {
            // Collapse runs of PADDING: Initials carry hundreds of them.
            const Bytes rest = r.rest();
            std::size_t n = 0;
            // Eight bytes at a time: Initials are mostly padding.
            while (n + 8 <= rest.size()) {
                std::uint64_t w;
                std::memcpy(&w, rest.data() + n, 8);
                if (w) break;
                n += 8;
            }
            while (n < rest.size() && rest[n] == 0x00) ++n;
            r.skip(n);
        } else if (Error e = parse_body(r, f); e != Error::ok) {
            return e;
        }
        f.size = r.pos() - f.offset;
        out.push_back(std::move(f));
    }
    return Error::ok;
}

Result<std::vector<Frame>> parse_frames(Bytes payload) {
    std::vector<Frame> frames;
    if (Error e = parse_frames_partial(payload, frames); e != Error::ok) return e;
    return frames;
}

Error CryptoReassembler::add(std::uint64_t offset, Bytes data) {
    if (data.empty()) return Error::ok;
    if (offset > cap_ || data.size() > cap_ - offset) return Error::too_large;
    const auto off = static_cast<std::size_t>(offset);
    const std::size_t end = off + data.size();
    if (off == contiguous_ && buf_.size() == contiguous_) {
        // In order with nothing pending beyond: the common case, no per-byte bookkeeping.
        buf_.insert(buf_.end(), data.begin(), data.end());
        have_.resize(end, true);
        received_ += data.size();
        contiguous_ = end;
        return Error::ok;
    }
    if (buf_.size() < end) {
        buf_.resize(end);
        have_.resize(end, false);
    }
    for (std::size_t i = 0; i < data.size(); ++i) {
        if (have_[off + i]) continue;  // first copy wins
        buf_[off + i] = data[i];
        have_[off + i] = true;
        ++received_;
    }
    while (contiguous_ < have_.size() && have_[contiguous_]) ++contiguous_;
    return Error::ok;
}

}  // namespace edge::quic
