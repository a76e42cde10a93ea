// MRT (RFC 6396/8050) framing and bodies, the attribute reader, and the bgpdump -m
// formatter on hand-built records; plus hostile input (every truncation of a record).
#include <doctest/doctest.h>

#include <array>
#include <random>

#include "mrt/mrt.hpp"

using namespace edge::mrt;
namespace bgp = edge::bgp;

namespace {
using B = std::vector<uint8_t>;
void u16(B& b, uint16_t v) { b.push_back(uint8_t(v >> 8)), b.push_back(uint8_t(v)); }
void u32(B& b, uint32_t v) { u16(b, uint16_t(v >> 16)), u16(b, uint16_t(v)); }
void cat(B& b, const B& x) { b.insert(b.end(), x.begin(), x.end()); }

B attr(uint8_t flags, uint8_t type, const B& v) {
    B b{flags, type};
    if (v.size() > 255) {
        b[0] |= 0x10;
        u16(b, uint16_t(v.size()));
    } else {
        b.push_back(uint8_t(v.size()));
    }
    cat(b, v);
    return b;
}
B aspath(std::initializer_list<std::pair<uint8_t, std::vector<uint32_t>>> segs, int asn_len) {
    B b;
    for (auto& [t, asns] : segs) {
        b.push_back(t);
        b.push_back(uint8_t(asns.size()));
        for (auto a : asns) asn_len == 4 ? u32(b, a) : u16(b, uint16_t(a));
    }
    return b;
}
B update(const B& withdrawn, const B& attrs, const B& nlri) {
    B body;
    u16(body, uint16_t(withdrawn.size()));
    cat(body, withdrawn);
    u16(body, uint16_t(attrs.size()));
    cat(body, attrs);
    cat(body, nlri);
    B m(16, 0xff);
    u16(m, uint16_t(19 + body.size()));
    m.push_back(2);
    cat(m, body);
    return m;
}
B bgp4mp_record(uint32_t ts, uint16_t subtype, const B& msg, bool as4) {
    B body;
    if (as4) u32(body, 65001), u32(body, 65000);
    else u16(body, 65001), u16(body, 65000);
    u16(body, 0), u16(body, 1);
    cat(body, {192, 0, 2, 1, 192, 0, 2, 254});
    cat(body, msg);
    B r;
    u32(r, ts), u16(r, type_bgp4mp), u16(r, subtype), u32(r, uint32_t(body.size()));
    cat(r, body);
    return r;
}

std::string format(const B& rec) {
    Header h;
    REQUIRE(parse_header(rec, h) == 12);
    REQUIRE(rec.size() == 12 + h.length);
    Bgp4mp m;
    std::string why;
    REQUIRE(parse_bgp4mp(h, std::span(rec).subspan(12), m, why));
    BgpdumpFormatter f;
    std::string out;
    f.bgp4mp(h, m, out);
    return out;
}
}  // namespace

TEST_CASE("header: plain and extended timestamp") {
    B r;
    u32(r, 1700000000), u16(r, type_bgp4mp_et), u16(r, 4), u32(r, 4 + 3), u32(r, 123456);
    cat(r, {1, 2, 3});
    Header h;
    CHECK(parse_header(std::span(r).first(15), h) == 0);
    CHECK(parse_header(r, h) == 16);
    CHECK(h.length == 3);
    CHECK(h.microseconds == 123456);
    CHECK(type_name(17) == "BGP4MP_ET");
    CHECK(subtype_name(16, 9) == "MESSAGE_AS4_ADDPATH");
    CHECK(subtype_name(13, 10) == "RIB_IPV6_UNICAST_ADDPATH");
}

TEST_CASE("bgpdump -m: IPv4 update with communities, AS_SET and aggregator") {
    B attrs = attr(0x40, 1, {0});
    cat(attrs, attr(0x40, 2, aspath({{bgp::as_sequence, {65001, 65002}}, {bgp::as_set, {65003, 65004}}}, 4)));
    cat(attrs, attr(0x40, 3, {192, 0, 2, 1}));
    cat(attrs, attr(0x80, 4, {0, 0, 0, 10}));
    cat(attrs, attr(0x40, 6, {}));
    B agg;
    u32(agg, 65009), cat(agg, {192, 0, 2, 9});
    cat(attrs, attr(0xc0, 7, agg));
    B comm;
    u32(comm, 65001u << 16 | 100), u32(comm, 0xFFFFFF01), u32(comm, 0xFFFFFF03);
    cat(attrs, attr(0xc0, 8, comm));
    auto rec = bgp4mp_record(1700000000, bgp4mp::message_as4, update({16, 10, 9}, attrs, {24, 198, 51, 100}), true);
    CHECK(format(rec) ==
          "BGP4MP|1700000000|W|192.0.2.1|65001|10.9.0.0/16\n"
          "BGP4MP|1700000000|A|192.0.2.1|65001|198.51.100.0/24|65001 65002 {65003,65004}|IGP|192.0.2.1|0|10|65001:100 no-export local-AS|AG|65009 192.0.2.9|\n");
}

TEST_CASE("bgpdump -m fast path: every digit count, a line head reused and renewed, fallbacks") {
    // Numbers at every decimal boundary, in the AS path, LOCAL_PREF, MED and the peer AS.
    std::vector<uint32_t> nums{0, 9, 10, 99, 100, 999, 1000, 9999, 10000, 99999, 100000, 999999, 1000000,
                               9999999, 10000000, 99999999, 100000000, 999999999, 1000000000, 4294967295u};
    std::string path_text;
    for (auto n : nums) path_text += (path_text.empty() ? "" : " ") + std::to_string(n);
    B attrs = attr(0x40, 1, {1});
    cat(attrs, attr(0x40, 2, aspath({{bgp::as_sequence, nums}}, 4)));
    cat(attrs, attr(0x40, 3, {10, 0, 0, 255}));
    B lp, med;
    u32(lp, 1000000000), u32(med, 4294967295u);
    cat(attrs, attr(0x40, 5, lp));
    cat(attrs, attr(0x80, 4, med));
    cat(attrs, attr(0xc0, 8, {}));         // empty COMMUNITIES
    cat(attrs, attr(0xc0, 99, {1, 2, 3}));  // unknown: not shown
    auto msg = update({0}, attrs, {32, 1, 2, 3, 4, 0, 12, 0xab, 0xcd});
    auto rec = bgp4mp_record(1700000000, bgp4mp::message_as4, msg, true);
    std::string tail = "|" + path_text + "|EGP|10.0.0.255|1000000000|4294967295||NAG||\n";
    CHECK(format(rec) == "BGP4MP|1700000000|W|192.0.2.1|65001|0.0.0.0/0\n"
                         "BGP4MP|1700000000|A|192.0.2.1|65001|1.2.3.4/32" + tail +
                         "BGP4MP|1700000000|A|192.0.2.1|65001|0.0.0.0/0" + tail +
                         "BGP4MP|1700000000|A|192.0.2.1|65001|171.205.0.0/12" + tail);

    // One formatter, several messages: the cached line head follows time, peer and AS.
    Header h;
    REQUIRE(parse_header(rec, h) == 12);
    Bgp4mp m;
    std::string why;
    REQUIRE(parse_bgp4mp(h, std::span(rec).subspan(12), m, why));
    B keep = update({}, attr(0x40, 1, {0}), {8, 10});
    m.msg = keep;
    BgpdumpFormatter f;
    std::string out;
    f.bgp4mp(h, m, out);
    f.bgp4mp(h, m, out);
    m.peer_as = 4200000000u;
    f.bgp4mp(h, m, out);
    h.timestamp = 1700000001;
    f.bgp4mp(h, m, out);
    m.peer_ip.b[3] = 9;
    f.bgp4mp(h, m, out);
    h.type = type_bgp4mp_et;
    h.microseconds = 42;
    f.bgp4mp(h, m, out);
    m.subtype = bgp4mp::message_as4_local;
    f.bgp4mp(h, m, out);
    const char* rest = "|10.0.0.0/8||IGP|255.255.255.255|0|0||NAG||\n";
    CHECK(out == std::string("BGP4MP|1700000000|A|192.0.2.1|65001") + rest + "BGP4MP|1700000000|A|192.0.2.1|65001" + rest +
                     "BGP4MP|1700000000|A|192.0.2.1|4200000000" + rest + "BGP4MP|1700000001|A|192.0.2.1|4200000000" + rest +
                     "BGP4MP|1700000001|A|192.0.2.9|4200000000" + rest + "BGP4MP_ET|1700000001.000042|A|192.0.2.9|4200000000" + rest +
                     "BGP4MP_ET_LOCAL|1700000001.000042|A|192.0.2.9|4200000000" + rest);
    CHECK(f.warnings.empty());

    // What the fast path leaves to the general one still comes out (with its warnings).
    B dup = attr(0x40, 1, {0});
    cat(dup, attr(0x40, 1, {2}));
    auto drec = bgp4mp_record(1, bgp4mp::message_as4, update({}, dup, {24, 198, 51, 100}), true);
    CHECK(format(drec) == "BGP4MP|1|A|192.0.2.1|65001|198.51.100.0/24||INCOMPLETE|255.255.255.255|0|0||NAG||\n");
    B longlen = attr(0x40, 1, {0});
    cat(longlen, attr(0x40, 3, {192, 0, 2, 1}));
    auto lrec = bgp4mp_record(1, bgp4mp::message_as4, update({}, longlen, {33, 198, 51, 100, 0, 0}), true);
    CHECK(format(lrec).empty());  // a /33 in IPv4 NLRI: bgpdump prints nothing for it
}

TEST_CASE("bgpdump -m fast path: the text kept between UPDATEs follows every field; Text equals std::string") {
    // UPDATEs that differ from one another in one field after the AS path at a time
    // (origin, next hop, LOCAL_PREF, MED, ATOMIC_AGGREGATE, AGGREGATOR, communities of
    // every length around the kept 64 bytes), several prefixes, withdrawals, and messages
    // the general path takes, in random order through one formatter: each must print what
    // a fresh formatter prints for it alone, into a std::string and into a Text alike.
    std::mt19937 rng(11);
    auto pick = [&](int n) { return int(rng() % unsigned(n)); };
    // The fields after the path; each message changes one of them (or none) from the last.
    int origin = 0, nh = 1, lp = 1, med = 0, ag = 0;
    bool atomic = false, comms_present = false;
    std::vector<uint32_t> comms;
    const uint32_t cvals[] = {65001u << 16 | 1, 65001u << 16 | 2, 0xFFFFFF01u, 0xFFFFFF02u, 0xFFFFFF03u, 7u << 16 | 65535};
    std::vector<B> msgs;
    for (int i = 0; i < 4000; ++i) {
        switch (pick(10)) {
        case 0: origin = pick(5); break;  // 4: absent; 3: bgpdump's INCOMPLETE
        case 1: nh = pick(4); break;
        case 2: lp = pick(3); break;
        case 3: med = pick(4); break;
        case 4: atomic = !atomic; break;
        case 5: ag = pick(5); break;
        case 6:  // another length (around the 64 bytes kept), or present and empty
            comms.resize(size_t(std::array{0, 1, 2, 15, 16, 17, 40}[size_t(pick(7))]), cvals[0]);
            comms_present = !comms.empty() || pick(2);
            break;
        case 7:  // one community changes, often the last
            if (!comms.empty()) comms[pick(2) ? comms.size() - 1 : size_t(pick(int(comms.size())))] = cvals[pick(6)];
            break;
        default: break;  // only the path and prefixes differ
        }
        B attrs, v;
        if (origin < 4) cat(attrs, attr(0x40, 1, {uint8_t(origin)}));
        std::vector<uint32_t> path;
        for (int k = pick(4); k >= 0; --k) path.push_back(pick(2) ? 65001u + unsigned(pick(3)) : uint32_t(rng()));
        cat(attrs, attr(0x40, 2, aspath({{bgp::as_sequence, path}}, 4)));
        if (nh == 1) cat(attrs, attr(0x40, 3, {192, 0, 2, 1}));
        else if (nh == 2) cat(attrs, attr(0x40, 3, {192, 0, 2, 2}));
        else if (nh == 3) cat(attrs, attr(0x40, 3, {255, 255, 255, 255}));
        if (lp) u32(v, lp == 1 ? 100 : 200), cat(attrs, attr(0x40, 5, v));
        v.clear();
        if (med) u32(v, uint32_t(med - 1)), cat(attrs, attr(0x80, 4, v));
        if (atomic) cat(attrs, attr(0x40, 6, {}));
        if (ag == 1) cat(attrs, attr(0xc0, 7, {0, 0, 0xfd, 0xe9, 192, 0, 2, 0}));
        else if (ag == 2) cat(attrs, attr(0xc0, 7, {0, 0, 0xfd, 0xe9, 192, 0, 2, 1}));
        else if (ag == 3) cat(attrs, attr(0xc0, 7, {0, 0, 0xfd, 0xea, 192, 0, 2, 0}));
        else if (ag == 4) cat(attrs, attr(0xc0, 7, {0, 0, 0xfd, 0xe9, 255, 255, 255, 255}));
        if (comms_present) {
            B c;
            for (auto x : comms) u32(c, x);
            cat(attrs, attr(0xc0, 8, c));
        }
        if (!pick(30)) cat(attrs, attr(0xc0, 17, aspath({{bgp::as_sequence, {65001}}}, 4)));  // AS4_PATH: general path
        B nlri, wd;
        for (int k = pick(4); k > 0; --k) {
            uint8_t len = uint8_t(8 + pick(25));
            nlri.push_back(len);
            for (unsigned j = 0; j < (len + 7u) / 8u; ++j) nlri.push_back(uint8_t(pick(256)));
        }
        if (!pick(5)) wd = {16, 10, uint8_t(pick(256))};
        msgs.push_back(bgp4mp_record(1700000000 + unsigned(pick(2)), bgp4mp::message_as4, update(wd, attrs, nlri), true));
    }
    BgpdumpFormatter kept, kept_text;
    std::string all, each;
    Text all_text;
    size_t shown = 0;
    for (auto& rec : msgs) {
        Header h;
        REQUIRE(parse_header(rec, h) == 12);
        Bgp4mp m;
        std::string why;
        REQUIRE(parse_bgp4mp(h, std::span(rec).subspan(12), m, why));
        std::string one;
        kept.bgp4mp(h, m, one);
        kept_text.bgp4mp(h, m, all_text);
        std::string fresh = format(rec);
        if (one != fresh && shown++ < 3) CHECK(one == fresh);
        all += one;
        each += fresh;
        kept.warnings.clear(), kept_text.warnings.clear();
    }
    CHECK(shown == 0);
    CHECK(all == each);
    CHECK(std::string(all_text.view()) == each);
    CHECK(each.size() > 100000);
}

TEST_CASE("AS4_PATH merge on a 2-octet session: bgpdump text and RFC 6793 path") {
    B attrs = attr(0x40, 1, {2});
    cat(attrs, attr(0x40, 2, aspath({{bgp::as_sequence, {65001, 23456, 23456}}}, 2)));
    cat(attrs, attr(0x40, 3, {192, 0, 2, 1}));
    cat(attrs, attr(0xc0, 17, aspath({{bgp::as_sequence, {4200000001, 4200000002}}}, 4)));
    auto rec = bgp4mp_record(1, bgp4mp::message, update({}, attrs, {24, 198, 51, 100}), false);
    CHECK(format(rec) == "BGP4MP|1|A|192.0.2.1|65001|198.51.100.0/24|65001 4200000001 4200000002|INCOMPLETE|192.0.2.1|0|0||NAG||\n");
    Attrs a;
    AttrOptions o;
    o.asn_len = 2;
    parse_attributes(attrs, o, a);
    CHECK(a.warnings.empty());
    CHECK(bgp::to_string(as_path(a)) == "65001 4200000001 4200000002");
}

TEST_CASE("malformed attributes are warnings, not failures") {
    B attrs = attr(0x40, 1, {0});
    cat(attrs, attr(0x40, 2, {7, 1, 0, 0, 0xfd, 0xe9}));  // segment type 7
    cat(attrs, attr(0x40, 3, {192, 0, 2, 1}));
    cat(attrs, B{0x40, 5, 9, 0});  // LOCAL_PREF longer than what is left
    Attrs a;
    parse_attributes(attrs, AttrOptions{}, a);
    CHECK(a.as_path_error);
    CHECK(a.warnings.size() == 2);
    CHECK(!a.has(5));
    auto rec = bgp4mp_record(1, bgp4mp::message_as4, update({}, attrs, {24, 198, 51, 100}), true);
    CHECK(format(rec) == "BGP4MP|1|A|192.0.2.1|65001|198.51.100.0/24|! Error !|IGP|192.0.2.1|0|0||NAG||\n");
}

TEST_CASE("TABLE_DUMP_V2 peer index and RIB with an abbreviated MP_REACH") {
    B pit;
    cat(pit, {192, 0, 2, 250});
    u16(pit, 0);
    u16(pit, 2);
    cat(pit, {0, 192, 0, 2, 1, 192, 0, 2, 1});
    u16(pit, 65001);
    cat(pit, {3, 192, 0, 2, 2, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2});
    u32(pit, 4200000002);
    PeerIndex pi;
    std::string why;
    REQUIRE(parse_peer_index(pit, pi, why));
    REQUIRE(pi.peers.size() == 2);
    CHECK(pi.peers[1].asn == 4200000002);
    CHECK(pi.peers[1].ip.to_string() == "2001:db8::2");
    PeerIndex cut;
    CHECK(!parse_peer_index(std::span(pit).first(pit.size() - 1), cut, why));
    CHECK(cut.peers.size() == 1);

    B attrs = attr(0x40, 1, {0});
    cat(attrs, attr(0x40, 2, aspath({{bgp::as_sequence, {4200000002}}}, 4)));
    cat(attrs, attr(0x80, 14, {16, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}));
    B rib;
    u32(rib, 7);
    cat(rib, {32, 0x20, 0x01, 0x0d, 0xb8});
    u16(rib, 1);
    u16(rib, 1), u32(rib, 1600000000), u16(rib, uint16_t(attrs.size()));
    cat(rib, attrs);
    Rib r;
    REQUIRE(parse_rib(td2::rib_ipv6_unicast, rib, r, why));
    Header h;
    h.timestamp = 1700000000;
    h.type = type_table_dump_v2;
    BgpdumpFormatter f;
    std::string out;
    f.rib(h, r, pi, out);
    CHECK(out == "TABLE_DUMP2|1700000000|B|2001:db8::2|4200000002|2001:db8::/32|4200000002|IGP|2001:db8::2|0|0||NAG||\n");
    CHECK(!parse_rib(td2::rib_ipv6_unicast, std::span(rib).first(rib.size() - 3), r, why));
}

TEST_CASE("ADD-PATH NLRI and bad prefix lengths") {
    std::vector<Prefix> ps;
    std::vector<std::string> w;
    CHECK(parse_prefixes(B{0, 0, 0, 5, 24, 10, 1, 2}, true, ps, &w));
    REQUIRE(ps.size() == 1);
    CHECK(ps[0].path_id == 5);
    ps.clear();
    CHECK(!parse_prefixes(B{24, 10, 1}, false, ps, &w));
    CHECK(!w.empty());
}

TEST_CASE("hostile input: every truncation and random bytes never crash") {
    B attrs = attr(0x40, 1, {0});
    cat(attrs, attr(0x40, 2, aspath({{bgp::as_sequence, {65001}}}, 4)));
    cat(attrs, attr(0x80, 14, {0, 2, 1, 16, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 48, 0x20, 0x01, 0x0d, 0xb8, 0, 1}));
    auto rec = bgp4mp_record(1, bgp4mp::message_as4_addpath, update({}, attrs, {}), true);
    BgpdumpFormatter f;
    for (size_t n = 0; n <= rec.size(); ++n) {
        Header h;
        if (!parse_header(std::span(rec).first(n), h)) continue;
        auto body = std::span(rec).subspan(12, std::min<size_t>(h.length, n - 12));
        Bgp4mp m;
        std::string why, out;
        if (parse_bgp4mp(h, body, m, why)) f.bgp4mp(h, m, out);
    }
    std::mt19937 rng(1);
    for (int i = 0; i < 2000; ++i) {
        B junk(rng() % 200);
        for (auto& c : junk) c = uint8_t(rng());
        Attrs a;
        AttrOptions o;
        o.asn_len = (i & 1) ? 2 : 4;
        o.addpath = i & 2;
        parse_attributes(junk, o, a);
        (void)as_path(a);
        Rib r;
        PeerIndex pi;
        TableDump t;
        std::string why;
        parse_rib(uint16_t(2 + (i % 10)), junk, r, why);
        parse_peer_index(junk, pi, why);
        parse_table_dump(uint16_t(1 + i % 4), junk, t, why);
    }
}
