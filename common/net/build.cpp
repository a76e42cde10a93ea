#include "net/build.hpp"

#include <stdexcept>

#include "net/checksum.hpp"
#include "net/flow.hpp"

namespace edge::net {

namespace {

void put16(std::vector<uint8_t>& v, uint16_t x) {
    v.push_back(uint8_t(x >> 8));
    v.push_back(uint8_t(x));
}
void put32(std::vector<uint8_t>& v, uint32_t x) {
    put16(v, uint16_t(x >> 16));
    put16(v, uint16_t(x));
}
void append(std::vector<uint8_t>& v, std::span<const uint8_t> b) { v.insert(v.end(), b.begin(), b.end()); }
void set16(std::vector<uint8_t>& v, std::size_t off, uint16_t x) {
    v[off] = uint8_t(x >> 8);
    v[off + 1] = uint8_t(x);
}

// TLV options (hop-by-hop, destination): header is 2 bytes + options, padded
// to a multiple of 8 with Pad1 (one byte) or PadN (type 1, length, zeros).
std::vector<uint8_t> pad_tlv_options(std::vector<uint8_t> opts) {
    std::size_t pad = (8 - (2 + opts.size()) % 8) % 8;
    if (pad == 1) {
        opts.push_back(0);
    } else if (pad >= 2) {
        opts.push_back(1);
        opts.push_back(uint8_t(pad - 2));
        opts.insert(opts.end(), pad - 2, 0);
    }
    return opts;
}

}  // namespace

PacketBuilder& PacketBuilder::eth(const Mac& src, const Mac& dst) {
    eth_ = true;
    src_mac_ = src;
    dst_mac_ = dst;
    return *this;
}

PacketBuilder& PacketBuilder::vlan(uint16_t id, uint16_t tpid, uint8_t pcp) {
    if (id > 0x0fff) throw std::invalid_argument("VLAN id > 4095");
    tags_.push_back(Tag{tpid, uint16_t(uint16_t(pcp & 7) << 13 | id)});
    return *this;
}

PacketBuilder& PacketBuilder::qinq(uint16_t outer, uint16_t inner) {
    return vlan(outer, 0x88a8).vlan(inner, 0x8100);
}

PacketBuilder& PacketBuilder::ipv4(const IpAddr& src, const IpAddr& dst) {
    if (!src.is_v4() || !dst.is_v4()) throw std::invalid_argument("ipv4() needs IPv4 addresses");
    l3_ = L3::v4;
    src_ = src;
    dst_ = dst;
    return *this;
}

PacketBuilder& PacketBuilder::ipv6(const IpAddr& src, const IpAddr& dst) {
    if (!src.is_v6() || !dst.is_v6()) throw std::invalid_argument("ipv6() needs IPv6 addresses");
    l3_ = L3::v6;
    src_ = src;
    dst_ = dst;
    return *this;
}

PacketBuilder& PacketBuilder::ttl(uint8_t v) { ttl_ = v; return *this; }
PacketBuilder& PacketBuilder::tos(uint8_t v) { tos_ = v; return *this; }
PacketBuilder& PacketBuilder::ip_id(uint16_t v) { ip_id_ = v; return *this; }
PacketBuilder& PacketBuilder::dont_fragment(bool df) { df_ = df; return *this; }

PacketBuilder& PacketBuilder::ipv4_options(std::vector<uint8_t> options) {
    while (options.size() % 4) options.push_back(0);
    if (options.size() > 40) throw std::invalid_argument("IPv4 options exceed 40 bytes");
    ip_opts_ = std::move(options);
    return *this;
}

PacketBuilder& PacketBuilder::hop_by_hop(std::vector<uint8_t> options) {
    exts_.push_back(Ext{0, pad_tlv_options(std::move(options))});
    return *this;
}

PacketBuilder& PacketBuilder::dest_options(std::vector<uint8_t> options) {
    exts_.push_back(Ext{60, pad_tlv_options(std::move(options))});
    return *this;
}

PacketBuilder& PacketBuilder::ext_header(uint8_t type, std::vector<uint8_t> body) {
    std::size_t unit = type == 51 ? 4 : 8;
    if ((2 + body.size()) % unit || 2 + body.size() < 8)
        throw std::invalid_argument("extension header size is not a multiple of its unit");
    exts_.push_back(Ext{type, std::move(body)});
    return *this;
}

PacketBuilder& PacketBuilder::fragment(uint16_t offset, bool more, uint32_t id) {
    if (offset % 8) throw std::invalid_argument("fragment offset must be a multiple of 8");
    if (l3_ == L3::v6) {
        // Body after next-header: reserved, offset|M (2 bytes), identification.
        std::vector<uint8_t> body{0};
        put16(body, uint16_t(offset | (more ? 1 : 0)));
        put32(body, id);
        exts_.push_back(Ext{44, std::move(body)});
    } else if (l3_ == L3::v4) {
        v4_frag_ = true;
        frag_off_ = offset;
        frag_more_ = more;
        ip_id_ = uint16_t(id);
    } else {
        throw std::invalid_argument("fragment() before ipv4()/ipv6()");
    }
    return *this;
}

PacketBuilder& PacketBuilder::tcp(uint16_t sport, uint16_t dport) {
    l4_ = L4::tcp;
    proto_ = kProtoTcp;
    sport_ = sport;
    dport_ = dport;
    return *this;
}

PacketBuilder& PacketBuilder::flags(uint8_t f) { tcp_flags_ = f; return *this; }
PacketBuilder& PacketBuilder::seq(uint32_t v) { seq_ = v; return *this; }
PacketBuilder& PacketBuilder::ack(uint32_t v) { ack_ = v; return *this; }
PacketBuilder& PacketBuilder::window(uint16_t v) { window_ = v; return *this; }

PacketBuilder& PacketBuilder::tcp_options(std::vector<uint8_t> options) {
    while (options.size() % 4) options.push_back(0);
    if (options.size() > 40) throw std::invalid_argument("TCP options exceed 40 bytes");
    tcp_opts_ = std::move(options);
    return *this;
}

PacketBuilder& PacketBuilder::udp(uint16_t sport, uint16_t dport) {
    l4_ = L4::udp;
    proto_ = kProtoUdp;
    sport_ = sport;
    dport_ = dport;
    return *this;
}

PacketBuilder& PacketBuilder::icmp(uint8_t type, uint8_t code, uint32_t rest) {
    l4_ = L4::icmp;
    echo_ = Echo::none;
    icmp_type_ = type;
    icmp_code_ = code;
    icmp_rest_ = rest;
    return *this;
}

PacketBuilder& PacketBuilder::echo_request(uint16_t id, uint16_t seq_no) {
    // 8 or 128: the family is only known at build().
    icmp(0, 0, uint32_t(id) << 16 | seq_no);
    echo_ = Echo::request;
    return *this;
}

PacketBuilder& PacketBuilder::echo_reply(uint16_t id, uint16_t seq_no) {
    icmp(0, 0, uint32_t(id) << 16 | seq_no);  // 0 or 129, resolved at build()
    echo_ = Echo::reply;
    return *this;
}

PacketBuilder& PacketBuilder::icmp_error(uint8_t type, uint8_t code, std::span<const uint8_t> quoted) {
    icmp(type, code, 0);
    return payload(quoted);
}

PacketBuilder& PacketBuilder::proto(uint8_t p) {
    l4_ = L4::raw;
    proto_ = p;
    return *this;
}

PacketBuilder& PacketBuilder::payload(std::span<const uint8_t> bytes) {
    payload_.assign(bytes.begin(), bytes.end());
    return *this;
}

PacketBuilder& PacketBuilder::payload(std::string_view text) {
    payload_.assign(text.begin(), text.end());
    return *this;
}

std::vector<uint8_t> PacketBuilder::build() const {
    if (l3_ == L3::none) throw std::invalid_argument("PacketBuilder: ipv4() or ipv6() required");
    const bool v4 = l3_ == L3::v4;

    // Transport segment first: the IP header needs its length.
    uint8_t proto = proto_;
    std::vector<uint8_t> seg;
    switch (l4_) {
    case L4::tcp:
        put16(seg, sport_);
        put16(seg, dport_);
        put32(seg, seq_);
        put32(seg, ack_);
        seg.push_back(uint8_t((20 + tcp_opts_.size()) / 4 << 4));
        seg.push_back(tcp_flags_);
        put16(seg, window_);
        put16(seg, 0);  // checksum
        put16(seg, 0);  // urgent pointer
        seg.insert(seg.end(), tcp_opts_.begin(), tcp_opts_.end());
        break;
    case L4::udp:
        put16(seg, sport_);
        put16(seg, dport_);
        put16(seg, uint16_t(8 + payload_.size()));
        put16(seg, 0);
        break;
    case L4::icmp: {
        proto = v4 ? kProtoIcmp : kProtoIcmpv6;
        uint8_t type = icmp_type_;
        if (echo_ == Echo::request) type = v4 ? 8 : 128;
        if (echo_ == Echo::reply) type = v4 ? 0 : 129;
        seg.push_back(type);
        seg.push_back(icmp_code_);
        put16(seg, 0);
        put32(seg, icmp_rest_);
        break;
    }
    case L4::raw:
    case L4::none:
        break;
    }
    seg.insert(seg.end(), payload_.begin(), payload_.end());
    if (seg.size() > 0xffff) throw std::invalid_argument("PacketBuilder: segment too large");

    if (l4_ == L4::tcp || l4_ == L4::udp || (l4_ == L4::icmp && !v4)) {
        uint16_t c = transport_checksum(src_, dst_, proto, seg);
        if (l4_ == L4::udp && c == 0) c = 0xffff;  // 0 means "no checksum" for UDP
        set16(seg, l4_ == L4::udp ? 6 : l4_ == L4::tcp ? 16 : 2, c);
    } else if (l4_ == L4::icmp) {
        set16(seg, 2, internet_checksum(seg));  // ICMPv4 has no pseudo-header
    }

    std::vector<uint8_t> out;
    if (eth_) {
        out.insert(out.end(), dst_mac_.begin(), dst_mac_.end());
        out.insert(out.end(), src_mac_.begin(), src_mac_.end());
        for (const Tag& t : tags_) {
            put16(out, t.tpid);
            put16(out, t.tci);
        }
        put16(out, v4 ? 0x0800 : 0x86dd);
    }
    const std::size_t l3 = out.size();
    if (v4) {
        std::size_t hlen = 20 + ip_opts_.size();
        std::size_t total = hlen + seg.size();
        if (total > 0xffff) throw std::invalid_argument("PacketBuilder: IPv4 packet too large");
        if (!exts_.empty()) throw std::invalid_argument("PacketBuilder: IPv6 extension headers on IPv4");
        out.push_back(uint8_t(0x40 | hlen / 4));
        out.push_back(tos_);
        put16(out, uint16_t(total));
        put16(out, ip_id_);
        uint16_t ff = uint16_t(frag_off_ / 8);
        if (df_) ff |= 0x4000;
        if (v4_frag_ && frag_more_) ff |= 0x2000;
        put16(out, ff);
        out.push_back(ttl_);
        out.push_back(proto);
        put16(out, 0);
        append(out, src_.bytes());
        append(out, dst_.bytes());
        out.insert(out.end(), ip_opts_.begin(), ip_opts_.end());
        set16(out, l3 + 10, internet_checksum(std::span<const uint8_t>(out).subspan(l3, hlen)));
    } else {
        std::vector<uint8_t> ext;
        for (std::size_t i = 0; i < exts_.size(); ++i) {
            const Ext& e = exts_[i];
            ext.push_back(i + 1 < exts_.size() ? exts_[i + 1].type : proto);
            if (e.type == 51) ext.push_back(uint8_t((2 + e.body.size()) / 4 - 2));  // AH: 4-byte units
            else if (e.type != 44) ext.push_back(uint8_t((2 + e.body.size()) / 8 - 1));
            ext.insert(ext.end(), e.body.begin(), e.body.end());
        }
        std::size_t plen = ext.size() + seg.size();
        if (plen > 0xffff) throw std::invalid_argument("PacketBuilder: IPv6 payload too large");
        put32(out, 0x60000000u | uint32_t(tos_) << 20);
        put16(out, uint16_t(plen));
        out.push_back(exts_.empty() ? proto : exts_.front().type);
        out.push_back(ttl_);
        append(out, src_.bytes());
        append(out, dst_.bytes());
        out.insert(out.end(), ext.begin(), ext.end());
    }
    out.insert(out.end(), seg.begin(), seg.end());
    return out;
}

}  // namespace edge::net
