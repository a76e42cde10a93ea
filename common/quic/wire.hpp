// Bounds-checked big-endian reader and QUIC variable-length integers
// (RFC 9000 section 16). Every accessor fails instead of reading past the end,
// so parsers built on it are safe on arbitrary (fuzzed) input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace edge::quic {

using Bytes = std::span<const std::uint8_t>;

inline constexpr std::uint64_t kVarintMax = (1ULL << 62) - 1;

// Decodes one varint at data[pos]; advances pos on success only. (Inline, like the
// Reader's accessors: every parser calls them for each field, and a call each was a
// tenth of parsing a ClientHello.)
inline std::optional<std::uint64_t> decode_varint(Bytes data, std::size_t& pos) noexcept {
    if (pos >= data.size()) return std::nullopt;
    // The two top bits of the first byte give the length: 1 << prefix bytes.
    const std::size_t len = std::size_t{1} << (data[pos] >> 6);
    if (data.size() - pos < len) return std::nullopt;
    std::uint64_t v = data[pos] & 0x3fu;
    for (std::size_t i = 1; i < len; ++i) v = (v << 8) | data[pos + i];
    pos += len;
    return v;
}
// Smallest encoding size (1, 2, 4 or 8), or 0 if v > kVarintMax.
std::size_t varint_size(std::uint64_t v) noexcept;
// Appends the minimal encoding; false if v > kVarintMax.
bool encode_varint(std::uint64_t v, std::vector<std::uint8_t>& out);
// Appends a fixed-size encoding (size 1/2/4/8) — used when a length field must be
// reserved before its value is known. False if v does not fit.
bool encode_varint_fixed(std::uint64_t v, std::size_t size, std::vector<std::uint8_t>& out);

class Reader {
public:
    explicit Reader(Bytes data) noexcept : data_(data) {}

    std::size_t pos() const noexcept { return pos_; }
    std::size_t remaining() const noexcept { return data_.size() - pos_; }
    bool empty() const noexcept { return pos_ >= data_.size(); }
    Bytes rest() const noexcept { return data_.subspan(pos_); }

    bool u8(std::uint8_t& v) noexcept {
        if (remaining() < 1) return false;
        v = data_[pos_++];
        return true;
    }
    bool u16(std::uint16_t& v) noexcept {
        if (remaining() < 2) return false;
        v = static_cast<std::uint16_t>((data_[pos_] << 8) | data_[pos_ + 1]);
        pos_ += 2;
        return true;
    }
    bool u24(std::uint32_t& v) noexcept {
        if (remaining() < 3) return false;
        v = (std::uint32_t{data_[pos_]} << 16) | (std::uint32_t{data_[pos_ + 1]} << 8) | data_[pos_ + 2];
        pos_ += 3;
        return true;
    }
    bool u32(std::uint32_t& v) noexcept {
        if (remaining() < 4) return false;
        v = (std::uint32_t{data_[pos_]} << 24) | (std::uint32_t{data_[pos_ + 1]} << 16) |
            (std::uint32_t{data_[pos_ + 2]} << 8) | data_[pos_ + 3];
        pos_ += 4;
        return true;
    }
    bool varint(std::uint64_t& v) noexcept {
        auto r = decode_varint(data_, pos_);
        if (!r) return false;
        v = *r;
        return true;
    }
    bool bytes(std::size_t n, Bytes& out) noexcept {
        if (remaining() < n) return false;
        out = data_.subspan(pos_, n);
        pos_ += n;
        return true;
    }
    bool skip(std::size_t n) noexcept {
        if (remaining() < n) return false;
        pos_ += n;
        return true;
    }
    // Length-prefixed vectors as used by TLS (1- or 2- or 3-byte length).
    bool vec8(Bytes& out) noexcept { return vec(1, out); }
    bool vec16(Bytes& out) noexcept { return vec(2, out); }
    bool vec24(Bytes& out) noexcept { return vec(3, out); }

private:
    // A `width`-byte big-endian length, then that many bytes; nothing consumed when either
    // is short. (Not through a pointer to u8/u16/u24: taking their address kept every
    // parser's calls to them out of line.)
    bool vec(std::size_t width, Bytes& out) noexcept {
        if (remaining() < width) return false;
        std::size_t n = 0;
        for (std::size_t i = 0; i < width; ++i) n = n << 8 | data_[pos_ + i];
        if (remaining() - width < n) return false;
        out = data_.subspan(pos_ + width, n);
        pos_ += width + n;
        return true;
    }
    Bytes data_;
    std::size_t pos_ = 0;
};

}  // namespace edge::quic
