#include "net/packet.hpp"

#include <algorithm>
#include <cstring>

#include "net/checksum.hpp"
#include "net/flow.hpp"

namespace edge::net {

namespace {

using Bytes = std::span<const uint8_t>;

constexpr uint16_t kEthIpv4 = 0x0800;
constexpr uint16_t kEthIpv6 = 0x86dd;
constexpr uint16_t kEthVlan = 0x8100;
constexpr uint16_t kEthQinq = 0x88a8;
constexpr uint16_t kEthQinqOld = 0x9100;  // pre-standard 802.1ad TPID, still seen

constexpr int kMaxExtHeaders = 8;  // bounds the walk; real stacks use 1-3

// Callers check bounds first; these only assemble big-endian values.
uint16_t be16(Bytes d, std::size_t off) { return uint16_t(d[off] << 8 | d[off + 1]); }
uint32_t be32(Bytes d, std::size_t off) { return uint32_t(be16(d, off)) << 16 | be16(d, off + 2); }

IpAddr addr4(Bytes d, std::size_t off) { return IpAddr::v4(std::array<uint8_t, 4>{d[off], d[off + 1], d[off + 2], d[off + 3]}); }
IpAddr addr6(Bytes d, std::size_t off) {
    std::array<uint8_t, 16> a{};
    std::copy_n(d.begin() + std::ptrdiff_t(off), 16, a.begin());
    return IpAddr::v6(a);
}

// Two limits for every header inside an IP packet: the end the IP header
// declares (crossing it is malformed) and the end of the capture, never
// past the declared end (crossing it is truncation).
struct Bounds {
    std::size_t decl_end;
    std::size_t cap_end;
    bool checksums = true;  // verify the L4 checksum (ParseOptions)

    ParseStatus fits(std::size_t end) const {
        if (end > decl_end) return ParseStatus::malformed;
        if (end > cap_end) return ParseStatus::truncated;
        return ParseStatus::ok;
    }
};

Packet& fail(Packet& p, ParseStatus s, const char* why) {
    p.status = s;
    p.reason = why;
    return p;
}

struct ExtWalk {
    ParseStatus status = ParseStatus::ok;
    const char* reason = "";
    std::size_t pos = 0;    // first byte after the last header walked
    uint8_t next = 0;       // upper-layer protocol (or 50/59/unknown where the walk stopped)
    bool fragment = false;  // a fragment header was seen
    bool more = false;
    uint16_t offset = 0;  // bytes
    uint32_t id = 0;
    bool non_first = false;  // offset != 0: what follows is not a header
};

// Walks hop-by-hop (0), routing (43), fragment (44), destination options
// (60) and AH (51). Stops at anything else: ESP (50) encrypts the rest and
// 59 means nothing follows, so both simply end the walk.
ExtWalk walk_ipv6_ext(Bytes d, std::size_t pos, uint8_t next, const Bounds& b) {
    ExtWalk w;
    for (int i = 0;; ++i) {
        bool generic = next == 0 || next == 43 || next == 60 || next == 51;
        if (!generic && next != 44) break;
        if (i >= kMaxExtHeaders) {
            w.status = ParseStatus::malformed;
            w.reason = "too many IPv6 extension headers";
            break;
        }
        if (next == 0 && i != 0) {
            w.status = ParseStatus::malformed;
            w.reason = "IPv6 hop-by-hop header not first";
            break;
        }
        std::size_t len = 8;
        if (generic) {
            if (auto s = b.fits(pos + 2); s != ParseStatus::ok) {
                w.status = s;
                w.reason = "IPv6 extension header truncated";
                break;
            }
            len = next == 51 ? (std::size_t(d[pos + 1]) + 2) * 4 : (std::size_t(d[pos + 1]) + 1) * 8;
        }
        if (auto s = b.fits(pos + len); s != ParseStatus::ok) {
            w.status = s;
            w.reason = s == ParseStatus::malformed ? "IPv6 extension header exceeds payload length"
                                                   : "IPv6 extension header truncated";
            break;
        }
        uint8_t this_hdr = next;
        next = d[pos];
        if (this_hdr == 44) {
            uint16_t fo = be16(d, pos + 2);
            w.fragment = true;
            w.offset = uint16_t(fo & 0xfff8);
            w.more = fo & 1;
            w.id = be32(d, pos + 4);
        }
        pos += len;
        if (this_hdr == 44 && w.offset != 0) {
            w.non_first = true;
            break;
        }
    }
    w.pos = pos;
    w.next = next;
    return w;
}

bool is_icmp_error(uint8_t proto, uint8_t type) {
    if (proto == kProtoIcmp) return type == 3 || type == 11 || type == 12;
    return type >= 1 && type <= 4;
}

// The packet an ICMP error quotes: IP header (+ IPv6 extension headers) and
// at least the first 8 bytes of L4 (ports when TCP/UDP/SCTP). The quoted IP
// length usually exceeds the quote, so only the quote's end bounds it.
bool parse_inner(Bytes d, std::size_t pos, std::size_t end, int want_version, edge_flow_key& out) {
    if (pos >= end || d[pos] >> 4 != want_version) return false;
    IpAddr s, t;
    uint8_t proto = 0;
    std::size_t l4 = 0;
    bool ports = true;
    if (want_version == 4) {
        if (pos + 20 > end) return false;
        std::size_t ihl = std::size_t(d[pos] & 0x0f) * 4;
        if (ihl < 20 || pos + ihl > end) return false;
        proto = d[pos + 9];
        s = addr4(d, pos + 12);
        t = addr4(d, pos + 16);
        ports = (be16(d, pos + 6) & 0x1fff) == 0;
        l4 = pos + ihl;
    } else {
        if (pos + 40 > end) return false;
        s = addr6(d, pos + 8);
        t = addr6(d, pos + 24);
        auto w = walk_ipv6_ext(d, pos + 40, d[pos + 6], Bounds{end, end});
        if (w.status != ParseStatus::ok) return false;
        proto = w.next;
        ports = !w.non_first;
        l4 = w.pos;
    }
    uint16_t sp = 0, dp = 0;
    if (ports && (proto == kProtoTcp || proto == kProtoUdp || proto == 132) && l4 + 4 <= end) {
        sp = be16(d, l4);
        dp = be16(d, l4 + 2);
    }
    out = make_flow_key(s, sp, t, dp, proto);
    return true;
}

void verify_l4_checksum(Packet& p, Bytes d, std::size_t end) {
    if (p.snap_truncated || p.fragment || !p.has_l4) return;
    Bytes seg = d.subspan(p.l4_off, end - p.l4_off);
    p.l4_checksum_checked = true;
    if (p.proto == kProtoIcmp) {
        p.l4_checksum_ok = internet_checksum(seg) == 0;
    } else if (p.proto == kProtoUdp && p.ip_version == 4 && be16(d, p.l4_off + 6) == 0) {
        p.l4_checksum_ok = true;  // IPv4 UDP may omit the checksum
    } else {
        p.l4_checksum_ok = transport_checksum(p.src, p.dst, p.proto, seg) == 0;
    }
}

// TCP/UDP/ICMP/ICMPv6 at pos; other protocols only get payload bounds.
void parse_l4(Packet& p, Bytes d, std::size_t pos, const Bounds& b) {
    p.l4_off = pos;
    auto need = [&](std::size_t end, const char* what) {
        auto s = b.fits(end);
        if (s != ParseStatus::ok) fail(p, s, what);
        return s == ParseStatus::ok;
    };
    std::size_t end = b.decl_end;  // end of this L4 message as declared
    switch (p.proto) {
    case kProtoTcp: {
        if (!need(pos + 20, "TCP header truncated")) return;
        std::size_t doff = std::size_t(d[pos + 12] >> 4) * 4;
        if (doff < 20) {
            fail(p, ParseStatus::malformed, "TCP data offset < 5");
            return;
        }
        if (!need(pos + doff, "TCP options truncated")) return;
        p.sport = be16(d, pos);
        p.dport = be16(d, pos + 2);
        p.tcp_seq = be32(d, pos + 4);
        p.tcp_ack = be32(d, pos + 8);
        p.tcp_flags = d[pos + 13];
        p.tcp_window = be16(d, pos + 14);
        p.l4_len = doff;
        break;
    }
    case kProtoUdp: {
        if (!need(pos + 8, "UDP header truncated")) return;
        p.udp_len = be16(d, pos + 4);
        if (p.udp_len < 8) {
            fail(p, ParseStatus::malformed, "UDP length < 8");
            return;
        }
        if (pos + p.udp_len > b.decl_end) {
            fail(p, ParseStatus::malformed, "UDP length exceeds IP payload");
            return;
        }
        p.sport = be16(d, pos);
        p.dport = be16(d, pos + 2);
        p.l4_len = 8;
        end = pos + p.udp_len;
        break;
    }
    case kProtoIcmp:
    case kProtoIcmpv6: {
        if (!need(pos + 8, "ICMP header truncated")) return;
        p.icmp_type = d[pos];
        p.icmp_code = d[pos + 1];
        p.l4_len = 8;
        if (is_icmp_error(p.proto, p.icmp_type))
            p.has_inner = parse_inner(d, pos + 8, b.cap_end, p.ip_version, p.inner_key);
        break;
    }
    default:
        p.l4_len = 0;
        p.payload_off = pos;
        p.payload_len = b.cap_end - pos;
        return;
    }
    p.has_l4 = true;
    p.payload_off = pos + p.l4_len;
    p.payload_len = std::min(end, b.cap_end) - p.payload_off;
    if (b.checksums) verify_l4_checksum(p, d, end);
}

void parse_ipv4(Packet& p, Bytes d, std::size_t off, bool checksums) {
    p.l3_off = off;
    if (d.size() - off < 20) {
        fail(p, ParseStatus::truncated, "IPv4 header truncated");
        return;
    }
    if (d[off] >> 4 != 4) {
        fail(p, ParseStatus::malformed, "IPv4 version field is not 4");
        return;
    }
    std::size_t ihl = std::size_t(d[off] & 0x0f) * 4;
    if (ihl < 20) {
        fail(p, ParseStatus::malformed, "IPv4 IHL < 5");
        return;
    }
    if (d.size() - off < ihl) {
        fail(p, ParseStatus::truncated, "IPv4 options truncated");
        return;
    }
    std::size_t total = be16(d, off + 2);
    if (total < ihl) {
        fail(p, ParseStatus::malformed, "IPv4 total length < header length");
        return;
    }
    Bounds b{off + total, std::min(off + total, d.size()), checksums};
    p.snap_truncated = d.size() < b.decl_end;
    p.ip_version = 4;
    p.l3_len = ihl;
    p.ip_options = ihl > 20;
    p.ttl = d[off + 8];
    p.proto = d[off + 9];
    p.src = addr4(d, off + 12);
    p.dst = addr4(d, off + 16);
    if (checksums) {
        p.ip_checksum_checked = true;
        p.ip_checksum_ok = internet_checksum(d.subspan(off, ihl)) == 0;
    }
    uint16_t ff = be16(d, off + 6);
    p.frag_id = be16(d, off + 4);
    p.dont_fragment = ff & 0x4000;
    p.more_fragments = ff & 0x2000;
    p.frag_offset = uint16_t((ff & 0x1fff) * 8);
    p.fragment = p.more_fragments || p.frag_offset != 0;
    if (ff & 0x8000) p.reason = "IPv4 reserved flag set";
    if (p.frag_offset != 0) {
        // Not the first fragment: the bytes are the middle of some L4 message.
        p.l4_off = p.payload_off = off + ihl;
        p.payload_len = b.cap_end - p.payload_off;
        p.reason = "non-first fragment";
        return;
    }
    parse_l4(p, d, off + ihl, b);
}

void parse_ipv6(Packet& p, Bytes d, std::size_t off, bool checksums) {
    p.l3_off = off;
    if (d.size() - off < 40) {
        fail(p, ParseStatus::truncated, "IPv6 header truncated");
        return;
    }
    if (d[off] >> 4 != 6) {
        fail(p, ParseStatus::malformed, "IPv6 version field is not 6");
        return;
    }
    // A zero payload length would mean a jumbogram; those never appear on
    // the links we capture from, so it is taken literally (empty payload).
    std::size_t decl = off + 40 + be16(d, off + 4);
    Bounds b{decl, std::min(decl, d.size()), checksums};
    p.snap_truncated = d.size() < decl;
    p.ip_version = 6;
    p.ttl = d[off + 7];
    p.src = addr6(d, off + 8);
    p.dst = addr6(d, off + 24);
    p.proto = d[off + 6];
    auto w = walk_ipv6_ext(d, off + 40, d[off + 6], b);
    p.proto = w.next;
    p.l3_len = w.pos - off;
    p.fragment = w.fragment;
    p.more_fragments = w.more;
    p.frag_offset = w.offset;
    p.frag_id = w.id;
    if (w.status != ParseStatus::ok) {
        fail(p, w.status, w.reason);
        return;
    }
    if (w.non_first || w.next == 50 || w.next == 59) {
        p.l4_off = p.payload_off = w.pos;
        p.payload_len = b.cap_end - w.pos;
        p.reason = w.non_first ? "non-first fragment" : w.next == 50 ? "ESP" : "no next header";
        return;
    }
    parse_l4(p, d, w.pos, b);
}

}  // namespace

std::optional<LinkType> link_from_dlt(int dlt) {
    switch (dlt) {
    case 1: return LinkType::ethernet;
    case 12:
    case 101:
    case 228:
    case 229: return LinkType::raw_ip;
    case 113: return LinkType::linux_sll;
    case 276: return LinkType::linux_sll2;
    case 0:
    case 108: return LinkType::null_loopback;
    default: return std::nullopt;
    }
}

const char* to_string(ParseStatus s) noexcept {
    switch (s) {
    case ParseStatus::ok: return "ok";
    case ParseStatus::truncated: return "truncated";
    case ParseStatus::malformed: return "malformed";
    case ParseStatus::unsupported_link: return "unsupported_link";
    case ParseStatus::not_ip: return "not_ip";
    }
    return "?";
}

namespace {
// parse_packet's body, filling a Packet the caller owns: a function returning `fail(p, ...)`
// (a reference) copies the ~200-byte Packet on every return instead of building it in place.
void parse_into(Packet& p, std::span<const uint8_t> data, LinkType link, const ParseOptions& opts) {
    Bytes d = data;
    std::size_t off = 0;
    uint16_t type = 0;
    switch (link) {
    case LinkType::ethernet:
        if (d.size() < 14) return (void)fail(p, ParseStatus::truncated, "Ethernet header truncated");
        type = be16(d, 12);
        off = 14;
        break;
    case LinkType::linux_sll:
        if (d.size() < 16) return (void)fail(p, ParseStatus::truncated, "Linux SLL header truncated");
        type = be16(d, 14);
        off = 16;
        break;
    case LinkType::linux_sll2:
        if (d.size() < 20) return (void)fail(p, ParseStatus::truncated, "Linux SLL2 header truncated");
        type = be16(d, 0);
        off = 20;
        break;
    case LinkType::null_loopback: {
        if (d.size() < 4) return (void)fail(p, ParseStatus::truncated, "loopback header truncated");
        // DLT_NULL stores the AF_ value in the writer's byte order, DLT_LOOP
        // big-endian; AF values are small, so whichever order gives a small
        // number is the right one.
        uint32_t le = uint32_t(d[0]) | uint32_t(d[1]) << 8 | uint32_t(d[2]) << 16 | uint32_t(d[3]) << 24;
        uint32_t af = le <= 0xffff ? le : be32(d, 0);
        off = 4;
        p.l2_len = 4;
        if (af == 2) type = kEthIpv4;
        else if (af == 10 || af == 24 || af == 28 || af == 30) type = kEthIpv6;  // Linux, BSDs, macOS
        else return (void)fail(p, ParseStatus::not_ip, "loopback family is not IP");
        break;
    }
    case LinkType::raw_ip:
        if (d.empty()) return (void)fail(p, ParseStatus::truncated, "empty packet");
        if (d[0] >> 4 == 4) type = kEthIpv4;
        else if (d[0] >> 4 == 6) type = kEthIpv6;
        else return (void)fail(p, ParseStatus::malformed, "IP version is neither 4 nor 6");
        break;
    default:
        return (void)fail(p, ParseStatus::unsupported_link, "unsupported link type");
    }
    if (link == LinkType::ethernet || link == LinkType::linux_sll || link == LinkType::linux_sll2) {
        while (type == kEthVlan || type == kEthQinq || type == kEthQinqOld) {
            if (p.vlan_count == Packet::kMaxVlans) return (void)fail(p, ParseStatus::malformed, "too many VLAN tags");
            if (d.size() < off + 4) return (void)fail(p, ParseStatus::truncated, "VLAN tag truncated");
            p.vlan_ids[p.vlan_count++] = be16(d, off) & 0x0fff;
            type = be16(d, off + 2);
            off += 4;
        }
    }
    p.l2_len = off;
    p.ethertype = type;
    if (type == kEthIpv4) parse_ipv4(p, d, off, opts.checksums);
    else if (type == kEthIpv6) parse_ipv6(p, d, off, opts.checksums);
    else return (void)fail(p, ParseStatus::not_ip, "not IPv4 or IPv6");

    if (p.ip_version != 0) {
        // Filled from the header bytes directly (not through IpAddr): this is the
        // per-packet hot path of every capture reader.
        edge_flow_key& k = p.key;
        const bool v4 = p.ip_version == 4;
        const std::size_t n = v4 ? 4 : 16;
        std::memcpy(k.src, d.data() + p.l3_off + (v4 ? 12 : 8), n);
        std::memcpy(k.dst, d.data() + p.l3_off + (v4 ? 16 : 24), n);
        k.sport = __builtin_bswap16(p.sport);  // wire order (little-endian hosts only, flow.h)
        k.dport = __builtin_bswap16(p.dport);
        k.proto = p.proto;
        k.family = v4 ? EDGE_FAMILY_V4 : EDGE_FAMILY_V6;
    }
}

}  // namespace

Packet parse_packet(std::span<const uint8_t> data, LinkType link, const ParseOptions& opts) {
    Packet p;
    parse_into(p, data, link, opts);
    return p;
}

}  // namespace edge::net
