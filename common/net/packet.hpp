// A bounds-checked packet dissector: link layer, VLAN tags, IPv4/IPv6 (with
// extension headers), TCP/UDP/ICMP/ICMPv6 and the packet quoted inside ICMP
// errors. It never reads outside the span, whatever the bytes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include <edge/flow.h>

#include "net/addr.hpp"

namespace edge::net {

enum class LinkType { ethernet, raw_ip, linux_sll, linux_sll2, null_loopback };

// pcap DLT / LINKTYPE number -> LinkType (1, 12, 101, 228, 229, 113, 276, 0, 108).
std::optional<LinkType> link_from_dlt(int dlt);

// TCP header flag bits (byte 13).
struct TcpFlags {
    static constexpr uint8_t fin = 0x01;
    static constexpr uint8_t syn = 0x02;
    static constexpr uint8_t rst = 0x04;
    static constexpr uint8_t psh = 0x08;
    static constexpr uint8_t ack = 0x10;
    static constexpr uint8_t urg = 0x20;
    static constexpr uint8_t ece = 0x40;
    static constexpr uint8_t cwr = 0x80;
};

enum class ParseStatus : uint8_t {
    ok,                // every layer present was parsed (see snap_truncated)
    truncated,         // the capture ended inside a header
    malformed,         // a header contradicts itself or an outer length
    unsupported_link,  // LinkType value not handled
    not_ip,            // a valid frame that carries something other than IP
};

const char* to_string(ParseStatus s) noexcept;

struct Packet {
    ParseStatus status = ParseStatus::ok;
    const char* reason = "";  // short, static; empty when ok and nothing notable

    // Offsets are from the start of the input; lengths are header lengths
    // (l3_len includes IPv4 options / IPv6 extension headers).
    std::size_t l2_off = 0, l2_len = 0;
    std::size_t l3_off = 0, l3_len = 0;
    std::size_t l4_off = 0, l4_len = 0;
    // Captured payload after the last parsed header, clipped to the IP/UDP
    // length (so Ethernet padding is excluded) and to what was captured.
    std::size_t payload_off = 0, payload_len = 0;

    uint16_t ethertype = 0;  // innermost
    static constexpr std::size_t kMaxVlans = 4;
    std::array<uint16_t, kMaxVlans> vlan_ids{};  // outermost first
    uint8_t vlan_count = 0;

    uint8_t ip_version = 0;  // 0 = no L3 parsed
    IpAddr src, dst;
    uint8_t proto = 0;  // final upper-layer protocol (after IPv6 extension headers)
    uint8_t ttl = 0;    // TTL or hop limit
    bool ip_options = false;         // IPv4 IHL > 5
    bool ip_checksum_checked = false;  // ParseOptions::checksums and IPv4
    bool ip_checksum_ok = false;     // IPv4 header checksum verifies (IPv6: false)
    bool snap_truncated = false;     // captured less than the IP length says
    bool fragment = false;           // part of a fragmented datagram
    bool more_fragments = false;
    bool dont_fragment = false;      // IPv4 DF
    uint16_t frag_offset = 0;        // bytes
    uint32_t frag_id = 0;

    bool has_l4 = false;  // a TCP/UDP/ICMP/ICMPv6 header was parsed
    uint16_t sport = 0, dport = 0;
    uint32_t tcp_seq = 0, tcp_ack = 0;
    uint8_t tcp_flags = 0;
    uint16_t tcp_window = 0;
    uint16_t udp_len = 0;
    uint8_t icmp_type = 0, icmp_code = 0;
    // L4 checksum verified only when the whole datagram is here (not a
    // fragment, not snap-truncated); a zero UDP-over-IPv4 checksum counts as ok.
    bool l4_checksum_checked = false;
    bool l4_checksum_ok = false;

    edge_flow_key key{};  // filled once L3 is parsed; ports 0 when not available

    // ICMP/ICMPv6 errors: the flow of the quoted packet, in its own direction.
    bool has_inner = false;
    edge_flow_key inner_key{};

    bool ok() const noexcept { return status == ParseStatus::ok; }
};

struct ParseOptions {
    // Verify the IPv4 header and TCP/UDP/ICMP checksums. The L4 one reads the whole
    // payload; tools that only need flows (maglev-calc pcap over millions of
    // packets) turn checking off.
    bool checksums = true;
};

Packet parse_packet(std::span<const uint8_t> data, LinkType link, const ParseOptions& opts = {});

// The usual frame of a UDP capture, read without building a Packet (~200 bytes to clear
// and fill per frame): IPv4 without options, not a fragment, captured whole, carrying
// UDP, on Ethernet without VLAN tags, Linux SLL/SLL2 or raw IP. True with what
// parse_packet (checksums off) would give for it; false for any other frame, which
// parse_packet then reads.
struct PlainUdp {
    IpAddr src, dst;
    uint16_t sport = 0, dport = 0;
    uint16_t udp_len = 0;  // the UDP header's length field
    std::size_t payload_off = 0, payload_len = 0;
};
inline bool parse_plain_udp4(std::span<const uint8_t> d, LinkType link, PlainUdp& u) {
    std::size_t off;
    std::size_t type_at;
    switch (link) {
    case LinkType::ethernet: off = 14, type_at = 12; break;
    case LinkType::linux_sll: off = 16, type_at = 14; break;
    case LinkType::linux_sll2: off = 20, type_at = 0; break;
    case LinkType::raw_ip: off = 0, type_at = 0; break;
    default: return false;
    }
    const std::size_t n = d.size();
    if (n < off + 28) return false;
    const uint8_t* p = d.data();
    auto be16 = [](const uint8_t* b) { return static_cast<uint16_t>(b[0] << 8 | b[1]); };
    if (link != LinkType::raw_ip && be16(p + type_at) != 0x0800) return false;
    const uint8_t* ip = p + off;
    const std::size_t total = be16(ip + 2);
    // Version 4, no options; UDP; no more fragments and offset 0; all of it captured.
    if (ip[0] != 0x45 || ip[9] != 17 || (be16(ip + 6) & 0x3fff) != 0 || total < 28 || off + total > n) return false;
    const uint8_t* udp = ip + 20;
    const std::size_t ulen = be16(udp + 4);
    if (ulen < 8 || 20 + ulen > total) return false;  // parse_packet calls these malformed
    u.src = IpAddr::v4({ip[12], ip[13], ip[14], ip[15]});
    u.dst = IpAddr::v4({ip[16], ip[17], ip[18], ip[19]});
    u.sport = be16(udp);
    u.dport = be16(udp + 2);
    u.udp_len = static_cast<uint16_t>(ulen);
    u.payload_off = off + 28;
    u.payload_len = ulen - 8;
    return true;
}

}  // namespace edge::net
