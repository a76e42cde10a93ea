// BGP message codec (see message.hpp).
#include "bgp/message.hpp"

#include <algorithm>
#include <bitset>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

namespace edge::bgp {
namespace {

// ---- byte helpers -------------------------------------------------------------------
void put8(Bytes& b, unsigned v) { b.push_back(static_cast<uint8_t>(v)); }
void put16(Bytes& b, unsigned v) {
    b.push_back(static_cast<uint8_t>(v >> 8));
    b.push_back(static_cast<uint8_t>(v));
}
void put32(Bytes& b, uint32_t v) {
    put16(b, v >> 16);
    put16(b, v & 0xffff);
}
void set16(Bytes& b, size_t at, unsigned v) {
    b[at] = static_cast<uint8_t>(v >> 8);
    b[at + 1] = static_cast<uint8_t>(v);
}
uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t get32(const uint8_t* p) {
    return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// Bounds-checked reader.
struct Reader {
    std::span<const uint8_t> d;
    size_t p = 0;
    size_t left() const { return d.size() - p; }
    bool has(size_t n) const { return left() >= n; }
    uint8_t u8() { return d[p++]; }
    uint16_t u16() {
        auto v = get16(&d[p]);
        p += 2;
        return v;
    }
    uint32_t u32() {
        auto v = get32(&d[p]);
        p += 4;
        return v;
    }
    std::span<const uint8_t> take(size_t n) {
        auto s = d.subspan(p, n);
        p += n;
        return s;
    }
};

Bytes header(MsgType t) {
    Bytes b(16, 0xff);
    put16(b, 0);
    put8(b, static_cast<uint8_t>(t));
    return b;
}
void finish(Bytes& b) { set16(b, 16, static_cast<unsigned>(b.size())); }

std::string hex(std::span<const uint8_t> d) {
    std::string s;
    for (auto c : d) s += fmt::format("{:02x}", c);
    return s;
}

Notification note(uint8_t code, uint8_t sub, Bytes data = {}) { return Notification{code, sub, std::move(data)}; }

Decoded reset(Message m, Notification n, std::string why) {
    Decoded d{std::move(m), Outcome::session_reset, std::move(n), {}};
    d.warnings.push_back(std::move(why));
    return d;
}

// Attribute header + value as received, for NOTIFICATION data.
Bytes attr_data(uint8_t flags, uint8_t type, std::span<const uint8_t> v) {
    Bytes b;
    put8(b, flags);
    put8(b, type);
    if (flags & attr::flag_extended)
        put16(b, static_cast<unsigned>(v.size()));
    else
        put8(b, static_cast<unsigned>(v.size()));
    b.insert(b.end(), v.begin(), v.end());
    return b;
}

// Prefixes of one family: (path id) length byte, significant bytes. Fails on a length
// beyond the family width or a truncated prefix.
bool decode_prefixes(std::span<const uint8_t> d, net::Family fam, bool add_path, std::vector<Nlri>& out,
                     std::string& why) {
    Reader r{d};
    int width = fam == net::Family::v4 ? 32 : 128;
    while (r.left()) {
        Nlri n;
        if (add_path) {
            if (!r.has(4)) {
                why = "NLRI path identifier truncated";
                return false;
            }
            n.path_id = r.u32();
            if (!r.has(1)) {
                why = "NLRI truncated after path identifier";
                return false;
            }
        }
        int len = r.u8();
        if (len > width) {
            why = fmt::format("NLRI prefix length {} exceeds {}", len, width);
            return false;
        }
        size_t nb = (len + 7) / 8;
        if (!r.has(nb)) {
            why = "NLRI prefix truncated";
            return false;
        }
        std::array<uint8_t, 16> raw{};
        auto s = r.take(nb);
        std::copy(s.begin(), s.end(), raw.begin());
        net::IpAddr a = fam == net::Family::v4 ? net::IpAddr::v4(std::array<uint8_t, 4>{raw[0], raw[1], raw[2], raw[3]})
                                               : net::IpAddr::v6(raw);
        n.prefix = *net::Prefix::masked(a, len);  // trailing bits beyond len are ignored (RFC 4271 4.3)
        out.push_back(n);
    }
    return true;
}

std::optional<net::Family> family_of(uint16_t afi) {
    if (afi == afi_ipv4) return net::Family::v4;
    if (afi == afi_ipv6) return net::Family::v6;
    return std::nullopt;
}

bool decode_as_path(std::span<const uint8_t> v, int asn_size, AsPath& out, std::string& why) {
    Reader r{v};
    while (r.left()) {
        if (!r.has(2)) {
            why = "AS_PATH segment header truncated";
            return false;
        }
        AsSegment s;
        s.type = r.u8();
        int n = r.u8();
        if (s.type < as_set || s.type > as_confed_set) {
            why = fmt::format("AS_PATH segment type {} invalid", s.type);
            return false;
        }
        if (n == 0) {
            why = "AS_PATH segment of length 0";
            return false;
        }
        if (!r.has(static_cast<size_t>(n) * asn_size)) {
            why = "AS_PATH segment overruns the attribute";
            return false;
        }
        for (int i = 0; i < n; ++i) s.asns.push_back(asn_size == 4 ? r.u32() : r.u16());
        out.push_back(std::move(s));
    }
    return true;
}

void encode_as_path(Bytes& b, const AsPath& p, bool four) {
    for (const auto& s : p) {
        // Segments hold at most 255 ASes: split longer ones.
        size_t i = 0;
        do {
            size_t n = std::min<size_t>(255, s.asns.size() - i);
            put8(b, s.type);
            put8(b, static_cast<unsigned>(n));
            for (size_t k = 0; k < n; ++k) {
                uint32_t a = s.asns[i + k];
                if (four)
                    put32(b, a);
                else
                    put16(b, a > 0xffff ? as_trans : a);
            }
            i += n;
        } while (i < s.asns.size());
    }
}

bool needs_as4(const AsPath& p) {
    for (auto& s : p)
        for (auto a : s.asns)
            if (a > 0xffff) return true;
    return false;
}

void put_attr(Bytes& b, uint8_t flags, uint8_t type, std::span<const uint8_t> v) {
    if (v.size() > 255) flags |= attr::flag_extended;
    put8(b, flags);
    put8(b, type);
    if (flags & attr::flag_extended)
        put16(b, static_cast<unsigned>(v.size()));
    else
        put8(b, static_cast<unsigned>(v.size()));
    b.insert(b.end(), v.begin(), v.end());
}

constexpr uint8_t wk = attr::flag_transitive;                           // well-known
constexpr uint8_t opt_t = attr::flag_optional | attr::flag_transitive;  // optional transitive
constexpr uint8_t opt_nt = attr::flag_optional;                         // optional non-transitive

// Expected optional/transitive bits per known attribute; 0xff = unknown type.
uint8_t expected_flags(uint8_t type) {
    switch (type) {
        case attr::origin:
        case attr::as_path:
        case attr::next_hop:
        case attr::local_pref:
        case attr::atomic_aggregate: return wk;
        case attr::med:
        case attr::originator_id:
        case attr::cluster_list:
        case attr::mp_reach:
        case attr::mp_unreach: return opt_nt;
        case attr::aggregator:
        case attr::communities:
        case attr::ext_communities:
        case attr::as4_path:
        case attr::as4_aggregator:
        case attr::large_communities: return opt_t;
        default: return 0xff;
    }
}

const char* attr_name(uint8_t t) {
    switch (t) {
        case attr::origin: return "ORIGIN";
        case attr::as_path: return "AS_PATH";
        case attr::next_hop: return "NEXT_HOP";
        case attr::med: return "MULTI_EXIT_DISC";
        case attr::local_pref: return "LOCAL_PREF";
        case attr::atomic_aggregate: return "ATOMIC_AGGREGATE";
        case attr::aggregator: return "AGGREGATOR";
        case attr::communities: return "COMMUNITIES";
        case attr::originator_id: return "ORIGINATOR_ID";
        case attr::cluster_list: return "CLUSTER_LIST";
        case attr::mp_reach: return "MP_REACH_NLRI";
        case attr::mp_unreach: return "MP_UNREACH_NLRI";
        case attr::ext_communities: return "EXTENDED_COMMUNITIES";
        case attr::as4_path: return "AS4_PATH";
        case attr::as4_aggregator: return "AS4_AGGREGATOR";
        case attr::large_communities: return "LARGE_COMMUNITY";
        default: return "attribute";
    }
}

bool valid_utf8(std::span<const uint8_t> s) {
    size_t i = 0;
    while (i < s.size()) {
        uint8_t c = s[i];
        size_t n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 9;
        if (n == 9 || i + n >= s.size()) return false;
        for (size_t k = 1; k <= n; ++k)
            if ((s[i + k] & 0xc0) != 0x80) return false;
        i += n + 1;
    }
    return true;
}

}  // namespace

// ---- names --------------------------------------------------------------------------
const char* to_string(MsgType t) {
    switch (t) {
        case MsgType::open: return "open";
        case MsgType::update: return "update";
        case MsgType::notification: return "notification";
        case MsgType::keepalive: return "keepalive";
        case MsgType::route_refresh: return "route_refresh";
    }
    return "unknown";
}

const char* to_string(Outcome o) {
    switch (o) {
        case Outcome::ok: return "ok";
        case Outcome::attribute_discard: return "attribute_discard";
        case Outcome::treat_as_withdraw: return "treat_as_withdraw";
        case Outcome::session_reset: return "session_reset";
    }
    return "unknown";
}

std::string AfiSafi::to_string() const {
    const char* a = afi == afi_ipv4 ? "ipv4" : afi == afi_ipv6 ? "ipv6" : nullptr;
    const char* s = safi == safi_unicast ? "unicast" : safi == safi_flowspec ? "flowspec" : safi == 2 ? "multicast" : nullptr;
    if (a && s) return fmt::format("{}-{}", a, s);
    return fmt::format("afi-{}/safi-{}", afi, safi);
}

bool Context::add_path_rx(AfiSafi af) const {
    return std::find(add_path_receive.begin(), add_path_receive.end(), af) != add_path_receive.end();
}
bool Context::add_path_tx(AfiSafi af) const {
    return std::find(add_path_send.begin(), add_path_send.end(), af) != add_path_send.end();
}

// ---- notification -------------------------------------------------------------------
Notification Notification::shutdown(std::string_view message, uint8_t subcode) {
    Notification n{err::cease, subcode, {}};
    size_t len = std::min<size_t>(message.size(), 255);
    while (len < message.size() && len > 0 && (static_cast<uint8_t>(message[len]) & 0xc0) == 0x80) --len;
    if (len == 0 && message.empty()) return n;
    n.data.push_back(static_cast<uint8_t>(len));
    n.data.insert(n.data.end(), message.begin(), message.begin() + static_cast<long>(len));
    return n;
}

std::optional<std::string> Notification::shutdown_message() const {
    if (code != err::cease || (subcode != err::admin_shutdown && subcode != err::admin_reset)) return std::nullopt;
    if (data.empty()) return std::nullopt;
    size_t len = data[0];
    if (len + 1 > data.size()) return std::nullopt;
    std::span<const uint8_t> s(data.data() + 1, len);
    if (!valid_utf8(s)) return std::nullopt;
    return std::string(s.begin(), s.end());
}

std::string Notification::name() const {
    static const char* header_s[] = {"Unspecific", "Connection Not Synchronized", "Bad Message Length", "Bad Message Type"};
    static const char* open_s[] = {"Unspecific", "Unsupported Version Number", "Bad Peer AS", "Bad BGP Identifier",
                                   "Unsupported Optional Parameter", "Authentication Failure", "Unacceptable Hold Time",
                                   "Unsupported Capability", "Deprecated", "Deprecated", "Deprecated",
                                   "Role Mismatch"};
    static const char* update_s[] = {"Unspecific", "Malformed Attribute List", "Unrecognized Well-known Attribute",
                                     "Missing Well-known Attribute", "Attribute Flags Error", "Attribute Length Error",
                                     "Invalid ORIGIN Attribute", "AS Routing Loop", "Invalid NEXT_HOP Attribute",
                                     "Optional Attribute Error", "Invalid Network Field", "Malformed AS_PATH"};
    static const char* fsm_s[] = {"Unspecified Error", "Unexpected Message in OpenSent", "Unexpected Message in OpenConfirm",
                                  "Unexpected Message in Established"};
    static const char* cease_s[] = {"Unspecific", "Maximum Number of Prefixes Reached", "Administrative Shutdown",
                                    "Peer De-configured", "Administrative Reset", "Connection Rejected",
                                    "Other Configuration Change", "Connection Collision Resolution", "Out of Resources",
                                    "Hard Reset", "BFD Down"};
    static const char* rr_s[] = {"Reserved", "Invalid Message Length"};
    auto pick = [&](const char* c, const char* const* t, size_t n) {
        if (subcode < n) return fmt::format("{}/{}", c, t[subcode]);
        return fmt::format("{}/subcode {}", c, subcode);
    };
    switch (code) {
        case err::header: return pick("Message Header Error", header_s, std::size(header_s));
        case err::open: return pick("OPEN Message Error", open_s, std::size(open_s));
        case err::update: return pick("UPDATE Message Error", update_s, std::size(update_s));
        case err::hold_timer: return "Hold Timer Expired";
        case err::fsm: return pick("Finite State Machine Error", fsm_s, std::size(fsm_s));
        case err::cease: return pick("Cease", cease_s, std::size(cease_s));
        case err::route_refresh: return pick("ROUTE-REFRESH Message Error", rr_s, std::size(rr_s));
        default: return fmt::format("code {}/subcode {}", code, subcode);
    }
}

std::string Notification::describe() const {
    auto s = name();
    if (auto m = shutdown_message()) return fmt::format("{}: \"{}\"", s, *m);
    if (!data.empty()) s += " (data " + hex(data) + ")";
    return s;
}

// ---- communities ----------------------------------------------------------------------
namespace {
struct WellKnown {
    const char* name;
    uint32_t value;
};
constexpr WellKnown well_known[] = {{"no-export", community_no_export},
                                    {"no-advertise", community_no_advertise},
                                    {"no-export-subconfed", community_no_export_subconfed},
                                    {"blackhole", community_blackhole},
                                    {"graceful-shutdown", 0xFFFF0000}};
std::optional<uint32_t> parse_u32(std::string_view s, uint64_t max) {
    uint64_t v = 0;
    if (s.empty()) return std::nullopt;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
    if (ec != std::errc() || p != s.data() + s.size() || v > max) return std::nullopt;
    return static_cast<uint32_t>(v);
}
}  // namespace

std::string community_to_string(uint32_t c) {
    for (auto& w : well_known)
        if (w.value == c) return w.name;
    return fmt::format("{}:{}", c >> 16, c & 0xffff);
}

std::optional<uint32_t> parse_community(std::string_view s) {
    for (auto& w : well_known)
        if (s == w.name) return w.value;
    auto colon = s.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    auto hi = parse_u32(s.substr(0, colon), 0xffff);
    auto lo = parse_u32(s.substr(colon + 1), 0xffff);
    if (!hi || !lo) return std::nullopt;
    return (*hi << 16) | *lo;
}

std::optional<LargeCommunity> parse_large_community(std::string_view s) {
    auto c1 = s.find(':');
    if (c1 == std::string_view::npos) return std::nullopt;
    auto c2 = s.find(':', c1 + 1);
    if (c2 == std::string_view::npos) return std::nullopt;
    auto g = parse_u32(s.substr(0, c1), 0xffffffff);
    auto a = parse_u32(s.substr(c1 + 1, c2 - c1 - 1), 0xffffffff);
    auto b = parse_u32(s.substr(c2 + 1), 0xffffffff);
    if (!g || !a || !b) return std::nullopt;
    return LargeCommunity{*g, *a, *b};
}

std::string LargeCommunity::to_string() const { return fmt::format("{}:{}:{}", global, local1, local2); }

ExtCommunity ExtCommunity::traffic_rate(uint16_t asn, float rate) {
    ExtCommunity e;
    e.raw[0] = 0x80;
    e.raw[1] = 0x06;
    e.raw[2] = static_cast<uint8_t>(asn >> 8);
    e.raw[3] = static_cast<uint8_t>(asn);
    uint32_t bits;
    std::memcpy(&bits, &rate, 4);
    for (int i = 0; i < 4; ++i) e.raw[4 + i] = static_cast<uint8_t>(bits >> (24 - 8 * i));
    return e;
}

std::optional<float> ExtCommunity::traffic_rate_value() const {
    if (raw[0] != 0x80 || raw[1] != 0x06) return std::nullopt;
    uint32_t bits = get32(&raw[4]);
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

ExtCommunity ExtCommunity::route_target(uint16_t asn, uint32_t value) {
    ExtCommunity e;
    e.raw[0] = 0x00;
    e.raw[1] = 0x02;
    e.raw[2] = static_cast<uint8_t>(asn >> 8);
    e.raw[3] = static_cast<uint8_t>(asn);
    for (int i = 0; i < 4; ++i) e.raw[4 + i] = static_cast<uint8_t>(value >> (24 - 8 * i));
    return e;
}

std::string ExtCommunity::to_string() const {
    if (auto r = traffic_rate_value()) return fmt::format("rate-limit:{}", *r);
    if (raw[0] == 0x00 && raw[1] == 0x02) return fmt::format("rt:{}:{}", get16(&raw[2]), get32(&raw[4]));
    if (raw[0] == 0x00 && raw[1] == 0x03) return fmt::format("soo:{}:{}", get16(&raw[2]), get32(&raw[4]));
    return "0x" + hex(raw);
}

// ---- AS paths -----------------------------------------------------------------------
std::string to_string(const AsPath& p) {
    std::string s;
    for (const auto& seg : p) {
        if (!s.empty()) s += ' ';
        bool set = seg.type == as_set || seg.type == as_confed_set;
        bool confed = seg.type == as_confed_sequence || seg.type == as_confed_set;
        if (confed) s += '(';
        if (set) s += '{';
        for (size_t i = 0; i < seg.asns.size(); ++i) {
            if (i) s += set ? "," : " ";
            s += std::to_string(seg.asns[i]);
        }
        if (set) s += '}';
        if (confed) s += ')';
    }
    return s;
}

size_t path_length(const AsPath& p) {
    size_t n = 0;
    for (const auto& s : p) {
        if (s.type == as_sequence) n += s.asns.size();
        if (s.type == as_set) n += 1;
    }
    return n;
}

AsPath merge_as4_path(const AsPath& as_path, const AsPath& as4_path) {
    size_t n2 = path_length(as_path), n4 = path_length(as4_path);
    if (as4_path.empty() || n4 > n2) return as_path;  // RFC 6793 4.2.3: ignore AS4_PATH
    // Keep the leading (n2 - n4) ASes of AS_PATH, then append AS4_PATH.
    size_t keep = n2 - n4;
    AsPath out;
    for (const auto& s : as_path) {
        if (keep == 0) break;
        if (s.type == as_set) {
            out.push_back(s);
            keep -= 1;
        } else if (s.type == as_sequence) {
            AsSegment t{s.type, {}};
            for (auto a : s.asns) {
                if (keep == 0) break;
                t.asns.push_back(a);
                --keep;
            }
            out.push_back(std::move(t));
        } else {
            out.push_back(s);  // confederation segments do not count
        }
    }
    for (const auto& s : as4_path) out.push_back(s);
    return out;
}

// ---- Update helpers -----------------------------------------------------------------
std::optional<AfiSafi> Update::end_of_rib() const {
    Update empty;
    if (*this == empty) return ipv4_unicast;
    if (withdrawn.empty() && nlri.empty() && !mp_reach && mp_unreach && mp_unreach->withdrawn.empty() &&
        mp_unreach->flows.empty() && mp_unreach->raw_nlri.empty() && attrs == Attributes{})
        return mp_unreach->af;
    return std::nullopt;
}

Update Update::end_of_rib(AfiSafi af) {
    Update u;
    if (af != ipv4_unicast) u.mp_unreach = MpUnreach{af, {}, {}, {}};
    return u;
}

// ---- framing ------------------------------------------------------------------------
Frame check_frame(std::span<const uint8_t> buf, size_t max_size) {
    Frame f;
    if (buf.size() < header_size) return f;
    for (int i = 0; i < 16; ++i)
        if (buf[i] != 0xff) {
            f.status = Frame::bad;
            f.error = note(err::header, err::not_synchronized);
            return f;
        }
    uint16_t len = get16(&buf[16]);
    uint8_t type = buf[18];
    if (type < 1 || type > 5) {
        f.status = Frame::bad;
        f.error = note(err::header, err::bad_type, {type});
        return f;
    }
    size_t min = 19, max = max_size;
    switch (static_cast<MsgType>(type)) {
        case MsgType::open: min = 29; break;
        case MsgType::update: min = 23; break;
        case MsgType::notification: min = 21; break;
        case MsgType::keepalive: max = 19; break;
        case MsgType::route_refresh: min = 23; break;
    }
    if (len < min || len > max) {
        f.status = Frame::bad;
        f.error = note(err::header, err::bad_length, Bytes{buf[16], buf[17]});
        return f;
    }
    f.length = len;
    if (buf.size() < len) return f;
    f.status = Frame::ok;
    f.type = static_cast<MsgType>(type);
    return f;
}

// ---- OPEN ---------------------------------------------------------------------------
namespace {
void encode_capability(Bytes& caps, uint8_t code, const Bytes& v) {
    put8(caps, code);
    put8(caps, static_cast<unsigned>(v.size()));
    caps.insert(caps.end(), v.begin(), v.end());
}
}  // namespace

Bytes encode_open(const Open& o) {
    Bytes b = header(MsgType::open);
    put8(b, o.version);
    put16(b, o.asn > 0xffff ? as_trans : o.asn);
    put16(b, o.hold_time);
    put32(b, o.router_id);
    Bytes caps;
    for (auto af : o.multiprotocol) encode_capability(caps, cap::multiprotocol, {uint8_t(af.afi >> 8), uint8_t(af.afi), 0, af.safi});
    if (o.route_refresh) encode_capability(caps, cap::route_refresh, {});
    if (o.extended_message) encode_capability(caps, cap::extended_message, {});
    if (o.graceful_restart) {
        const auto& g = *o.graceful_restart;
        Bytes v;
        put16(v, (g.restart_state ? 0x8000 : 0) | (g.notification ? 0x4000 : 0) | (g.restart_time & 0x0fff));
        for (const auto& f : g.families) {
            put16(v, f.af.afi);
            put8(v, f.af.safi);
            put8(v, f.forwarding ? 0x80 : 0);
        }
        encode_capability(caps, cap::graceful_restart, v);
    }
    if (o.four_octet_as) {
        Bytes v;
        put32(v, o.asn);
        encode_capability(caps, cap::four_octet_as, v);
    }
    if (!o.add_path.empty()) {
        Bytes v;
        for (const auto& a : o.add_path) {
            put16(v, a.af.afi);
            put8(v, a.af.safi);
            put8(v, a.send_receive);
        }
        encode_capability(caps, cap::add_path, v);
    }
    if (o.enhanced_route_refresh) encode_capability(caps, cap::enhanced_route_refresh, {});
    for (const auto& c : o.other) encode_capability(caps, c.code, c.value);
    // One Capabilities parameter holding all of them (RFC 5492 allows either form).
    if (caps.size() + 2 <= 255) {
        if (caps.empty()) {
            put8(b, 0);
        } else {
            put8(b, static_cast<unsigned>(caps.size() + 2));
            put8(b, 2);
            put8(b, static_cast<unsigned>(caps.size()));
            b.insert(b.end(), caps.begin(), caps.end());
        }
    } else {
        // RFC 9072 extended optional parameters.
        put8(b, 255);
        put8(b, 255);
        put16(b, static_cast<unsigned>(caps.size() + 3));
        put8(b, 2);
        put16(b, static_cast<unsigned>(caps.size()));
        b.insert(b.end(), caps.begin(), caps.end());
    }
    finish(b);
    return b;
}

Decoded decode_open(std::span<const uint8_t> body) {
    Open o;
    Reader r{body};
    if (!r.has(10)) return reset(o, note(err::header, err::bad_length), "OPEN shorter than 10 bytes");
    o.version = r.u8();
    o.my_as_field = r.u16();
    o.asn = o.my_as_field;
    o.hold_time = r.u16();
    o.router_id = r.u32();
    o.four_octet_as = false;
    size_t plen = r.u8();
    bool extended = false;
    if (plen == 255 && r.has(3) && r.d[r.p] == 255) {  // RFC 9072
        r.u8();
        plen = r.u16();
        extended = true;
    }
    if (o.version != 4) return reset(o, note(err::open, err::unsupported_version, {0, 4}), fmt::format("BGP version {} unsupported", o.version));
    if (o.hold_time == 1 || o.hold_time == 2) return reset(o, note(err::open, err::unacceptable_hold), fmt::format("hold time {} unacceptable", o.hold_time));
    if (o.router_id == 0) return reset(o, note(err::open, err::bad_bgp_id), "BGP identifier 0");
    if (plen != r.left()) return reset(o, note(err::open, 0), "OPEN optional parameter length does not match the message");
    while (r.left()) {
        size_t hdr = extended ? 3 : 2;
        if (!r.has(hdr)) return reset(o, note(err::open, 0), "OPEN optional parameter truncated");
        uint8_t ptype = r.u8();
        size_t len = extended ? r.u16() : r.u8();
        if (!r.has(len)) return reset(o, note(err::open, 0), "OPEN optional parameter overruns the message");
        Reader c{r.take(len)};
        if (ptype != 2) return reset(o, note(err::open, err::unsupported_param), fmt::format("optional parameter {} unsupported", ptype));
        while (c.left()) {
            if (!c.has(2)) return reset(o, note(err::open, 0), "capability header truncated");
            uint8_t code = c.u8();
            size_t cl = c.u8();
            if (!c.has(cl)) return reset(o, note(err::open, 0), "capability overruns its parameter");
            auto v = c.take(cl);
            bool ok = true;
            switch (code) {
                case cap::multiprotocol:
                    ok = cl == 4;
                    if (ok) o.multiprotocol.push_back(AfiSafi{get16(&v[0]), v[3]});
                    break;
                case cap::route_refresh: o.route_refresh = true; break;
                case cap::route_refresh_cisco: o.route_refresh = true; break;
                case cap::enhanced_route_refresh: o.enhanced_route_refresh = true; break;
                case cap::extended_message: o.extended_message = true; break;
                case cap::four_octet_as:
                    ok = cl == 4;
                    if (ok) {
                        o.four_octet_as = true;
                        o.asn = get32(&v[0]);
                    }
                    break;
                case cap::graceful_restart: {
                    ok = cl >= 2 && (cl - 2) % 4 == 0;
                    if (!ok) break;
                    GracefulRestart g;
                    uint16_t flags = get16(&v[0]);
                    g.restart_state = flags & 0x8000;
                    g.notification = flags & 0x4000;
                    g.restart_time = flags & 0x0fff;
                    for (size_t i = 2; i + 4 <= cl; i += 4)
                        g.families.push_back({AfiSafi{get16(&v[i]), v[i + 2]}, (v[i + 3] & 0x80) != 0});
                    o.graceful_restart = g;
                    break;
                }
                case cap::add_path:
                    ok = cl % 4 == 0;
                    for (size_t i = 0; ok && i + 4 <= cl; i += 4)
                        o.add_path.push_back({AfiSafi{get16(&v[i]), v[i + 2]}, v[i + 3]});
                    break;
                default: o.other.push_back(RawCapability{code, Bytes(v.begin(), v.end())});
            }
            if (!ok) o.other.push_back(RawCapability{code, Bytes(v.begin(), v.end())});  // malformed: kept raw, ignored
        }
    }
    return Decoded{o, Outcome::ok, std::nullopt, {}};
}

// ---- NOTIFICATION / KEEPALIVE / ROUTE-REFRESH -------------------------------------------
Bytes encode_notification(const Notification& n) {
    Bytes b = header(MsgType::notification);
    put8(b, n.code);
    put8(b, n.subcode);
    size_t room = max_message_size - b.size();
    b.insert(b.end(), n.data.begin(), n.data.begin() + static_cast<long>(std::min(room, n.data.size())));
    finish(b);
    return b;
}

Decoded decode_notification(std::span<const uint8_t> body) {
    Notification n;
    if (body.size() < 2) return reset(n, note(err::header, err::bad_length), "NOTIFICATION shorter than 2 bytes");
    n.code = body[0];
    n.subcode = body[1];
    n.data.assign(body.begin() + 2, body.end());
    return Decoded{n, Outcome::ok, std::nullopt, {}};
}

Bytes encode_keepalive() {
    Bytes b = header(MsgType::keepalive);
    finish(b);
    return b;
}

Bytes encode_route_refresh(const RouteRefresh& r) {
    Bytes b = header(MsgType::route_refresh);
    put16(b, r.af.afi);
    put8(b, r.subtype);
    put8(b, r.af.safi);
    finish(b);
    return b;
}

// ---- UPDATE encoding ----------------------------------------------------------------
size_t encoded_prefix_size(const Nlri& n, bool add_path) { return (add_path ? 4 : 0) + 1 + (n.prefix.length() + 7) / 8; }

void encode_prefix(Bytes& out, const Nlri& n, bool add_path) {
    if (add_path) put32(out, n.path_id);
    int len = n.prefix.length();
    put8(out, static_cast<unsigned>(len));
    auto bytes = n.prefix.addr().bytes();
    out.insert(out.end(), bytes.begin(), bytes.begin() + (len + 7) / 8);
}

void encode_attributes(Bytes& b, const Attributes& a, const Context& ctx) {
    Bytes v;
    auto emit = [&](uint8_t flags, uint8_t type) {
        put_attr(b, flags, type, v);
        v.clear();
    };
    if (a.origin) {
        put8(v, *a.origin);
        emit(wk, attr::origin);
    }
    if (a.as_path) {
        encode_as_path(v, *a.as_path, ctx.four_octet_as);
        emit(wk, attr::as_path);
    }
    if (a.next_hop && a.next_hop->is_v4()) {
        auto nb = a.next_hop->bytes();
        v.assign(nb.begin(), nb.end());
        emit(wk, attr::next_hop);
    }
    if (a.med) {
        put32(v, *a.med);
        emit(opt_nt, attr::med);
    }
    if (a.local_pref) {
        put32(v, *a.local_pref);
        emit(wk, attr::local_pref);
    }
    if (a.atomic_aggregate) emit(wk, attr::atomic_aggregate);
    auto aggregator = [&](const Aggregator& g, bool four) {
        if (four)
            put32(v, g.asn);
        else
            put16(v, g.asn > 0xffff ? as_trans : g.asn);
        auto nb = g.addr.bytes();
        v.insert(v.end(), nb.begin(), nb.begin() + 4);
    };
    if (a.aggregator) {
        aggregator(*a.aggregator, ctx.four_octet_as);
        emit(opt_t, attr::aggregator);
    }
    if (!a.communities.empty()) {
        for (auto c : a.communities) put32(v, c);
        emit(opt_t, attr::communities);
    }
    if (a.originator_id) {
        put32(v, *a.originator_id);
        emit(opt_nt, attr::originator_id);
    }
    if (!a.cluster_list.empty()) {
        for (auto c : a.cluster_list) put32(v, c);
        emit(opt_nt, attr::cluster_list);
    }
    if (!a.ext_communities.empty()) {
        for (auto& e : a.ext_communities) v.insert(v.end(), e.raw.begin(), e.raw.end());
        emit(opt_t, attr::ext_communities);
    }
    if (!ctx.four_octet_as) {
        if (a.as4_path)
            encode_as_path(v, *a.as4_path, true);
        else if (a.as_path && needs_as4(*a.as_path))
            encode_as_path(v, *a.as_path, true);
        if (!v.empty()) emit(opt_t, attr::as4_path);
        if (a.as4_aggregator)
            aggregator(*a.as4_aggregator, true);
        else if (a.aggregator && a.aggregator->asn > 0xffff)
            aggregator(*a.aggregator, true);
        if (!v.empty()) emit(opt_t, attr::as4_aggregator);
    }
    if (!a.large_communities.empty()) {
        for (auto& l : a.large_communities) {
            put32(v, l.global);
            put32(v, l.local1);
            put32(v, l.local2);
        }
        emit(opt_t, attr::large_communities);
    }
    for (const auto& u : a.unknown) {
        v = u.value;
        emit(static_cast<uint8_t>(u.flags & ~attr::flag_extended), u.type);
    }
}

namespace {
void encode_mp_reach(Bytes& b, const MpReach& m, const Context& ctx) {
    Bytes v;
    put16(v, m.af.afi);
    put8(v, m.af.safi);
    Bytes nh = m.raw_next_hop;
    for (auto& a : m.next_hops) {
        auto nb = a.bytes();
        nh.insert(nh.end(), nb.begin(), nb.end());
    }
    put8(v, static_cast<unsigned>(nh.size()));
    v.insert(v.end(), nh.begin(), nh.end());
    put8(v, 0);
    bool ap = ctx.add_path_tx(m.af);
    for (auto& n : m.nlri) encode_prefix(v, n, ap);
    for (auto& f : m.flows) encode_flowspec(v, f);
    v.insert(v.end(), m.raw_nlri.begin(), m.raw_nlri.end());
    put_attr(b, attr::flag_optional | attr::flag_extended, attr::mp_reach, v);
}
void encode_mp_unreach(Bytes& b, const MpUnreach& m, const Context& ctx) {
    Bytes v;
    put16(v, m.af.afi);
    put8(v, m.af.safi);
    bool ap = ctx.add_path_tx(m.af);
    for (auto& n : m.withdrawn) encode_prefix(v, n, ap);
    for (auto& f : m.flows) encode_flowspec(v, f);
    v.insert(v.end(), m.raw_nlri.begin(), m.raw_nlri.end());
    put_attr(b, attr::flag_optional | attr::flag_extended, attr::mp_unreach, v);
}
}  // namespace

Bytes encode_update(const Update& u, const Context& ctx) {
    Bytes b = header(MsgType::update);
    bool ap = ctx.add_path_tx(ipv4_unicast);
    put16(b, 0);
    size_t wstart = b.size();
    for (auto& n : u.withdrawn) encode_prefix(b, n, ap);
    set16(b, wstart - 2, static_cast<unsigned>(b.size() - wstart));
    put16(b, 0);
    size_t astart = b.size();
    // RFC 7606 5.1: MP_UNREACH/MP_REACH first so a receiver can always find the NLRI.
    if (u.mp_unreach) encode_mp_unreach(b, *u.mp_unreach, ctx);
    if (u.mp_reach) encode_mp_reach(b, *u.mp_reach, ctx);
    encode_attributes(b, u.attrs, ctx);
    set16(b, astart - 2, static_cast<unsigned>(b.size() - astart));
    for (auto& n : u.nlri) encode_prefix(b, n, ap);
    finish(b);
    return b;
}

Bytes encode(const Message& m, const Context& ctx) {
    struct V {
        const Context& ctx;
        Bytes operator()(const Open& o) const { return encode_open(o); }
        Bytes operator()(const Update& u) const { return encode_update(u, ctx); }
        Bytes operator()(const Notification& n) const { return encode_notification(n); }
        Bytes operator()(const Keepalive&) const { return encode_keepalive(); }
        Bytes operator()(const RouteRefresh& r) const { return encode_route_refresh(r); }
    };
    return std::visit(V{ctx}, m);
}

// ---- UPDATE decoding ----------------------------------------------------------------
Decoded decode_update(std::span<const uint8_t> body, const Context& ctx) {
    Update u;
    Decoded res{Update{}, Outcome::ok, std::nullopt, {}};
    auto escalate = [&](Outcome o, std::string why) {
        if (static_cast<int>(o) > static_cast<int>(res.outcome)) res.outcome = o;
        res.warnings.push_back(std::move(why));
    };
    auto fail = [&](Notification n, std::string why) {
        res.msg = u;
        res.outcome = Outcome::session_reset;
        res.error = std::move(n);
        res.warnings.push_back(std::move(why));
        return res;
    };
    Reader r{body};
    if (!r.has(2)) return fail(note(err::update, err::malformed_attr_list), "UPDATE truncated");
    size_t wlen = r.u16();
    if (!r.has(wlen + 2)) return fail(note(err::update, err::malformed_attr_list), "withdrawn routes length exceeds the UPDATE");
    std::string why;
    if (!decode_prefixes(r.take(wlen), net::Family::v4, ctx.add_path_rx(ipv4_unicast), u.withdrawn, why))
        return fail(note(err::update, err::malformed_attr_list), "withdrawn routes: " + why);
    size_t alen = r.u16();
    if (!r.has(alen)) return fail(note(err::update, err::malformed_attr_list), "total path attribute length exceeds the UPDATE");
    Reader a{r.take(alen)};
    auto nlri_bytes = r.take(r.left());

    std::bitset<256> seen;
    while (a.left()) {
        if (!a.has(3)) {
            escalate(Outcome::treat_as_withdraw, "path attribute header truncated");
            break;
        }
        uint8_t flags = a.u8(), type = a.u8();
        size_t len;
        if (flags & attr::flag_extended) {
            if (!a.has(2)) {
                escalate(Outcome::treat_as_withdraw, "path attribute header truncated");
                break;
            }
            len = a.u16();
        } else {
            len = a.u8();
        }
        if (!a.has(len)) {
            escalate(Outcome::treat_as_withdraw, fmt::format("{} length {} overruns the path attributes", attr_name(type), len));
            break;
        }
        auto v = a.take(len);
        const char* name = attr_name(type);
        if (seen[type]) {
            if (type == attr::mp_reach || type == attr::mp_unreach)
                return fail(note(err::update, err::malformed_attr_list), fmt::format("{} repeated", name));
            escalate(Outcome::attribute_discard, fmt::format("{} repeated: later copy discarded", name));
            continue;
        }
        seen[type] = true;
        uint8_t want = expected_flags(type);
        if (want == 0xff) {
            if (!(flags & attr::flag_optional))
                return fail(note(err::update, err::unrecognized_well_known, attr_data(flags, type, v)),
                            fmt::format("unrecognized well-known attribute {}", type));
            u.attrs.unknown.push_back(RawAttribute{flags, type, Bytes(v.begin(), v.end())});
            continue;
        }
        bool flags_ok = (flags & (attr::flag_optional | attr::flag_transitive)) == want;
        auto malformed = [&](const std::string& what) {
            // Attributes whose loss does not change routing are discarded; the rest
            // make the whole UPDATE a withdrawal (RFC 7606 7.x).
            if (type == attr::atomic_aggregate || type == attr::aggregator || type == attr::as4_path ||
                type == attr::as4_aggregator)
                escalate(Outcome::attribute_discard, fmt::format("{} {}: discarded", name, what));
            else
                escalate(Outcome::treat_as_withdraw, fmt::format("{} {}: treat-as-withdraw", name, what));
        };
        if (!flags_ok && type != attr::mp_reach && type != attr::mp_unreach) {
            malformed(fmt::format("flags 0x{:02x} wrong", flags));
            continue;
        }
        Reader x{v};
        switch (type) {
            case attr::origin:
                if (len != 1)
                    malformed("length " + std::to_string(len));
                else if (v[0] > origin_incomplete)
                    malformed("value " + std::to_string(v[0]));
                else
                    u.attrs.origin = v[0];
                break;
            case attr::as_path:
            case attr::as4_path: {
                AsPath p;
                int sz = (type == attr::as4_path || ctx.four_octet_as) ? 4 : 2;
                if (!decode_as_path(v, sz, p, why)) {
                    malformed(why);
                    break;
                }
                if (type == attr::as_path)
                    u.attrs.as_path = std::move(p);
                else if (ctx.four_octet_as)
                    escalate(Outcome::attribute_discard, "AS4_PATH on a 4-octet session: discarded");
                else
                    u.attrs.as4_path = std::move(p);
                break;
            }
            case attr::next_hop:
                if (len != 4)
                    malformed("length " + std::to_string(len));
                else
                    u.attrs.next_hop = net::IpAddr::v4(std::array<uint8_t, 4>{v[0], v[1], v[2], v[3]});
                break;
            case attr::med:
            case attr::local_pref:
            case attr::originator_id:
                if (len != 4) {
                    malformed("length " + std::to_string(len));
                    break;
                }
                (type == attr::med ? u.attrs.med : type == attr::local_pref ? u.attrs.local_pref : u.attrs.originator_id) = get32(v.data());
                break;
            case attr::atomic_aggregate:
                if (len != 0)
                    malformed("length " + std::to_string(len));
                else
                    u.attrs.atomic_aggregate = true;
                break;
            case attr::aggregator:
            case attr::as4_aggregator: {
                size_t asz = (type == attr::as4_aggregator || ctx.four_octet_as) ? 4 : 2;
                if (len != asz + 4) {
                    malformed("length " + std::to_string(len));
                    break;
                }
                Aggregator g{asz == 4 ? get32(v.data()) : get16(v.data()),
                             net::IpAddr::v4(std::array<uint8_t, 4>{v[asz], v[asz + 1], v[asz + 2], v[asz + 3]})};
                if (type == attr::aggregator)
                    u.attrs.aggregator = g;
                else if (ctx.four_octet_as)
                    escalate(Outcome::attribute_discard, "AS4_AGGREGATOR on a 4-octet session: discarded");
                else
                    u.attrs.as4_aggregator = g;
                break;
            }
            case attr::communities:
            case attr::cluster_list:
                if (len == 0 || len % 4) {
                    malformed("length " + std::to_string(len));
                    break;
                }
                for (size_t i = 0; i < len; i += 4)
                    (type == attr::communities ? u.attrs.communities : u.attrs.cluster_list).push_back(get32(&v[i]));
                break;
            case attr::ext_communities:
                if (len == 0 || len % 8) {
                    malformed("length " + std::to_string(len));
                    break;
                }
                for (size_t i = 0; i < len; i += 8) {
                    ExtCommunity e;
                    std::copy_n(v.begin() + static_cast<long>(i), 8, e.raw.begin());
                    u.attrs.ext_communities.push_back(e);
                }
                break;
            case attr::large_communities:
                if (len == 0 || len % 12) {
                    malformed("length " + std::to_string(len));
                    break;
                }
                for (size_t i = 0; i < len; i += 12)
                    u.attrs.large_communities.push_back({get32(&v[i]), get32(&v[i + 4]), get32(&v[i + 8])});
                break;
            case attr::mp_reach: {
                // A malformed MP_REACH makes the NLRI unknowable: session reset (RFC 7606 7.11).
                if (!x.has(5)) return fail(note(err::update, err::optional_attr, attr_data(flags, type, v)), "MP_REACH_NLRI truncated");
                MpReach m;
                m.af = AfiSafi{x.u16(), x.u8()};
                size_t nhl = x.u8();
                if (!x.has(nhl + 1)) return fail(note(err::update, err::optional_attr, attr_data(flags, type, v)), "MP_REACH_NLRI next hop truncated");
                auto nh = x.take(nhl);
                x.u8();  // reserved
                auto fam = family_of(m.af.afi);
                bool known = fam && (m.af.safi == safi_unicast || m.af.safi == safi_flowspec || m.af.safi == 2);
                if (known && m.af.safi != safi_flowspec) {
                    if (nhl == 4)
                        m.next_hops.push_back(*net::IpAddr::from_bytes(nh));
                    else if (nhl == 16)
                        m.next_hops.push_back(*net::IpAddr::from_bytes(nh));
                    else if (nhl == 32) {
                        m.next_hops.push_back(*net::IpAddr::from_bytes(nh.subspan(0, 16)));
                        m.next_hops.push_back(*net::IpAddr::from_bytes(nh.subspan(16, 16)));
                    } else {
                        m.raw_next_hop.assign(nh.begin(), nh.end());
                        escalate(Outcome::treat_as_withdraw, fmt::format("MP_REACH_NLRI next hop length {} invalid: treat-as-withdraw", nhl));
                    }
                } else {
                    m.raw_next_hop.assign(nh.begin(), nh.end());
                }
                auto rest = x.take(x.left());
                if (!known) {
                    m.raw_nlri.assign(rest.begin(), rest.end());
                } else if (m.af.safi == safi_flowspec) {
                    auto fl = decode_flowspec(rest, *fam);
                    if (!fl) {
                        m.raw_nlri.assign(rest.begin(), rest.end());
                        escalate(Outcome::treat_as_withdraw, "MP_REACH_NLRI FlowSpec: " + fl.error() + ": treat-as-withdraw");
                    } else {
                        m.flows = *fl;
                    }
                } else if (!decode_prefixes(rest, *fam, ctx.add_path_rx(m.af), m.nlri, why)) {
                    return fail(note(err::update, err::optional_attr, attr_data(flags, type, v)), "MP_REACH_NLRI: " + why);
                }
                u.mp_reach = std::move(m);
                break;
            }
            case attr::mp_unreach: {
                if (!x.has(3)) return fail(note(err::update, err::optional_attr, attr_data(flags, type, v)), "MP_UNREACH_NLRI truncated");
                MpUnreach m;
                m.af = AfiSafi{x.u16(), x.u8()};
                auto rest = x.take(x.left());
                auto fam = family_of(m.af.afi);
                bool known = fam && (m.af.safi == safi_unicast || m.af.safi == safi_flowspec || m.af.safi == 2);
                if (!known) {
                    m.raw_nlri.assign(rest.begin(), rest.end());
                } else if (m.af.safi == safi_flowspec) {
                    auto fl = decode_flowspec(rest, *fam);
                    if (!fl) return fail(note(err::update, err::optional_attr, attr_data(flags, type, v)), "MP_UNREACH_NLRI FlowSpec: " + fl.error());
                    m.flows = *fl;
                } else if (!decode_prefixes(rest, *fam, ctx.add_path_rx(m.af), m.withdrawn, why)) {
                    return fail(note(err::update, err::optional_attr, attr_data(flags, type, v)), "MP_UNREACH_NLRI: " + why);
                }
                u.mp_unreach = std::move(m);
                break;
            }
            default: break;
        }
    }

    if (!decode_prefixes(nlri_bytes, net::Family::v4, ctx.add_path_rx(ipv4_unicast), u.nlri, why))
        return fail(note(err::update, err::invalid_network), "NLRI: " + why);

    // Mandatory attributes when reachability is announced (RFC 7606 3.d: treat-as-withdraw).
    bool reach = !u.nlri.empty() || (u.mp_reach && (!u.mp_reach->nlri.empty() || !u.mp_reach->flows.empty()));
    if (reach && res.outcome != Outcome::treat_as_withdraw) {
        if (!u.attrs.origin) escalate(Outcome::treat_as_withdraw, "ORIGIN missing: treat-as-withdraw");
        if (!u.attrs.as_path) escalate(Outcome::treat_as_withdraw, "AS_PATH missing: treat-as-withdraw");
        if (!u.nlri.empty() && !u.attrs.next_hop)
            escalate(Outcome::treat_as_withdraw, "NEXT_HOP missing: treat-as-withdraw");
    }
    if (res.outcome == Outcome::treat_as_withdraw) {
        for (auto& n : u.nlri) u.withdrawn.push_back(n);
        u.nlri.clear();
        if (u.mp_reach) {
            if (!u.mp_unreach) u.mp_unreach = MpUnreach{u.mp_reach->af, {}, {}, {}};
            if (u.mp_unreach->af == u.mp_reach->af) {
                for (auto& n : u.mp_reach->nlri) u.mp_unreach->withdrawn.push_back(n);
                for (auto& f : u.mp_reach->flows) u.mp_unreach->flows.push_back(f);
            }
            u.mp_reach.reset();
        }
        u.attrs = Attributes{};
    }
    res.msg = std::move(u);
    return res;
}

Decoded decode(std::span<const uint8_t> msg, const Context& ctx) {
    auto f = check_frame(msg, ctx.max_size);
    if (f.status != Frame::ok || f.length != msg.size()) {
        Notification n = f.status == Frame::bad ? f.error : note(err::header, err::bad_length);
        return reset(Keepalive{}, n, f.status == Frame::bad ? n.name() : "message truncated");
    }
    auto body = msg.subspan(header_size);
    switch (f.type) {
        case MsgType::open: return decode_open(body);
        case MsgType::update: return decode_update(body, ctx);
        case MsgType::notification: return decode_notification(body);
        case MsgType::keepalive: return Decoded{Keepalive{}, Outcome::ok, std::nullopt, {}};
        case MsgType::route_refresh:
            if (body.size() != 4)
                return reset(RouteRefresh{}, note(err::route_refresh, 1, Bytes(msg.begin(), msg.end())), "ROUTE-REFRESH length invalid");
            return Decoded{RouteRefresh{AfiSafi{get16(&body[0]), body[3]}, body[2]}, Outcome::ok, std::nullopt, {}};
    }
    return reset(Keepalive{}, note(err::header, err::bad_type), "bad type");
}

}  // namespace edge::bgp
