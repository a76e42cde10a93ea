// RFC 1071 internet checksum. Checksum is an accumulator: feed it any number
// of spans (odd lengths are fine; byte positions carry across calls) and
// read finish(). Verifying a header or segment that includes its checksum
// field yields 0.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "net/addr.hpp"

namespace edge::net {

class Checksum {
public:
    Checksum& add(std::span<const uint8_t> bytes) noexcept;
    Checksum& add_u16(uint16_t v) noexcept;  // one big-endian word, host-order value
    Checksum& add_u32(uint32_t v) noexcept;

    // Ones'-complement sum folded to 16 bits (not complemented).
    uint16_t fold() const noexcept;
    // The value to store in a header (host order; write it big-endian).
    uint16_t finish() const noexcept { return uint16_t(~fold()); }

private:
    // 64 bits: no overflow for any realistic amount of input, folded at the end.
    uint64_t sum_ = 0;
    bool odd_ = false;  // the next byte is the low half of a word
};

// finish() of one span.
uint16_t internet_checksum(std::span<const uint8_t> bytes) noexcept;

// An accumulator primed with the TCP/UDP/ICMPv6 pseudo-header: IPv4
// (src, dst, zero, proto, length) or IPv6 (src, dst, 32-bit length, 3 zero
// bytes, next header), chosen by src's family.
Checksum pseudo_header(const IpAddr& src, const IpAddr& dst, uint8_t proto, uint32_t length) noexcept;

// Pseudo-header + segment. With the segment's checksum field zeroed this is
// the value to store (callers map a UDP result of 0 to 0xffff); with the
// field filled in it is 0 when the segment is intact.
uint16_t transport_checksum(const IpAddr& src, const IpAddr& dst, uint8_t proto,
                            std::span<const uint8_t> segment) noexcept;

}  // namespace edge::net
