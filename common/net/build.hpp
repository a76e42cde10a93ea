// A fluent packet builder for tests and BPF fixtures. It writes every length
// and checksum on build(), so tests only state what matters:
//
//   auto frame = PacketBuilder().eth(src_mac, dst_mac).vlan(100)
//                    .ipv4(src, dst).ttl(64).tcp(5555, 443)
//                    .flags(TcpFlags::syn).seq(1).payload(bytes).build();
//
// Without eth() the output is a bare IP packet (raw IP, also what an ICMP
// error quotes: PacketBuilder().ipv4(..).udp(..).build() -> .icmp_error(.., it)).
// Misuse (no ipv4()/ipv6(), fragment offset not a multiple of 8, IPv4
// options > 40 bytes, oversize packet) throws std::invalid_argument.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "net/addr.hpp"
#include "net/packet.hpp"

namespace edge::net {

using Mac = std::array<uint8_t, 6>;

class PacketBuilder {
public:
    // Link layer. Not calling eth() means raw IP.
    PacketBuilder& eth(const Mac& src, const Mac& dst);
    // One 802.1Q tag per call, outermost first; tpid 0x88a8 for an 802.1ad S-tag.
    PacketBuilder& vlan(uint16_t id, uint16_t tpid = 0x8100, uint8_t pcp = 0);
    // 802.1ad S-tag then 802.1Q C-tag.
    PacketBuilder& qinq(uint16_t outer, uint16_t inner);

    // Network layer (exactly one; the families must match).
    PacketBuilder& ipv4(const IpAddr& src, const IpAddr& dst);
    PacketBuilder& ipv6(const IpAddr& src, const IpAddr& dst);
    PacketBuilder& ttl(uint8_t ttl);  // also IPv6 hop limit; default 64
    PacketBuilder& tos(uint8_t tos);  // IPv4 TOS / IPv6 traffic class
    PacketBuilder& ip_id(uint16_t id);
    PacketBuilder& dont_fragment(bool df = true);
    // Raw option bytes, zero-padded (EOL) to a multiple of 4.
    PacketBuilder& ipv4_options(std::vector<uint8_t> options);
    // IPv6 extension headers, emitted in call order; option bytes are padded
    // with Pad1/PadN to a multiple of 8.
    PacketBuilder& hop_by_hop(std::vector<uint8_t> options = {});
    PacketBuilder& dest_options(std::vector<uint8_t> options = {});
    // Any other extension header (routing 43, AH 51, ...): body is what follows
    // the next-header and length bytes; 2 + body must be a multiple of 8 (AH: 4).
    PacketBuilder& ext_header(uint8_t type, std::vector<uint8_t> body);
    // IPv4: sets the offset/MF fields. IPv6: appends a fragment header.
    // offset is in bytes (a multiple of 8). For a non-first fragment use
    // proto() + payload() rather than a transport header.
    PacketBuilder& fragment(uint16_t offset, bool more, uint32_t id = 0);

    // Transport layer (at most one).
    PacketBuilder& tcp(uint16_t sport, uint16_t dport);
    PacketBuilder& flags(uint8_t tcp_flags);  // TcpFlags bits
    PacketBuilder& seq(uint32_t seq);
    PacketBuilder& ack(uint32_t ack);
    PacketBuilder& window(uint16_t window);  // default 65535
    PacketBuilder& tcp_options(std::vector<uint8_t> options);  // padded with EOL to 4
    PacketBuilder& udp(uint16_t sport, uint16_t dport);
    // ICMP for IPv4, ICMPv6 for IPv6. rest = the 4 bytes after the checksum.
    PacketBuilder& icmp(uint8_t type, uint8_t code, uint32_t rest = 0);
    PacketBuilder& echo_request(uint16_t id, uint16_t seq);
    PacketBuilder& echo_reply(uint16_t id, uint16_t seq);
    // An error (e.g. 3/x for IPv4, 1/x for IPv6) quoting a built raw-IP packet.
    PacketBuilder& icmp_error(uint8_t type, uint8_t code, std::span<const uint8_t> quoted);
    // Any other protocol number; the payload follows the IP header(s) as is.
    PacketBuilder& proto(uint8_t proto);

    PacketBuilder& payload(std::span<const uint8_t> bytes);
    PacketBuilder& payload(std::string_view text);

    std::vector<uint8_t> build() const;

private:
    enum class L3 { none, v4, v6 };
    enum class L4 { none, tcp, udp, icmp, raw };
    struct Tag {
        uint16_t tpid, tci;
    };
    struct Ext {
        uint8_t type;
        std::vector<uint8_t> body;  // bytes after next-header (and length for TLV headers)
    };

    bool eth_ = false;
    Mac src_mac_{}, dst_mac_{};
    std::vector<Tag> tags_;

    L3 l3_ = L3::none;
    IpAddr src_, dst_;
    uint8_t ttl_ = 64, tos_ = 0;
    uint16_t ip_id_ = 0;
    bool df_ = false;
    std::vector<uint8_t> ip_opts_;
    std::vector<Ext> exts_;
    uint16_t frag_off_ = 0;
    bool frag_more_ = false;
    bool v4_frag_ = false;

    L4 l4_ = L4::none;
    uint8_t proto_ = 59;  // IPv6 "no next header" / unused for IPv4 until set
    uint16_t sport_ = 0, dport_ = 0;
    uint8_t tcp_flags_ = 0;
    uint32_t seq_ = 0, ack_ = 0;
    uint16_t window_ = 65535;
    std::vector<uint8_t> tcp_opts_;
    uint8_t icmp_type_ = 0, icmp_code_ = 0;
    uint32_t icmp_rest_ = 0;
    enum class Echo { none, request, reply } echo_ = Echo::none;  // type resolved by family

    std::vector<uint8_t> payload_;
};

}  // namespace edge::net
