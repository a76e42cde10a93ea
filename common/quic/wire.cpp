#include "quic/wire.hpp"

namespace edge::quic {

std::optional<std::uint64_t> decode_varint(Bytes data, std::size_t& pos) noexcept {
    if (pos >= data.size()) return std::nullopt;
    // The two top bits of the first byte give the length: 1 << prefix bytes.
    const std::size_t len = std::size_t{1} << (data[pos] >> 6);
    if (data.size() - pos < len) return std::nullopt;
    std::uint64_t v = data[pos] & 0x3fu;
    for (std::size_t i = 1; i < len; ++i) v = (v << 8) | data[pos + i];
    pos += len;
    return v;
}

std::size_t varint_size(std::uint64_t v) noexcept {
    if (v < (1ULL << 6)) return 1;
    if (v < (1ULL << 14)) return 2;
    if (v < (1ULL << 30)) return 4;
    if (v <= kVarintMax) return 8;
    return 0;
}

bool encode_varint_fixed(std::uint64_t v, std::size_t size, std::vector<std::uint8_t>& out) {
    std::uint8_t prefix = 0;
    switch (size) {
        case 1: prefix = 0x00; break;
        case 2: prefix = 0x40; break;
        case 4: prefix = 0x80; break;
        case 8: prefix = 0xc0; break;
        default: return false;
    }
    if (size < 8 && v >= (1ULL << (size * 8 - 2))) return false;
    if (v > kVarintMax) return false;
    for (std::size_t i = 0; i < size; ++i) {
        auto b = static_cast<std::uint8_t>(v >> (8 * (size - 1 - i)));
        if (i == 0) b = static_cast<std::uint8_t>((b & 0x3f) | prefix);
        out.push_back(b);
    }
    return true;
}

bool encode_varint(std::uint64_t v, std::vector<std::uint8_t>& out) {
    const std::size_t n = varint_size(v);
    return n != 0 && encode_varint_fixed(v, n, out);
}

bool Reader::u8(std::uint8_t& v) noexcept {
    if (remaining() < 1) return false;
    v = data_[pos_++];
    return true;
}

bool Reader::u16(std::uint16_t& v) noexcept {
    if (remaining() < 2) return false;
    v = static_cast<std::uint16_t>((data_[pos_] << 8) | data_[pos_ + 1]);
    pos_ += 2;
    return true;
}

bool Reader::u24(std::uint32_t& v) noexcept {
    if (remaining() < 3) return false;
    v = (std::uint32_t{data_[pos_]} << 16) | (std::uint32_t{data_[pos_ + 1]} << 8) | data_[pos_ + 2];
    pos_ += 3;
    return true;
}

bool Reader::u32(std::uint32_t& v) noexcept {
    if (remaining() < 4) return false;
    v = (std::uint32_t{data_[pos_]} << 24) | (std::uint32_t{data_[pos_ + 1]} << 16) |
        (std::uint32_t{data_[pos_ + 2]} << 8) | data_[pos_ + 3];
    pos_ += 4;
    return true;
}

bool Reader::varint(std::uint64_t& v) noexcept {
    auto r = decode_varint(data_, pos_);
    if (!r) return false;
    v = *r;
    return true;
}

bool Reader::bytes(std::size_t n, Bytes& out) noexcept {
    if (remaining() < n) return false;
    out = data_.subspan(pos_, n);
    pos_ += n;
    return true;
}

bool Reader::skip(std::size_t n) noexcept {
    if (remaining() < n) return false;
    pos_ += n;
    return true;
}

bool Reader::vec8(Bytes& out) noexcept {
    const std::size_t save = pos_;
    std::uint8_t n = 0;
    if (u8(n) && bytes(n, out)) return true;
    pos_ = save;
    return false;
}

bool Reader::vec16(Bytes& out) noexcept {
    const std::size_t save = pos_;
    std::uint16_t n = 0;
    if (u16(n) && bytes(n, out)) return true;
    pos_ = save;
    return false;
}

bool Reader::vec24(Bytes& out) noexcept {
    const std::size_t save = pos_;
    std::uint32_t n = 0;
    if (u24(n) && bytes(n, out)) return true;
    pos_ = save;
    return false;
}

}  // namespace edge::quic
