#include "net/checksum.hpp"

#include <cstring>

namespace edge::net {

Checksum& Checksum::add(std::span<const uint8_t> bytes) noexcept {
    std::size_t i = 0, n = bytes.size();
    if (odd_ && n > 0) {
        sum_ += bytes[0];
        i = 1;
        odd_ = false;
    }
    // Eight bytes per step as two big-endian 32-bit words: the one's-complement sum
    // is the same whatever the word size, once folded (RFC 1071 section 2).
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        std::memcpy(&w, bytes.data() + i, 8);
        w = __builtin_bswap64(w);
        sum_ += (w >> 32) + (w & 0xffffffffu);
    }
    for (; i + 1 < n; i += 2) sum_ += uint32_t(bytes[i]) << 8 | bytes[i + 1];
    if (i < n) {
        sum_ += uint32_t(bytes[i]) << 8;
        odd_ = true;
    }
    return *this;
}

Checksum& Checksum::add_u16(uint16_t v) noexcept {
    uint8_t b[2] = {uint8_t(v >> 8), uint8_t(v)};
    return add(b);
}

Checksum& Checksum::add_u32(uint32_t v) noexcept {
    uint8_t b[4] = {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
    return add(b);
}

uint16_t Checksum::fold() const noexcept {
    uint64_t s = sum_;
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return uint16_t(s);
}

uint16_t internet_checksum(std::span<const uint8_t> bytes) noexcept {
    return Checksum().add(bytes).finish();
}

Checksum pseudo_header(const IpAddr& src, const IpAddr& dst, uint8_t proto, uint32_t length) noexcept {
    Checksum c;
    c.add(src.bytes()).add(dst.bytes());
    if (src.is_v4()) {
        c.add_u16(proto).add_u16(uint16_t(length));
    } else {
        c.add_u32(length).add_u32(proto);
    }
    return c;
}

uint16_t transport_checksum(const IpAddr& src, const IpAddr& dst, uint8_t proto,
                            std::span<const uint8_t> segment) noexcept {
    return pseudo_header(src, dst, proto, uint32_t(segment.size())).add(segment).finish();
}

}  // namespace edge::net
