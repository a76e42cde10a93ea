#include "mrt/mrt.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace edge::mrt {

namespace {

// Bounded big-endian reader: reads past the end yield zeros and set `short_`.
struct Cur {
    const uint8_t* p;
    size_t n;
    size_t i = 0;
    bool short_ = false;
    Cur(std::span<const uint8_t> s) : p(s.data()), n(s.size()) {}
    size_t left() const { return n - i; }
    uint8_t u8() {
        if (i + 1 > n) {
            short_ = true;
            i = n;
            return 0;
        }
        return p[i++];
    }
    uint16_t u16() {
        if (i + 2 > n) {
            short_ = true;
            i = n;
            return 0;
        }
        uint16_t v = uint16_t(p[i] << 8 | p[i + 1]);
        i += 2;
        return v;
    }
    uint32_t u32() {
        if (i + 4 > n) {
            short_ = true;
            i = n;
            return 0;
        }
        uint32_t v = uint32_t(p[i]) << 24 | uint32_t(p[i + 1]) << 16 | uint32_t(p[i + 2]) << 8 | p[i + 3];
        i += 4;
        return v;
    }
    uint32_t asn(uint8_t len) { return len == 4 ? u32() : u16(); }
    // Copies up to `k` bytes (zero-filling what is missing).
    void get(uint8_t* dst, size_t k) {
        size_t m = std::min(k, left());
        if (m) std::memcpy(dst, p + i, m);
        if (m < k) {
            std::memset(dst + m, 0, k - m);
            short_ = true;
        }
        i += m;
    }
    std::span<const uint8_t> take(size_t k) {
        size_t m = std::min(k, left());
        if (m < k) short_ = true;
        std::span<const uint8_t> s(p + i, m);
        i += m;
        return s;
    }
};

constexpr char digits2[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";
// Decimal digits of v at o; returns the end. Two-digit pairs from a table, the halves of
// longer numbers converted independently (no long division chain).
inline char* put_2(char* o, uint32_t v) {  // exactly two digits, v < 100
    std::memcpy(o, digits2 + 2 * v, 2);
    return o + 2;
}
inline char* put_4(char* o, uint32_t v) {  // exactly four digits, v < 10000
    put_2(o, v / 100);
    return put_2(o + 2, v % 100);
}
inline char* put_upto4(char* o, uint32_t v) {  // v < 10000, no leading zeros
    if (v < 10) {
        *o = char('0' + v);
        return o + 1;
    }
    if (v < 100) return put_2(o, v);
    if (v < 1000) {
        *o = char('0' + v / 100);
        return put_2(o + 1, v % 100);
    }
    return put_4(o, v);
}
inline char* put_u32(char* o, uint32_t v) {
    if (v < 10000) return put_upto4(o, v);
    if (v < 100000000) {
        o = put_upto4(o, v / 10000);
        return put_4(o, v % 10000);
    }
    uint32_t top = v / 100000000, rest = v % 100000000;
    o = put_upto4(o, top);
    o = put_4(o, rest / 10000);
    return put_4(o, rest % 10000);
}
inline void app_u32(std::string& s, uint32_t v) {
    char b[12];
    s.append(b, put_u32(b, v) - b);
}
inline void app_i32(std::string& s, int32_t v) {
    if (v < 0) {
        s.push_back('-');
        app_u32(s, uint32_t(0) - uint32_t(v));
    } else {
        app_u32(s, uint32_t(v));
    }
}
inline void app_v4(std::string& s, const uint8_t* a) {
    char b[16];
    s.append(b, format_ipv4(a, b));
}
inline void app_v6(std::string& s, const uint8_t* a) {
    char b[64];
    s.append(b, format_ipv6(a, b));
}

}  // namespace

namespace {
struct Octets {
    char text[256][4];
    uint8_t len[256];
    Octets() {
        for (int i = 0; i < 256; ++i) {
            char* e = put_u32(text[i], uint32_t(i));
            len[i] = uint8_t(e - text[i]);
        }
    }
};
const Octets octets;
}  // namespace

namespace {
[[gnu::always_inline]] inline size_t ipv4_text(const uint8_t* a, char* out) {
    // Every load before the first store: a store through char* may alias the address and
    // the table, which would otherwise be read again after each octet (a serial chain).
    const uint8_t a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
    const size_t l0 = octets.len[a0], l1 = octets.len[a1], l2 = octets.len[a2], l3 = octets.len[a3];
    uint32_t t0, t1, t2, t3;
    std::memcpy(&t0, octets.text[a0], 4);
    std::memcpy(&t1, octets.text[a1], 4);
    std::memcpy(&t2, octets.text[a2], 4);
    std::memcpy(&t3, octets.text[a3], 4);
    char* o = out;
    std::memcpy(o, &t0, 4);
    o += l0;
    *o++ = '.';
    std::memcpy(o, &t1, 4);
    o += l1;
    *o++ = '.';
    std::memcpy(o, &t2, 4);
    o += l2;
    *o++ = '.';
    std::memcpy(o, &t3, 4);
    return size_t(o + l3 - out);
}
}  // namespace
size_t format_ipv4(const uint8_t* a, char* out) { return ipv4_text(a, out); }
size_t format_ipv6(const uint8_t* a, char* out) {
    if (!inet_ntop(AF_INET6, a, out, 64)) {
        out[0] = 0;
        return 0;
    }
    return std::strlen(out);
}

std::string Addr::to_string() const {
    char buf[64];
    size_t n = v6 ? format_ipv6(b.data(), buf) : format_ipv4(b.data(), buf);
    return std::string(buf, n);
}

size_t parse_header(std::span<const uint8_t> buf, Header& h) {
    if (buf.size() < 12) return 0;
    Cur c(buf);
    h.timestamp = c.u32();
    h.type = c.u16();
    h.subtype = c.u16();
    h.length = c.u32();
    h.microseconds = 0;
    h.header_len = 12;
    if (h.type == type_bgp4mp_et) {
        if (buf.size() < 16) return 0;
        h.microseconds = c.u32();
        h.header_len = 16;
        h.length = h.length >= 4 ? h.length - 4 : 0;
    }
    return h.header_len;
}

std::string type_name(uint16_t type) {
    switch (type) {
    case type_table_dump: return "TABLE_DUMP";
    case type_table_dump_v2: return "TABLE_DUMP_V2";
    case type_bgp4mp: return "BGP4MP";
    case type_bgp4mp_et: return "BGP4MP_ET";
    case 11: return "OSPFv2";
    case 32: return "ISIS";
    case 48: return "OSPFv3";
    }
    return fmt::format("type-{}", type);
}

std::string subtype_name(uint16_t type, uint16_t st) {
    if (type == type_table_dump) return st == 1 ? "AFI_IPv4" : st == 2 ? "AFI_IPv6" : fmt::format("subtype-{}", st);
    if (type == type_table_dump_v2) {
        static const char* n[] = {"",
                                  "PEER_INDEX_TABLE",
                                  "RIB_IPV4_UNICAST",
                                  "RIB_IPV4_MULTICAST",
                                  "RIB_IPV6_UNICAST",
                                  "RIB_IPV6_MULTICAST",
                                  "RIB_GENERIC",
                                  "GEO_PEER_TABLE",
                                  "RIB_IPV4_UNICAST_ADDPATH",
                                  "RIB_IPV4_MULTICAST_ADDPATH",
                                  "RIB_IPV6_UNICAST_ADDPATH",
                                  "RIB_IPV6_MULTICAST_ADDPATH",
                                  "RIB_GENERIC_ADDPATH"};
        if (st >= 1 && st <= 12) return n[st];
    }
    if (type == type_bgp4mp || type == type_bgp4mp_et) {
        static const char* n[] = {"STATE_CHANGE",         "MESSAGE",          "", "", "MESSAGE_AS4", "STATE_CHANGE_AS4",
                                  "MESSAGE_LOCAL",        "MESSAGE_AS4_LOCAL", "MESSAGE_ADDPATH", "MESSAGE_AS4_ADDPATH",
                                  "MESSAGE_LOCAL_ADDPATH", "MESSAGE_AS4_LOCAL_ADDPATH"};
        if (st <= 11 && n[st][0]) return n[st];
    }
    return fmt::format("subtype-{}", st);
}

const char* state_name(uint16_t s) {
    static const char* n[] = {"unknown", "idle", "connect", "active", "open_sent", "open_confirm", "established"};
    return s <= 6 ? n[s] : "unknown";
}

// ---- BGP4MP ------------------------------------------------------------------------------
bool parse_bgp4mp(const Header& h, std::span<const uint8_t> body, Bgp4mp& m, std::string& why) {
    using namespace bgp4mp;
    uint16_t st = h.subtype;
    m = Bgp4mp{};
    m.subtype = st;
    switch (st) {
    case state_change: m.state = true; break;
    case state_change_as4: m.state = m.as4 = true; break;
    case message: break;
    case message_as4: m.as4 = true; break;
    case message_local: m.local = true; break;
    case message_as4_local: m.as4 = m.local = true; break;
    case message_addpath: m.addpath = true; break;
    case message_as4_addpath: m.as4 = m.addpath = true; break;
    case message_local_addpath: m.local = m.addpath = true; break;
    case message_as4_local_addpath: m.as4 = m.local = m.addpath = true; break;
    default: why = fmt::format("unsupported BGP4MP subtype {}", st); return false;
    }
    Cur c(body);
    uint8_t al = m.as4 ? 4 : 2;
    m.peer_as = c.asn(al);
    m.local_as = c.asn(al);
    if (m.state && !m.as4 && body.size() == 8) {  // old Zebra dumps without interface and addresses
        m.old_state = c.u16();
        m.new_state = c.u16();
        return true;
    }
    m.ifindex = c.u16();
    m.afi = c.u16();
    size_t alen;
    if (m.afi == bgp::afi_ipv4) alen = 4;
    else if (m.afi == bgp::afi_ipv6) alen = 16;
    else {
        why = fmt::format("BGP4MP record with unsupported address family {}", m.afi);
        return false;
    }
    m.peer_ip.v6 = m.local_ip.v6 = alen == 16;
    c.get(m.peer_ip.b.data(), alen);
    c.get(m.local_ip.b.data(), alen);
    if (m.state) {
        m.old_state = c.u16();
        m.new_state = c.u16();
        if (c.short_ || c.left() != 0) {
            why = fmt::format("BGP4MP STATE_CHANGE record of {} bytes has the wrong length", body.size());
            return false;
        }
        return true;
    }
    if (c.short_) {
        why = "BGP4MP record shorter than its header";
        return false;
    }
    m.msg = body.subspan(c.i);
    if (m.msg.size() < bgp::header_size) {
        why = fmt::format("BGP4MP message of {} bytes is shorter than a BGP header", m.msg.size());
        return false;
    }
    for (size_t k = 0; k < 16; ++k)
        if (m.msg[k] != 0xff) {
            why = "BGP message with a bad marker";
            return false;
        }
    return true;
}

// ---- TABLE_DUMP_V2 ------------------------------------------------------------------------
bool parse_peer_index(std::span<const uint8_t> body, PeerIndex& out, std::string& why) {
    Cur c(body);
    out = PeerIndex{};
    out.collector_id = c.u32();
    uint16_t vl = c.u16();
    auto v = c.take(vl);
    out.view.assign(v.begin(), v.end());
    uint16_t n = c.u16();
    out.peers.reserve(n);
    for (uint16_t k = 0; k < n; ++k) {
        uint8_t t = c.u8();
        Peer p;
        p.bgp_id = c.u32();
        p.ip.v6 = t & 1;
        c.get(p.ip.b.data(), p.ip.v6 ? 16 : 4);
        p.asn = c.asn(t & 2 ? 4 : 2);
        if (c.short_) break;
        out.peers.push_back(p);
    }
    if (c.short_) {
        why = fmt::format("PEER_INDEX_TABLE cut short after {} of {} peers", out.peers.size(), n);
        return false;
    }
    return true;
}

bool parse_rib(uint16_t st, std::span<const uint8_t> body, Rib& r, std::string& why) {
    using namespace td2;
    r.entries.clear();
    switch (st) {
    case rib_ipv4_unicast: r.afi = 1, r.safi = 1, r.addpath = false; break;
    case rib_ipv4_multicast: r.afi = 1, r.safi = 2, r.addpath = false; break;
    case rib_ipv6_unicast: r.afi = 2, r.safi = 1, r.addpath = false; break;
    case rib_ipv6_multicast: r.afi = 2, r.safi = 2, r.addpath = false; break;
    case rib_ipv4_unicast_addpath: r.afi = 1, r.safi = 1, r.addpath = true; break;
    case rib_ipv4_multicast_addpath: r.afi = 1, r.safi = 2, r.addpath = true; break;
    case rib_ipv6_unicast_addpath: r.afi = 2, r.safi = 1, r.addpath = true; break;
    case rib_ipv6_multicast_addpath: r.afi = 2, r.safi = 2, r.addpath = true; break;
    default: why = fmt::format("unsupported TABLE_DUMP_V2 subtype {}", st); return false;
    }
    Cur c(body);
    r.sequence = c.u32();
    r.prefix_len = c.u8();
    unsigned maxlen = r.afi == 1 ? 32 : 128;
    if (r.prefix_len > maxlen) {
        why = fmt::format("RIB record with prefix length {}", r.prefix_len);
        return false;
    }
    r.prefix.fill(0);
    c.get(r.prefix.data(), (r.prefix_len + 7) / 8);
    uint16_t n = c.u16();
    for (uint16_t k = 0; k < n && !c.short_; ++k) {
        RibEntry e;
        e.peer_index = c.u16();
        e.originated = c.u32();
        if (r.addpath) e.path_id = c.u32();
        uint16_t al = c.u16();
        e.attrs = c.take(al);
        if (c.short_) break;
        r.entries.push_back(e);
    }
    if (c.short_) {
        why = fmt::format("RIB record cut short after {} of {} entries", r.entries.size(), n);
        return false;
    }
    return true;
}

bool parse_table_dump(uint16_t st, std::span<const uint8_t> body, TableDump& t, std::string& why) {
    if (st < 1 || st > 4) {
        why = fmt::format("unsupported TABLE_DUMP subtype {}", st);
        return false;
    }
    t = TableDump{};
    t.v6 = st == 2 || st == 4;
    t.as4 = st >= 3;
    size_t al = t.v6 ? 16 : 4;
    Cur c(body);
    t.view = c.u16();
    t.sequence = c.u16();
    t.prefix.v6 = t.peer_ip.v6 = t.v6;
    c.get(t.prefix.b.data(), al);
    t.prefix_len = c.u8();
    t.status = c.u8();
    t.originated = c.u32();
    c.get(t.peer_ip.b.data(), al);
    t.peer_as = c.asn(t.as4 ? 4 : 2);
    uint16_t n = c.u16();
    t.attrs = c.take(n);
    if (c.short_) {
        why = "TABLE_DUMP record cut short";
        return false;
    }
    return true;
}

// ---- attributes --------------------------------------------------------------------------
void Attrs::reset() {
    present = 0;
    origin = -1;
    segments.clear();
    asns.clear();
    as_path_error = false;
    segments4.clear();
    asns4.clear();
    as4_path_error = false;
    asn_len = 4;
    next_hop = {255, 255, 255, 255};
    med = local_pref = 0;
    aggregator_as = 0;
    aggregator_addr = {255, 255, 255, 255};
    as4_aggregator_as = 0;
    as4_aggregator_addr = {255, 255, 255, 255};
    communities.clear();
    large_communities.clear();
    ext_communities.clear();
    originator_id = 0;
    cluster_list.clear();
    unknown.clear();
    if (mp_touched) {
        for (auto& row : reach)
            for (auto& m : row) {
                m.present = false;
                m.prefixes.clear();
                m.nh_len = 0;
            }
        for (auto& row : unreach)
            for (auto& m : row) {
                m.present = false;
                m.prefixes.clear();
            }
        mp_touched = false;
    }
    other_families = 0;
    warnings.clear();
}

namespace {
bool parse_prefixes(std::span<const uint8_t> p, bool addpath, std::vector<Prefix>& out, std::vector<std::string>* w, unsigned maxlen) {
    Cur c(p);
    while (c.left()) {
        Prefix x;
        if (addpath) {
            if (c.left() < 4) {
                if (w) w->push_back("NLRI cut short inside a path id");
                return false;
            }
            x.path_id = c.u32();
        }
        x.len = c.u8();
        size_t nb = (x.len + 7u) / 8u;
        if (x.len > maxlen) {
            if (w) w->push_back(fmt::format("NLRI with prefix length {}", x.len));
            return false;
        }
        if (c.left() < nb) {
            if (w) w->push_back(fmt::format("NLRI cut short: prefix of length {} needs {} bytes, {} left", x.len, nb, c.left()));
            return false;
        }
        c.get(x.addr.data(), nb);
        out.push_back(x);
    }
    return true;
}
}  // namespace
bool parse_prefixes(std::span<const uint8_t> p, bool addpath, std::vector<Prefix>& out, std::vector<std::string>* w) {
    return parse_prefixes(p, addpath, out, w, 128u);
}

namespace {

// AS_PATH / AS4_PATH segments; false on a bad segment type or a length overrun.
bool parse_segments(std::span<const uint8_t> v, uint8_t asn_len, std::vector<Segment>& segs, std::vector<uint32_t>& asns) {
    Cur c(v);
    while (c.left()) {
        if (c.left() < 2) return false;
        Segment s;
        s.type = c.u8();
        uint8_t n = c.u8();
        if (s.type < bgp::as_set || s.type > bgp::as_confed_set) return false;
        if (c.left() < size_t(n) * asn_len) return false;
        s.start = uint32_t(asns.size());
        s.count = n;
        for (unsigned k = 0; k < n; ++k) asns.push_back(c.asn(asn_len));
        segs.push_back(s);
    }
    return true;
}

void parse_mp_reach(std::span<const uint8_t> v, const AttrOptions& o, Attrs& a) {
    if (v.empty()) {
        a.warnings.push_back("empty MP_REACH_NLRI");
        return;
    }
    Cur c(v);
    if (v[0] != 0) {  // RFC 6396 4.3.4: TABLE_DUMP_V2 keeps only the next hop
        MpNlri& m = a.reach[2][1];
        m.present = true;
        m.nh_len = c.u8();
        c.get(m.nh.data(), 16);
        if (m.nh_len == 32) c.get(m.nh_local.data(), 16);
        return;
    }
    uint16_t afi = c.u16();
    uint8_t safi = c.u8();
    if (afi < 1 || afi > 2 || safi < 1 || safi > 3) {
        ++a.other_families;
        return;
    }
    MpNlri& m = a.reach[afi][safi];
    if (m.present) {
        a.warnings.push_back(fmt::format("two MP_REACH_NLRI for AFI {} SAFI {}", afi, safi));
        return;
    }
    m.present = true;
    m.nh_len = c.u8();
    if (afi == 1) {
        c.get(m.nh.data(), 4);
        if (m.nh_len != 4) {
            a.warnings.push_back(fmt::format("MP_REACH_NLRI IPv4 next hop of length {}", m.nh_len));
            if (m.nh_len > 4) c.take(m.nh_len - 4u);
        }
    } else {
        c.get(m.nh.data(), 16);
        if (m.nh_len == 32) c.get(m.nh_local.data(), 16);
        else if (m.nh_len != 16) {
            a.warnings.push_back(fmt::format("MP_REACH_NLRI IPv6 next hop of length {}", m.nh_len));
            if (m.nh_len > 16) c.take(m.nh_len - 16u);
        }
    }
    uint8_t snpa = c.u8();
    for (; snpa > 0 && !c.short_; --snpa) c.take(c.u8());
    if (c.short_) {
        a.warnings.push_back("MP_REACH_NLRI cut short");
        return;
    }
    parse_prefixes(v.subspan(c.i), o.addpath, m.prefixes, &a.warnings, afi == 1 ? 32 : 128);
}

void parse_mp_unreach(std::span<const uint8_t> v, const AttrOptions& o, Attrs& a) {
    Cur c(v);
    uint16_t afi = c.u16();
    uint8_t safi = c.u8();
    if (c.short_) {
        a.warnings.push_back("MP_UNREACH_NLRI cut short");
        return;
    }
    if (afi < 1 || afi > 2 || safi < 1 || safi > 3) {
        ++a.other_families;
        return;
    }
    MpNlri& m = a.unreach[afi][safi];
    if (m.present) {
        a.warnings.push_back(fmt::format("two MP_UNREACH_NLRI for AFI {} SAFI {}", afi, safi));
        return;
    }
    m.present = true;
    parse_prefixes(v.subspan(c.i), o.addpath, m.prefixes, &a.warnings, afi == 1 ? 32 : 128);
}

}  // namespace

void parse_attributes(std::span<const uint8_t> data, const AttrOptions& o, Attrs& a) {
    a.asn_len = o.asn_len;
    Cur c(data);
    while (c.left()) {
        if (c.left() < 3) {
            a.warnings.push_back(fmt::format("attribute header cut short ({} bytes left)", c.left()));
            return;
        }
        uint8_t flags = c.u8();
        uint8_t type = c.u8();
        size_t len = (flags & bgp::attr::flag_extended) ? c.u16() : c.u8();
        if (c.short_) {
            a.warnings.push_back("attribute header cut short");
            return;
        }
        if (c.left() < len) {
            a.warnings.push_back(fmt::format("attribute type {} is truncated: length {}, {} bytes left", type, len, c.left()));
            return;
        }
        auto v = c.take(len);
        if (type >= 1 && type <= 64) {
            if (a.has(type) && type != bgp::attr::mp_reach && type != bgp::attr::mp_unreach)
                a.warnings.push_back(fmt::format("attribute type {} appears twice", type));
            a.present |= uint64_t{1} << (type - 1);
        }
        Cur vc(v);
        auto bad_len = [&](const char* name) {
            a.warnings.push_back(fmt::format("malformed {} attribute (length {})", name, len));
        };
        switch (type) {
        case bgp::attr::origin:
            a.origin = vc.u8();
            if (len != 1) bad_len("ORIGIN");
            break;
        case bgp::attr::as_path:
            a.segments.clear();
            a.asns.clear();
            a.as_path_error = !parse_segments(v, o.asn_len, a.segments, a.asns);
            if (a.as_path_error) a.warnings.push_back(fmt::format("malformed AS_PATH (length {})", len));
            break;
        case bgp::attr::next_hop:
            vc.get(a.next_hop.data(), 4);
            if (len != 4) bad_len("NEXT_HOP");
            break;
        case bgp::attr::med:
            a.med = vc.u32();
            if (len != 4) bad_len("MULTI_EXIT_DISC");
            break;
        case bgp::attr::local_pref:
            a.local_pref = vc.u32();
            if (len != 4) bad_len("LOCAL_PREF");
            break;
        case bgp::attr::atomic_aggregate: break;
        case bgp::attr::aggregator:
            a.aggregator_as = vc.asn(o.asn_len);
            vc.get(a.aggregator_addr.data(), 4);
            if (len != size_t(o.asn_len) + 4u) bad_len("AGGREGATOR");
            break;
        case bgp::attr::communities:
            a.communities.clear();
            for (size_t k = 0; k + 4 <= len; k += 4) a.communities.push_back(vc.u32());
            if (len % 4) bad_len("COMMUNITIES");
            break;
        case bgp::attr::originator_id:
            a.originator_id = vc.u32();
            if (len != 4) bad_len("ORIGINATOR_ID");
            break;
        case bgp::attr::cluster_list:
            a.cluster_list.clear();
            for (size_t k = 0; k + 4 <= len; k += 4) a.cluster_list.push_back(vc.u32());
            if (len % 4) bad_len("CLUSTER_LIST");
            break;
        case bgp::attr::mp_reach:
            a.mp_touched = true;
            parse_mp_reach(v, o, a);
            break;
        case bgp::attr::mp_unreach:
            a.mp_touched = true;
            parse_mp_unreach(v, o, a);
            break;
        case bgp::attr::ext_communities:
            a.ext_communities.clear();
            for (size_t k = 0; k + 8 <= len; k += 8) {
                bgp::ExtCommunity e;
                vc.get(e.raw.data(), 8);
                a.ext_communities.push_back(e);
            }
            if (len % 8) bad_len("EXTENDED_COMMUNITIES");
            break;
        case bgp::attr::as4_path:
            a.segments4.clear();
            a.asns4.clear();
            a.as4_path_error = !parse_segments(v, 4, a.segments4, a.asns4);
            if (a.as4_path_error) a.warnings.push_back(fmt::format("malformed AS4_PATH (length {})", len));
            for (auto& s : a.segments4)
                if (s.type == bgp::as_confed_sequence || s.type == bgp::as_confed_set) {
                    a.warnings.push_back("AS4_PATH with a confederation segment");
                    break;
                }
            break;
        case bgp::attr::as4_aggregator:
            a.as4_aggregator_as = vc.u32();
            vc.get(a.as4_aggregator_addr.data(), 4);
            if (len != 8) bad_len("AS4_AGGREGATOR");
            break;
        case bgp::attr::large_communities:
            a.large_communities.clear();
            for (size_t k = 0; k + 12 <= len; k += 12) {
                bgp::LargeCommunity l;
                l.global = vc.u32();
                l.local1 = vc.u32();
                l.local2 = vc.u32();
                a.large_communities.push_back(l);
            }
            if (len % 12) bad_len("LARGE_COMMUNITIES");
            break;
        default: a.unknown.push_back(Unknown{flags, type, v}); break;
        }
    }
}

bgp::AsPath as_path(const Attrs& a) {
    auto build = [](const std::vector<Segment>& segs, const std::vector<uint32_t>& asns) {
        bgp::AsPath p;
        for (auto& s : segs) {
            bgp::AsSegment x;
            x.type = s.type;
            x.asns.assign(asns.begin() + s.start, asns.begin() + s.start + s.count);
            p.push_back(std::move(x));
        }
        return p;
    };
    bgp::AsPath p = build(a.segments, a.asns);
    if (a.asn_len == 2 && a.has(bgp::attr::as4_path) && !a.as4_path_error && !a.as_path_error)
        return bgp::merge_as4_path(p, build(a.segments4, a.asns4));
    return p;
}

// ---- bgpdump -m ----------------------------------------------------------------------------
namespace {

size_t bgpdump_count(const std::vector<Segment>& segs) {
    size_t n = 0;
    for (auto& s : segs) n += (s.type == bgp::as_set || s.type == bgp::as_confed_set) ? 1 : s.count;
    return n;
}
char seg_start(uint8_t t) { return t == bgp::as_set ? '{' : t == bgp::as_confed_set ? '[' : t == bgp::as_confed_sequence ? '(' : ' '; }
char seg_end(uint8_t t) { return t == bgp::as_set ? '}' : t == bgp::as_confed_set ? ']' : t == bgp::as_confed_sequence ? ')' : ' '; }

// The AS path text exactly as bgpdump builds it (including its 8000-byte cut with "...").
void aspath_text(const std::vector<Segment>& segs, const std::vector<uint32_t>& asns, std::string& out) {
    constexpr size_t max_len = 8000;
    char buf[max_len + 64];
    char* o = buf;
    bool space = false;
    uint8_t type = bgp::as_sequence;
    for (auto& s : segs) {
        if (type != bgp::as_sequence) *o++ = seg_end(type);
        if (space) *o++ = ' ';
        if (s.type != bgp::as_sequence) *o++ = seg_start(s.type);
        space = false;
        char sep = (s.type == bgp::as_set || s.type == bgp::as_confed_set) ? ',' : ' ';
        const uint32_t* a = asns.data() + s.start;
        for (uint32_t k = 0; k < s.count; ++k) {
            if (space) *o++ = sep;
            else space = true;
            o = put_u32(o, a[k]);
            if (size_t(o - buf) > max_len - 100) {
                std::memcpy(o, "...", 3);
                out.assign(buf, size_t(o - buf) + 3);
                return;
            }
        }
        type = s.type;
    }
    if (!segs.empty() && segs.back().type != bgp::as_sequence) *o++ = seg_end(segs.back().type);
    out.assign(buf, size_t(o - buf));
}

const char* origin_text(int o) {
    o &= 0xff;  // bgpdump keeps it in an unsigned char: "absent" (-1) prints INCOMPLETE
    return o == 0 ? "IGP" : o == 1 ? "EGP" : "INCOMPLETE";
}

void community_text(const std::vector<uint32_t>& cs, std::string& out) {
    bool first = true;
    for (uint32_t c : cs) {
        if (!first) out.push_back(' ');
        first = false;
        if (c == 0xFFFFFF01) out += "no-export";
        else if (c == 0xFFFFFF02) out += "no-advertise";
        else if (c == 0xFFFFFF03) out += "local-AS";
        else {
            app_u32(out, c >> 16);
            out.push_back(':');
            app_u32(out, c & 0xffff);
        }
    }
}

bool all_ff(const std::array<uint8_t, 4>& a) { return a[0] == 255 && a[1] == 255 && a[2] == 255 && a[3] == 255; }

constexpr size_t bgpdump_max_prefixes = 2000;

}  // namespace

void BgpdumpFormatter::aspath_string(const Attrs& a) {
    if (!a.has(bgp::attr::as_path)) {
        aspath_.clear();
        return;
    }
    if (a.as_path_error) {
        aspath_ = "! Error !";
        return;
    }
    // bgpdump's RFC 6793 handling on 2-octet sessions: AS4_AGGREGATOR replaces an
    // AS_TRANS aggregator (and a non-AS_TRANS one stops here), then AS4_PATH is merged.
    if (a.asn_len == 2) {
        bool agg_done = false;
        if (a.has(bgp::attr::aggregator) && a.has(bgp::attr::as4_aggregator) && a.aggregator_as != bgp::as_trans)
            agg_done = true;
        if (!agg_done && a.has(bgp::attr::as4_path)) {
            size_t count = bgpdump_count(a.segments), count4 = a.as4_path_error ? 0 : bgpdump_count(a.segments4);
            if (count >= count4) {
                // bgpdump copies the FIRST segment of AS_PATH until the merged path is long
                // enough (it never advances to the next one), then appends AS4_PATH.
                merged_.clear();
                merged_asns_.clear();
                size_t mc = 0, want = count - count4;
                if (!a.segments.empty()) {
                    const Segment& first = a.segments.front();
                    while (mc < want) {
                        Segment s{first.type, uint32_t(merged_asns_.size()), first.count};
                        for (uint32_t k = 0; k < first.count; ++k) merged_asns_.push_back(a.asns[first.start + k]);
                        if (first.type == bgp::as_set || first.type == bgp::as_confed_set) {
                            mc += 1;
                        } else {
                            if (first.count == 0) break;  // bgpdump would loop forever here
                            mc += first.count;
                            if (mc > want) {
                                size_t cut = mc - want;
                                s.count -= uint32_t(cut);
                                merged_asns_.resize(merged_asns_.size() - cut);
                            }
                        }
                        merged_.push_back(s);
                    }
                }
                if (!a.as4_path_error)
                    for (auto& s : a.segments4) {
                        Segment x{s.type, uint32_t(merged_asns_.size()), s.count};
                        for (uint32_t k = 0; k < s.count; ++k) merged_asns_.push_back(a.asns4[s.start + k]);
                        merged_.push_back(x);
                    }
                aspath_text(merged_, merged_asns_, aspath_);
                return;
            }
        }
    }
    aspath_text(a.segments, a.asns, aspath_);
}

// "|nexthop|lp|med|communities|AG|aggregator|\n" after the origin (whose "|" is written).
void BgpdumpFormatter::attr_tail(const Attrs& a, const char* nh, std::string& out, bool signed_numbers) {
    out += nh;
    out.push_back('|');
    uint32_t lp = a.has(bgp::attr::local_pref) ? a.local_pref : 0, med = a.has(bgp::attr::med) ? a.med : 0;
    if (signed_numbers) {
        app_i32(out, int32_t(lp));
        out.push_back('|');
        app_i32(out, int32_t(med));
    } else {
        app_u32(out, lp);
        out.push_back('|');
        app_u32(out, med);
    }
    out.push_back('|');
    if (a.has(bgp::attr::communities)) community_text(a.communities, out);
    out.push_back('|');
    out += a.has(bgp::attr::atomic_aggregate) ? "AG" : "NAG";
    out.push_back('|');
    uint32_t agg_as = a.aggregator_as;
    auto agg_addr = a.aggregator_addr;
    if (a.asn_len == 2 && a.has(bgp::attr::aggregator) && a.has(bgp::attr::as4_aggregator) && a.aggregator_as == bgp::as_trans) {
        agg_as = a.as4_aggregator_as;
        agg_addr = a.as4_aggregator_addr;
    }
    if (!all_ff(agg_addr)) {
        app_u32(out, agg_as);
        out.push_back(' ');
        app_v4(out, agg_addr.data());
    }
    out += "|\n";
}

namespace {
inline uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }
// Checks a NLRI list of IPv4 prefixes; the count, or -1 when bgpdump's reader would
// complain (the general path then reports it).
inline long count_v4_prefixes(const uint8_t* p, size_t n) {
    long k = 0;
    size_t i = 0;
    while (i < n) {
        uint8_t len = p[i];
        if (len > 32 || i + 1 + (len + 7u) / 8u > n) return -1;
        i += 1 + (len + 7u) / 8u;
        ++k;
    }
    return k;
}
// A line's head (up to kHeadCopy bytes, the usual) is copied as a whole block of that
// size, not by a call for its exact length: its buffer (head_buf_) has that many bytes to
// read, and every room() taken for lines has kHeadCopy bytes more to write.
constexpr size_t kHeadCopy = 64;
// head + "a.b.c.d/len" for the prefix at p (checked: len <= 32, its bytes there).
inline char* put_v4_line_start(char* q, const uint8_t* p, std::string_view head) {
    uint8_t len = p[0];
    size_t nb = (len + 7u) / 8u;
    uint8_t a[4] = {0, 0, 0, 0};
    for (size_t k = 0; k < nb; ++k) a[k] = p[1 + k];
    if (head.size() <= kHeadCopy) std::memcpy(q, head.data(), kHeadCopy);
    else std::memcpy(q, head.data(), head.size());
    q += head.size();
    q += ipv4_text(a, q);  // per line: inline
    *q++ = '/';
    if (len < 10) *q++ = char('0' + len);
    else q = put_2(q, len);
    return q;
}
// head + prefix + rest for each prefix of a checked list.
inline char* put_v4_lines(char* q, const uint8_t* p, size_t n, std::string_view head, std::string_view rest) {
    const uint8_t* e = p + n;
    while (p < e) {
        q = put_v4_line_start(q, p, head);
        p += 1 + (p[0] + 7u) / 8u;
        std::memcpy(q, rest.data(), rest.size());
        q += rest.size();
    }
    return q;
}
}  // namespace

void Text::grow(size_t n) {
    size_t cap = std::max(cap_ * 2, len_ + n);
    cap = std::max<size_t>(cap, 256);
    std::unique_ptr<char[]> p(new char[cap]);  // not value-initialised: no clearing
    if (len_) std::memcpy(p.get(), p_.get(), len_);
    p_ = std::move(p);
    cap_ = cap;
}

namespace {
// std::string as a fast_update output (the room is zero-filled: for tests and callers
// that hold a string).
struct StringOut {
    std::string& s;
    char* room(size_t n) {
        size_t b = s.size();
        s.resize(b + n);
        return s.data() + b;
    }
    void commit(const char* end) { s.resize(size_t(end - s.data())); }
};
}  // namespace

template <class Out>
bool BgpdumpFormatter::fast_update(const Header& hdr, const Bgp4mp& m, std::span<const uint8_t> upd, Out& out) {
    const uint8_t* b = upd.data();
    size_t n = upd.size();
    if (n < 4) return false;
    size_t wl = size_t(b[0]) << 8 | b[1];
    if (2 + wl + 2 > n) return false;
    const uint8_t* wd = b + 2;
    size_t al = size_t(b[2 + wl]) << 8 | b[3 + wl];
    if (4 + wl + al > n) return false;
    const uint8_t* ad = b + 4 + wl;
    const uint8_t* nl = ad + al;
    size_t nn = n - 4 - wl - al;
    long nw = count_v4_prefixes(wd, wl), na = count_v4_prefixes(nl, nn);
    if (nw < 0 || na < 0 || nw > long(bgpdump_max_prefixes) || na > long(bgpdump_max_prefixes)) return false;

    // The attributes: only those -m shows (or ignores without a word); anything else, a
    // repeated or malformed one included, goes the general way.
    uint64_t seen = 0;
    int origin = -1;
    const uint8_t *path = nullptr, *nh = nullptr, *agg = nullptr, *comms = nullptr;
    size_t path_len = 0, comms_len = 0;
    uint32_t med = 0, lp = 0;
    for (size_t i = 0; i < al;) {
        if (al - i < 3) return false;
        uint8_t flags = ad[i], type = ad[i + 1];
        size_t len, hl;
        if (flags & bgp::attr::flag_extended) {
            if (al - i < 4) return false;
            len = size_t(ad[i + 2]) << 8 | ad[i + 3];
            hl = 4;
        } else {
            len = ad[i + 2];
            hl = 3;
        }
        if (al - i - hl < len) return false;
        const uint8_t* v = ad + i + hl;
        i += hl + len;
        if (type >= 1 && type <= 64) {
            uint64_t bit = uint64_t{1} << (type - 1);
            if (seen & bit) return false;
            seen |= bit;
        }
        switch (type) {
        case bgp::attr::origin:
            if (len != 1) return false;
            origin = v[0];
            break;
        case bgp::attr::as_path: {
            if (len > 1400) return false;  // the text stays far below bgpdump's 8000-byte cut
            for (size_t k = 0; k < len;) {
                if (len - k < 2 || v[k] < bgp::as_set || v[k] > bgp::as_confed_set || len - k - 2 < size_t(v[k + 1]) * 4) return false;
                k += 2 + size_t(v[k + 1]) * 4;
            }
            path = v;
            path_len = len;
            break;
        }
        case bgp::attr::next_hop:
            if (len != 4) return false;
            nh = v;
            break;
        case bgp::attr::med:
            if (len != 4) return false;
            med = be32(v);
            break;
        case bgp::attr::local_pref:
            if (len != 4) return false;
            lp = be32(v);
            break;
        case bgp::attr::atomic_aggregate: break;
        case bgp::attr::aggregator:
            if (len != 8) return false;
            agg = v;
            break;
        case bgp::attr::communities:
            if (len % 4 || len > 1024) return false;
            comms = v;
            comms_len = len;
            break;
        case bgp::attr::originator_id:
            if (len != 4) return false;
            break;
        case bgp::attr::cluster_list:
            if (len % 4) return false;
            break;
        case bgp::attr::ext_communities:
            if (len % 8) return false;
            break;
        case bgp::attr::large_communities:
            if (len % 12) return false;
            break;
        case bgp::attr::mp_reach:
        case bgp::attr::mp_unreach:
        case bgp::attr::as4_path:
        case bgp::attr::as4_aggregator: return false;
        default: break;  // unknown: not shown by -m
        }
    }

    if (nw == 0 && na == 0) return true;  // nothing bgpdump prints (End-of-RIB, attributes only)

    // "FORMAT|TIME|K|PEER|AS|", kept while consecutive messages share it (a capture's
    // segment, an MRT file's second).
    // bgpdump 1.6.2 treats only MESSAGE_LOCAL and MESSAGE_AS4_LOCAL as sent; for the
    // *_LOCAL_ADDPATH subtypes it prints the local address and AS as if received from them.
    bool local = m.subtype == bgp4mp::message_local || m.subtype == bgp4mp::message_as4_local;
    bool show_local = m.subtype == bgp4mp::message_local_addpath || m.subtype == bgp4mp::message_as4_local_addpath;
    const Addr& ip = show_local ? m.local_ip : m.peer_ip;
    // Compared field by field from registers: a key built on the stack and compared as a
    // whole costs a store-forwarding stall per message.
    uint32_t k_us = hdr.type == type_bgp4mp_et ? hdr.microseconds : 0, k_as = show_local ? m.local_as : m.peer_as;
    uint64_t k_ip0, k_ip1;
    std::memcpy(&k_ip0, ip.b.data(), 8);
    std::memcpy(&k_ip1, ip.b.data() + 8, 8);
    if (!(head_len_ && head_key_.ts == hdr.timestamp && head_key_.us == k_us && head_key_.as == k_as &&
          head_key_.type == hdr.type && head_key_.afi == m.afi && head_key_.ip0 == k_ip0 && head_key_.ip1 == k_ip1 &&
          head_key_.local == local)) {
        HeadKey key;
        key.ts = hdr.timestamp;
        key.us = k_us;
        key.as = k_as;
        key.type = hdr.type;
        key.afi = m.afi;
        key.ip0 = k_ip0;
        key.ip1 = k_ip1;
        key.local = local;
        bool et = hdr.type == type_bgp4mp_et;
        char* h = head_buf_;
        const char* fmtname = et ? (local ? "BGP4MP_ET_LOCAL|" : "BGP4MP_ET|") : (local ? "BGP4MP_LOCAL|" : "BGP4MP|");
        size_t fl = std::strlen(fmtname);
        std::memcpy(h, fmtname, fl);
        h += fl;
        h = put_u32(h, hdr.timestamp);
        if (et) {
            *h++ = '.';
            uint32_t us = hdr.microseconds;
            if (us > 999999) {  // bgpdump prints whatever is there with %06ld
                h = put_u32(h, us);
            } else {
                for (int k = 5; k >= 0; --k) {
                    h[k] = char('0' + us % 10);
                    us /= 10;
                }
                h += 6;
            }
        }
        std::memcpy(h, "|A|", 3);
        head_kind_ = size_t(h + 1 - head_buf_);
        h += 3;
        h += m.afi == bgp::afi_ipv6 ? format_ipv6(ip.b.data(), h) : format_ipv4(ip.b.data(), h);
        *h++ = '|';
        h = put_u32(h, key.as);
        *h++ = '|';
        head_len_ = size_t(h - head_buf_);
        head_key_ = key;
    }
    char* kind = head_buf_ + head_kind_;
    std::string_view hd(head_buf_, head_len_);

    if (nw) {
        *kind = 'W';
        char* q = out.room(size_t(nw) * (hd.size() + 20) + kHeadCopy);
        q = put_v4_lines(q, wd, wl, hd, "\n");
        out.commit(q);
        *kind = 'A';
    }
    if (!na) return true;

    // "|PATH|ORIGIN|NEXTHOP|LP|MED|COMMUNITIES|AG|AGGREGATOR|\n" after each prefix: the
    // path goes straight into the first line; what follows it ("post") mostly repeats from
    // one UPDATE to the next (a peer's origin, next hop, LOCAL_PREF...), so its text is kept
    // with the values it was made from. The other lines copy the first line's rest.
    bool atomic = seen >> (bgp::attr::atomic_aggregate - 1) & 1;
    uint32_t k_nh = nh ? be32(nh) : 0xffffffffu;
    uint64_t k_agg = 0;
    if (agg) std::memcpy(&k_agg, agg, 8);
    bool cacheable = comms_len <= sizeof(post_key_.comms);
    if (!(post_len_ && post_key_.origin == origin && post_key_.nh == k_nh && post_key_.lp == lp && post_key_.med == med &&
          post_key_.atomic == atomic && post_key_.has_agg == (agg != nullptr) && post_key_.agg == k_agg &&
          post_key_.comms_len == comms_len && (comms_len == 0 || std::memcmp(post_key_.comms, comms, comms_len) == 0))) {
        // Longest: 1 + 10 + 1 + 15 + 1 + 10 + 1 + 10 + 1 + 13 per community + 4 + 22 + 2.
        char* t = post_buf_;
        if (!cacheable) {
            post_big_.resize(128 + comms_len / 4 * 13);
            t = post_big_.data();
        }
        char* t0 = t;
        *t++ = '|';
        const char* o = origin_text(origin);
        size_t ol = std::strlen(o);
        std::memcpy(t, o, ol);
        t += ol;
        *t++ = '|';
        static const uint8_t none[4] = {255, 255, 255, 255};
        t += format_ipv4(nh ? nh : none, t);
        *t++ = '|';
        t = put_u32(t, lp);
        *t++ = '|';
        t = put_u32(t, med);
        *t++ = '|';
        for (size_t k = 0; k < comms_len; k += 4) {
            if (k) *t++ = ' ';
            uint32_t c = be32(comms + k);
            if (c == 0xFFFFFF01) t = static_cast<char*>(std::memcpy(t, "no-export", 9)) + 9;
            else if (c == 0xFFFFFF02) t = static_cast<char*>(std::memcpy(t, "no-advertise", 12)) + 12;
            else if (c == 0xFFFFFF03) t = static_cast<char*>(std::memcpy(t, "local-AS", 8)) + 8;
            else {
                t = put_u32(t, c >> 16);
                *t++ = ':';
                t = put_u32(t, c & 0xffff);
            }
        }
        *t++ = '|';
        if (atomic) {
            std::memcpy(t, "AG|", 3);
            t += 3;
        } else {
            std::memcpy(t, "NAG|", 4);
            t += 4;
        }
        if (agg && !(agg[4] == 255 && agg[5] == 255 && agg[6] == 255 && agg[7] == 255)) {
            t = put_u32(t, be32(agg));
            *t++ = ' ';
            t += format_ipv4(agg + 4, t);
        }
        *t++ = '|';
        *t++ = '\n';
        if (cacheable) {
            post_len_ = size_t(t - t0);
            post_key_.origin = origin;
            post_key_.nh = k_nh;
            post_key_.lp = lp;
            post_key_.med = med;
            post_key_.atomic = atomic;
            post_key_.has_agg = agg != nullptr;
            post_key_.agg = k_agg;
            post_key_.comms_len = uint32_t(comms_len);
            if (comms_len) std::memcpy(post_key_.comms, comms, comms_len);
        } else {
            post_len_ = 0;
            post_big_.resize(size_t(t - t0));
        }
    }
    std::string_view post = post_len_ ? std::string_view(post_buf_, post_len_) : std::string_view(post_big_);

    // The first line: head, prefix, "|", path, post. An AS number is at most 10 digits and a
    // separator for its 4 bytes, a segment's delimiters at most 3 for its 2 header bytes.
    char* q = out.room(hd.size() + 18 + 2 + 3 * path_len + post.size() + kHeadCopy);
    const uint8_t* p = nl;
    q = put_v4_line_start(q, p, hd);
    char* rest0 = q;
    *q++ = '|';
    if (path) {
        bool space = false;
        uint8_t prev = bgp::as_sequence, last = bgp::as_sequence;
        bool any = false;
        for (size_t k = 0; k < path_len;) {
            uint8_t st = path[k];
            uint32_t cnt = path[k + 1];
            const uint8_t* a = path + k + 2;
            k += 2 + size_t(cnt) * 4;
            if (prev != bgp::as_sequence) *q++ = seg_end(prev);
            if (space) *q++ = ' ';
            if (st != bgp::as_sequence) *q++ = seg_start(st);
            char sep = (st == bgp::as_set || st == bgp::as_confed_set) ? ',' : ' ';
            if (cnt) {
                q = put_u32(q, be32(a));
                for (uint32_t x = 1; x < cnt; ++x) {
                    *q++ = sep;
                    q = put_u32(q, be32(a + 4 * x));
                }
            }
            space = cnt != 0;
            prev = last = st;
            any = true;
        }
        if (any && last != bgp::as_sequence) *q++ = seg_end(last);
    }
    // As the head: one block when it fits (post_buf_ has the bytes to read; the room, kHeadCopy more).
    if (post_len_ && post.size() <= kHeadCopy) std::memcpy(q, post.data(), kHeadCopy);
    else std::memcpy(q, post.data(), post.size());
    q += post.size();
    out.commit(q);
    if (na == 1) return true;
    size_t rest_len = size_t(q - rest0);
    q = out.room(size_t(na - 1) * (hd.size() + 18 + rest_len) + kHeadCopy);
    const char* rest = q - rest_len;  // the first line's, just before the room (it may have moved)
    p += 1 + (p[0] + 7u) / 8u;
    for (long k = 1; k < na; ++k) {
        q = put_v4_line_start(q, p, hd);
        std::memcpy(q, rest, rest_len);
        q += rest_len;
        p += 1 + (p[0] + 7u) / 8u;
    }
    out.commit(q);
    return true;
}

// The common case first: a well-formed UPDATE on a 4-octet session without ADD-PATH.
template <class Out>
bool BgpdumpFormatter::try_fast(const Header& h, const Bgp4mp& m, Out& out) {
    if (!m.state && m.as4 && !m.addpath && m.msg.size() >= 19) {
        size_t size = size_t(m.msg[16]) << 8 | m.msg[17];
        return size >= 19 && size <= m.msg.size() && m.msg[18] == uint8_t(bgp::MsgType::update) &&
               fast_update(h, m, m.msg.subspan(19, size - 19), out);
    }
    return false;
}

void BgpdumpFormatter::bgp4mp(const Header& h, const Bgp4mp& m, std::string& out) {
    StringOut so{out};
    if (try_fast(h, m, so)) return;
    bgp4mp_general(h, m, out);
}

void BgpdumpFormatter::bgp4mp(const Header& h, const Bgp4mp& m, Text& out) {
    if (try_fast(h, m, out)) return;
    scratch_.clear();
    bgp4mp_general(h, m, scratch_);
    out.append(scratch_);
}

void BgpdumpFormatter::rib(const Header& h, const Rib& r, const PeerIndex& peers, Text& out) {
    scratch_.clear();
    rib(h, r, peers, scratch_);
    out.append(scratch_);
}

void BgpdumpFormatter::table_dump(const Header& h, const TableDump& t, Text& out) {
    scratch_.clear();
    table_dump(h, t, scratch_);
    out.append(scratch_);
}

void BgpdumpFormatter::bgp4mp_general(const Header& h, const Bgp4mp& m, std::string& out) {
    char tbuf[32];
    char* te = put_u32(tbuf, h.timestamp);
    bool et = h.type == type_bgp4mp_et;
    if (et) {
        *te++ = '.';
        uint32_t us = h.microseconds;
        if (us > 999999) {  // bgpdump prints whatever is there with %06ld
            te = put_u32(te, us);
        } else {
            for (int k = 5; k >= 0; --k) {
                te[k] = char('0' + us % 10);
                us /= 10;
            }
            te += 6;
        }
    }
    std::string_view ts(tbuf, size_t(te - tbuf));
    bool v6peer = m.afi == bgp::afi_ipv6;
    if (m.state) {
        out += et ? "BGP4MP_ET|" : "BGP4MP|";
        out += ts;
        out += "|STATE|";
        if (v6peer) app_v6(out, m.peer_ip.b.data());
        else app_v4(out, m.peer_ip.b.data());
        out.push_back('|');
        app_u32(out, m.peer_as);
        out.push_back('|');
        app_u32(out, m.old_state);
        out.push_back('|');
        app_u32(out, m.new_state);
        out.push_back('\n');
        return;
    }
    // The message as bgpdump frames it: the length field bounds it within the record.
    Cur c(m.msg);
    c.take(16);
    int size = c.u16();
    int expected = size - 18;
    if (expected < 1) {
        warnings.push_back(fmt::format("BGP message with length {}", size));
        return;
    }
    auto body = c.take(size_t(expected));
    if (body.size() < size_t(expected))
        warnings.push_back(fmt::format("BGP message cut short: length {}, {} bytes in the record", size, body.size() + 19));
    if (body[0] != uint8_t(bgp::MsgType::update)) return;
    // bgpdump 1.6.2 treats only MESSAGE_LOCAL and MESSAGE_AS4_LOCAL as sent; for the
    // *_LOCAL_ADDPATH subtypes it prints the local address and AS as if received from them.
    bool bd_local = m.subtype == bgp4mp::message_local || m.subtype == bgp4mp::message_as4_local;
    bool show_local = m.subtype == bgp4mp::message_local_addpath || m.subtype == bgp4mp::message_as4_local_addpath;
    const Addr& shown_ip = show_local ? m.local_ip : m.peer_ip;
    uint32_t shown_as = show_local ? m.local_as : m.peer_as;
    const char* fmtname = et ? (bd_local ? (m.addpath ? "BGP4MP_ET_LOCAL_AP|" : "BGP4MP_ET_LOCAL|") : (m.addpath ? "BGP4MP_ET_AP|" : "BGP4MP_ET|"))
                             : (bd_local ? (m.addpath ? "BGP4MP_LOCAL_AP|" : "BGP4MP_LOCAL|") : (m.addpath ? "BGP4MP_AP|" : "BGP4MP|"));
    Cur u(body.subspan(1));
    uint16_t wl = u.u16();
    auto wd = u.take(wl);
    withdrawn_.clear();
    nlri_.clear();
    attrs_.reset();
    parse_prefixes(wd, m.addpath, withdrawn_, &attrs_.warnings, 32);
    uint16_t al = u.u16();
    auto ad = u.take(al);
    AttrOptions o;
    o.asn_len = m.as4 ? 4 : 2;
    o.addpath = m.addpath;
    // (bgpdump clears nothing between these steps; the withdrawn warnings stay)
    std::vector<std::string> wsave = std::move(attrs_.warnings);
    attrs_.warnings.clear();
    parse_attributes(ad, o, attrs_);
    attrs_.warnings.insert(attrs_.warnings.begin(), wsave.begin(), wsave.end());
    parse_prefixes(body.subspan(1 + u.i), m.addpath, nlri_, &attrs_.warnings, 32);
    for (auto& w : attrs_.warnings) warnings.push_back(w);
    const Attrs& a = attrs_;

    // Every line of this message starts with the same "FORMAT|TIME|A|PEER|AS|" and the
    // routes of one family share everything after the prefix: build those once.
    auto head = [&](std::string& hd, const char* kind, bool v6fmt) {
        hd.clear();
        hd += fmtname;
        hd += ts;
        hd += kind;
        if (v6fmt) app_v6(hd, shown_ip.b.data());
        else app_v4(hd, shown_ip.b.data());
        hd.push_back('|');
        app_u32(hd, shown_as);
        hd.push_back('|');
    };
    auto emit = [&](const std::string& hd, const std::vector<Prefix>& ps, bool v6, const std::string* tail) {
        size_t n = std::min(ps.size(), bgpdump_max_prefixes);
        if (!n) return;
        // Room for every line at once, then written with plain stores (no per-piece appends).
        size_t per = hd.size() + 64 + 16 + (tail ? tail->size() + 1 : 1);
        size_t base = out.size();
        out.resize(base + per * n);
        char* q = out.data() + base;
        for (size_t k = 0; k < n; ++k) {
            auto& p = ps[k];
            std::memcpy(q, hd.data(), hd.size());
            q += hd.size();
            q += v6 ? format_ipv6(p.addr.data(), q) : format_ipv4(p.addr.data(), q);
            *q++ = '/';
            q = put_u32(q, p.len);
            if (m.addpath) {
                *q++ = '|';
                q = put_u32(q, p.path_id);
            }
            if (tail) {
                *q++ = '|';
                std::memcpy(q, tail->data(), tail->size());
                q += tail->size();
            } else {
                *q++ = '\n';
            }
        }
        out.resize(size_t(q - out.data()));
    };

    if (!withdrawn_.empty() || a.has(bgp::attr::mp_unreach)) {
        head(head_, "|W|", v6peer);
        emit(head_, withdrawn_, false, nullptr);
        for (int s = 1; s <= 3; ++s)
            if (a.unreach[1][s].present) emit(head_, a.unreach[1][s].prefixes, false, nullptr);
        bool any6 = false;
        for (int s = 1; s <= 3; ++s) any6 = any6 || a.unreach[2][s].present;
        if (any6) {
            // bgpdump prints a sent message's IPv4 peer with its IPv6 formatter here
            head(head6_, "|W|", v6peer || bd_local);
            for (int s = 1; s <= 3; ++s)
                if (a.unreach[2][s].present) emit(head6_, a.unreach[2][s].prefixes, true, nullptr);
        }
    }
    if (!nlri_.empty() || a.has(bgp::attr::mp_reach)) {
        aspath_string(a);
        const char* origin = origin_text(a.origin);
        char nh[64];
        auto middle = [&](const char* nht, bool signed_numbers) {
            tail_.clear();
            tail_ += aspath_;
            tail_.push_back('|');
            tail_ += origin;
            tail_.push_back('|');
            attr_tail(a, nht, tail_, signed_numbers);
        };
        head(head_, "|A|", v6peer);
        if (!nlri_.empty()) {
            nh[format_ipv4(a.next_hop.data(), nh)] = 0;  // IPv4 NLRI: NEXT_HOP
            middle(nh, false);
            emit(head_, nlri_, false, &tail_);
        }
        for (int s = 1; s <= 3; ++s) {
            auto& r = a.reach[1][s];
            if (!r.present || r.prefixes.empty()) continue;
            nh[format_ipv4(r.nh.data(), nh)] = 0;
            middle(nh, true);  // bgpdump prints LOCAL_PREF and MED with %d here
            emit(head_, r.prefixes, false, &tail_);
        }
        bool any6 = false;
        for (int s = 1; s <= 3; ++s) any6 = any6 || (a.reach[2][s].present && !a.reach[2][s].prefixes.empty());
        if (any6) {
            head(head6_, "|A|", v6peer);
            for (int s = 1; s <= 3; ++s) {
                auto& r = a.reach[2][s];
                if (!r.present || r.prefixes.empty()) continue;
                format_ipv6(r.nh.data(), nh);
                middle(nh, false);
                emit(head6_, r.prefixes, true, &tail_);
            }
        }
    }
}

void BgpdumpFormatter::rib(const Header& h, const Rib& r, const PeerIndex& peers, std::string& out) {
    if (r.safi != 1) return;  // bgpdump prints only the unicast RIBs
    for (auto& e : r.entries) {
        if (e.peer_index >= peers.peers.size()) {
            warnings.push_back(fmt::format("RIB entry for peer index {} of a table of {} peers", e.peer_index, peers.peers.size()));
            continue;
        }
        const Peer& pe = peers.peers[e.peer_index];
        attrs_.reset();
        AttrOptions o;
        o.asn_len = 4;
        o.addpath = r.addpath;
        o.mrt_abbreviated = true;
        parse_attributes(e.attrs, o, attrs_);
        for (auto& w : attrs_.warnings) warnings.push_back(w);
        const Attrs& a = attrs_;
        aspath_string(a);
        out += r.addpath ? "TABLE_DUMP2_AP|" : "TABLE_DUMP2|";
        app_u32(out, h.timestamp);
        out += "|B|";
        if (pe.ip.v6) app_v6(out, pe.ip.b.data());
        else app_v4(out, pe.ip.b.data());
        out.push_back('|');
        app_u32(out, pe.asn);
        out.push_back('|');
        if (r.afi == 1) app_v4(out, r.prefix.data());
        else app_v6(out, r.prefix.data());
        out.push_back('/');
        app_u32(out, r.prefix_len);
        out.push_back('|');
        if (r.addpath) {
            app_u32(out, e.path_id);
            out.push_back('|');
        }
        out += aspath_;
        out.push_back('|');
        out += origin_text(a.origin);
        out.push_back('|');
        char nh[64];
        if (a.has(bgp::attr::mp_reach) && a.reach[2][1].present) format_ipv6(a.reach[2][1].nh.data(), nh);
        else nh[format_ipv4(a.next_hop.data(), nh)] = 0;
        attr_tail(a, nh, out);
    }
}

void BgpdumpFormatter::table_dump(const Header& h, const TableDump& t, std::string& out) {
    attrs_.reset();
    AttrOptions o;
    o.asn_len = t.as4 ? 4 : 2;
    parse_attributes(t.attrs, o, attrs_);
    for (auto& w : attrs_.warnings) warnings.push_back(w);
    const Attrs& a = attrs_;
    aspath_string(a);
    out += "TABLE_DUMP|";
    app_u32(out, h.timestamp);
    out += "|B|";
    bool v6fmt = t.v6 && !t.as4;  // bgpdump formats the 32-bit-AS IPv6 subtype as IPv4
    if (v6fmt) app_v6(out, t.peer_ip.b.data());
    else app_v4(out, t.peer_ip.b.data());
    out.push_back('|');
    app_u32(out, t.peer_as);
    out.push_back('|');
    if (v6fmt) app_v6(out, t.prefix.b.data());
    else app_v4(out, t.prefix.b.data());
    out.push_back('/');
    app_u32(out, t.prefix_len);
    out.push_back('|');
    out += aspath_;
    out.push_back('|');
    out += origin_text(a.origin);
    out.push_back('|');
    char nh[64];
    if (a.has(bgp::attr::mp_reach) && a.reach[2][1].present) format_ipv6(a.reach[2][1].nh.data(), nh);
    else nh[format_ipv4(a.next_hop.data(), nh)] = 0;
    attr_tail(a, nh, out);
}

}  // namespace edge::mrt
