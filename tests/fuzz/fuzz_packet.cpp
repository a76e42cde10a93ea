// Packet parser: first byte picks the link type, the rest is the frame.
#include <cstddef>
#include <cstdint>

#include "net/packet.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    static const edge::net::LinkType links[] = {edge::net::LinkType::ethernet, edge::net::LinkType::raw_ip,
                                                edge::net::LinkType::linux_sll, edge::net::LinkType::linux_sll2,
                                                edge::net::LinkType::null_loopback};
    auto link = links[data[0] % 5];
    edge::net::ParseOptions opts;
    opts.checksums = data[0] & 0x80;
    auto p = edge::net::parse_packet({data + 1, size - 1}, link, opts);
    // Offsets the parser reports must lie inside the input.
    if (p.payload_off + p.payload_len > size - 1) __builtin_trap();
    if (p.l4_len && p.l4_off + p.l4_len > size - 1) __builtin_trap();
    return 0;
}
