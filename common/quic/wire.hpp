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

// Decodes one varint at data[pos]; advances pos on success only.
std::optional<std::uint64_t> decode_varint(Bytes data, std::size_t& pos) noexcept;
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

    bool u8(std::uint8_t& v) noexcept;
    bool u16(std::uint16_t& v) noexcept;
    bool u24(std::uint32_t& v) noexcept;
    bool u32(std::uint32_t& v) noexcept;
    bool varint(std::uint64_t& v) noexcept;
    bool bytes(std::size_t n, Bytes& out) noexcept;
    bool skip(std::size_t n) noexcept;
    // Length-prefixed vectors as used by TLS (1- or 2- or 3-byte length).
    bool vec8(Bytes& out) noexcept;
    bool vec16(Bytes& out) noexcept;
    bool vec24(Bytes& out) noexcept;

private:
    Bytes data_;
    std::size_t pos_ = 0;
};

}  // namespace edge::quic
