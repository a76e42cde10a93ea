#include "quic/wire.hpp"

namespace edge::quic {

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

}  // namespace edge::quic
