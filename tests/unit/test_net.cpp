// Unit tests for the net module: addresses, flow text, checksums, and the
// builder/parser pair (round trips, truncation at every length, random bytes).
#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include "net/addr.hpp"
#include "net/build.hpp"
#include "net/checksum.hpp"
#include "net/flow.hpp"
#include "net/packet.hpp"

using namespace edge::net;

namespace {

IpAddr ip(std::string_view s) { return IpAddr::parse(s).value(); }

const Mac kMacA{0x02, 0, 0, 0, 0, 0x0a};
const Mac kMacB{0x02, 0, 0, 0, 0, 0x0b};

std::string flow_text(const edge_flow_key& k) { return format_flow(k); }

// Every TCP/UDP/ICMP checksum in a parsed, complete packet verifies.
void check_checksums(const std::vector<uint8_t>& frame, LinkType link) {
    Packet p = parse_packet(frame, link);
    REQUIRE(p.ok());
    if (p.ip_version == 4) {
        CHECK(p.ip_checksum_ok);
        CHECK(internet_checksum(std::span(frame).subspan(p.l3_off, p.l3_len)) == 0);
    }
    if (!p.has_l4) return;
    // Recompute independently of the parser's own verification.
    std::size_t end = p.l3_off + (p.ip_version == 4 ? (frame[p.l3_off + 2] << 8 | frame[p.l3_off + 3])
                                                    : 40 + (frame[p.l3_off + 4] << 8 | frame[p.l3_off + 5]));
    auto seg = std::span(frame).subspan(p.l4_off, end - p.l4_off);
    if (p.proto == 1)
        CHECK(internet_checksum(seg) == 0);
    else
        CHECK(transport_checksum(p.src, p.dst, p.proto, seg) == 0);
    if (!p.fragment) {  // the parser only verifies whole datagrams
        CHECK(p.l4_checksum_checked);
        CHECK(p.l4_checksum_ok);
    }
}

}  // namespace

// ---------------------------------------------------------------- addresses

TEST_CASE("IpAddr parse and format") {
    auto a = IpAddr::parse("192.0.2.1");
    REQUIRE(a);
    CHECK(a->is_v4());
    CHECK(a->to_string() == "192.0.2.1");
    CHECK(a->bytes().size() == 4);
    CHECK(a->bytes()[0] == 192);
    CHECK(a->raw()[4] == 0);
    CHECK(*a == IpAddr::v4(0xc0000201u));

    auto b = IpAddr::parse("2001:DB8:0:0:0:0:0:1");
    REQUIRE(b);
    CHECK(b->is_v6());
    CHECK(b->to_string() == "2001:db8::1");  // RFC 5952 canonical
    CHECK(ip("2001:db8:0:0:1:0:0:1").to_string() == "2001:db8::1:0:0:1");
    CHECK(ip("::").to_string() == "::");
    CHECK(ip("::ffff:192.0.2.1").to_string() == "::ffff:192.0.2.1");

    for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", " 1.2.3.4", "1.2.3.4 ",
                            "2001:db8:::1", "fe80::1%eth0", "[::1]", "gibberish", "1.2.3.-4",
                            "2001:db8::1::2"}) {
        auto r = IpAddr::parse(bad);
        CHECK_MESSAGE(!r, bad);
        CHECK(!r.error().empty());
    }
    CHECK(IpAddr::parse("1.2.3").error() == "bad address '1.2.3'");
    CHECK_THROWS_AS((void)IpAddr::parse("x").value(), std::logic_error);
}

TEST_CASE("IpAddr compare, hash, from_bytes") {
    CHECK(ip("10.0.0.1") < ip("10.0.0.2"));
    CHECK(ip("255.255.255.255") < ip("::"));  // IPv4 orders first
    CHECK(ip("::1") != ip("0.0.0.1"));
    std::unordered_set<IpAddr> set{ip("10.0.0.1"), ip("10.0.0.1"), ip("::1")};
    CHECK(set.size() == 2);
    uint8_t four[4] = {10, 1, 2, 3};
    CHECK(IpAddr::from_bytes(four)->to_string() == "10.1.2.3");
    uint8_t five[5] = {};
    CHECK(!IpAddr::from_bytes(five));
}

TEST_CASE("Prefix parse, contains, rejections") {
    auto p = Prefix::parse("10.0.0.0/8");
    REQUIRE(p);
    CHECK(p->length() == 8);
    CHECK(p->to_string() == "10.0.0.0/8");
    CHECK(p->contains(ip("10.255.1.2")));
    CHECK(!p->contains(ip("11.0.0.0")));
    CHECK(!p->contains(ip("::a00:1")));

    auto p6 = Prefix::parse("2001:db8::/32");
    REQUIRE(p6);
    CHECK(p6->contains(ip("2001:db8:ffff::1")));
    CHECK(!p6->contains(ip("2001:db9::")));
    CHECK(p6->to_string() == "2001:db8::/32");

    CHECK(Prefix::parse("192.0.2.7")->to_string() == "192.0.2.7/32");
    CHECK(Prefix::parse("::1")->length() == 128);
    CHECK(Prefix::parse("0.0.0.0/0")->contains(ip("1.2.3.4")));
    CHECK(Prefix::parse("10.1.2.3/32")->contains(ip("10.1.2.3")));
    CHECK(Prefix::parse("2001:db8::/127")->contains(ip("2001:db8::1")));
    CHECK(!Prefix::parse("2001:db8::/127")->contains(ip("2001:db8::2")));

    CHECK(Prefix::parse("10.0.0.1/8").error() == "host bits set in '10.0.0.1/8' (did you mean 10.0.0.0/8?)");
    CHECK(!Prefix::parse("2001:db8::1/32"));
    CHECK(Prefix::parse("10.0.0.0/33").error() == "bad prefix length '33' (0..32)");
    for (const char* bad : {"10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/8/8", "/8", "::/129", "::/0128"})
        CHECK_MESSAGE(!Prefix::parse(bad), bad);

    CHECK(Prefix::masked(ip("10.1.2.3"), 12)->to_string() == "10.0.0.0/12");
    CHECK(Prefix::masked(ip("2001:db8:abcd::1"), 36)->to_string() == "2001:db8:a000::/36");
    CHECK(!Prefix::masked(ip("10.1.2.3"), 33));
}

TEST_CASE("Endpoint parse and format") {
    auto e = Endpoint::parse("1.2.3.4:80");
    REQUIRE(e);
    CHECK(e->port == 80);
    CHECK(e->to_string() == "1.2.3.4:80");
    auto e6 = Endpoint::parse("[2001:db8::1]:443");
    REQUIRE(e6);
    CHECK(e6->addr == ip("2001:db8::1"));
    CHECK(e6->to_string() == "[2001:db8::1]:443");
    CHECK(Endpoint::parse("0.0.0.0:0")->port == 0);
    CHECK(Endpoint::parse("0.0.0.0:65535")->port == 65535);

    CHECK(Endpoint::parse("1.2.3.4:70000").error() == "bad port '70000'");
    CHECK(Endpoint::parse("1.2.3.4").error() == "missing port in '1.2.3.4'");
    CHECK(Endpoint::parse("2001:db8::1:443").error().find("needs brackets") != std::string::npos);
    for (const char* bad : {"1.2.3.4:", ":80", "[2001:db8::1]", "[2001:db8::1:443", "[1.2.3.4]:80",
                            "1.2.3.4:8o", "1.2.3.4:-1", "[2001:db8::1]443", "1.2.3.4:000080"})
        CHECK_MESSAGE(!Endpoint::parse(bad), bad);
}

// ---------------------------------------------------------------- flows

TEST_CASE("make_flow_key layout") {
    auto k = make_flow_key(ip("198.51.100.7"), 5555, ip("203.0.113.10"), 443, 6);
    const auto* raw = reinterpret_cast<const uint8_t*>(&k);
    CHECK(sizeof k == 40);
    CHECK(raw[0] == 198);
    CHECK(raw[4] == 0);
    CHECK(raw[16] == 203);
    CHECK(raw[32] == 0x15);  // 5555 = 0x15b3, big-endian
    CHECK(raw[33] == 0xb3);
    CHECK(raw[34] == 0x01);
    CHECK(raw[35] == 0xbb);
    CHECK(k.proto == 6);
    CHECK(k.family == EDGE_FAMILY_V4);
    CHECK(raw[38] == 0);
    CHECK(raw[39] == 0);
    CHECK(flow_sport(k) == 5555);
    CHECK(flow_dst(k) == ip("203.0.113.10"));
    auto k6 = make_flow_key(ip("2001:db8::1"), 1, ip("2001:db8::2"), 2, 17);
    CHECK(k6.family == EDGE_FAMILY_V6);
    CHECK(k6.dst[15] == 2);
}

TEST_CASE("proto names") {
    CHECK(proto_to_string(6) == "tcp");
    CHECK(proto_to_string(17) == "udp");
    CHECK(proto_to_string(1) == "icmp");
    CHECK(proto_to_string(58) == "icmpv6");
    CHECK(proto_to_string(47) == "47");
    CHECK(proto_from_string("tcp") == 6);
    CHECK(proto_from_string("132") == 132);
    CHECK(proto_from_string("0") == 0);
    CHECK(!proto_from_string("256"));
    CHECK(!proto_from_string("TCP"));
    CHECK(!proto_from_string(""));
    CHECK(!proto_from_string("1x"));
}

TEST_CASE("format_flow / parse_flow round trips") {
    auto k = make_flow_key(ip("198.51.100.7"), 5555, ip("203.0.113.10"), 443, 6);
    CHECK(format_flow(k) == "198.51.100.7:5555-203.0.113.10:443/tcp");
    auto k6 = make_flow_key(ip("2001:db8::1"), 5555, ip("2001:db8::2"), 443, 17);
    CHECK(format_flow(k6) == "[2001:db8::1]:5555-[2001:db8::2]:443/udp");
    auto ki = make_flow_key(ip("10.0.0.1"), 0, ip("10.0.0.2"), 0, 1);
    CHECK(format_flow(ki) == "10.0.0.1-10.0.0.2/icmp");
    auto ki6 = make_flow_key(ip("2001:db8::1"), 0, ip("2001:db8::2"), 0, 58);
    CHECK(format_flow(ki6) == "2001:db8::1-2001:db8::2/icmpv6");
    auto kg = make_flow_key(ip("10.0.0.1"), 0, ip("10.0.0.2"), 0, 47);
    CHECK(format_flow(kg) == "10.0.0.1:0-10.0.0.2:0/47");

    for (const auto& key : {k, k6, ki, ki6, kg}) {
        auto r = parse_flow(format_flow(key));
        REQUIRE_MESSAGE(r, format_flow(key));
        CHECK(*r == key);
    }
    CHECK(*parse_flow("198.51.100.7:5555-203.0.113.10:443/6") == k);
    CHECK(*parse_flow("[2001:db8::1]-[2001:db8::2]/icmpv6") == ki6);
    CHECK(*parse_flow("10.0.0.1:0-10.0.0.2:0/icmp") == ki);
    CHECK(flow_sport(*parse_flow("10.0.0.1:7-10.0.0.2:9/icmp")) == 7);
}

TEST_CASE("parse_flow errors") {
    auto err = [](std::string_view s) { return parse_flow(s).error(); };
    CHECK(err("") == "expected SRC:PORT-DST:PORT/PROTO");
    CHECK(err("1.2.3.4:1-5.6.7.8:2") == "expected SRC:PORT-DST:PORT/PROTO");
    CHECK(err("1.2.3.4:1 5.6.7.8:2/tcp") == "expected SRC:PORT-DST:PORT/PROTO");
    CHECK(err("1.2.3.4:1-5.6.7.8:2-9.9.9.9:3/tcp") == "expected SRC:PORT-DST:PORT/PROTO");
    CHECK(err("1.2.3.4:1-5.6.7.8:70000/tcp") == "bad port '70000'");
    CHECK(err("1.2.3.4:x-5.6.7.8:1/tcp") == "bad port 'x'");
    CHECK(err("1.2.3.4:-5.6.7.8:1/tcp") == "bad port ''");
    CHECK(err("1.2.3.4:1-[2001:db8::1]:2/tcp") == "address families differ");
    CHECK(err("1.2.3.4:1-5.6.7.8:2/bogus") == "unknown protocol 'bogus'");
    CHECK(err("1.2.3.4:1-5.6.7.8:2/") == "unknown protocol ''");
    CHECK(err("1.2.3.4:1-5.6.7.8:2/300") == "unknown protocol '300'");
    CHECK(err("1.2.3:1-5.6.7.8:2/tcp") == "bad address '1.2.3'");
    CHECK(err("1.2.3.4-5.6.7.8/tcp") ==
          "missing ports: only icmp/icmpv6 may omit them (expected SRC:PORT-DST:PORT/PROTO)");
    CHECK(err("1.2.3.4:1-5.6.7.8/icmp") == "give both ports or neither");
    CHECK(err("[2001:db8::1:1-[2001:db8::2]:2/udp") == "missing ']' in '[2001:db8::1:1'");
    CHECK(err("[1.2.3.4]:1-[5.6.7.8]:2/udp") == "brackets are for IPv6 only: '[1.2.3.4]:1'");
    CHECK(err("[2001:db8::1]x-[2001:db8::2]:2/udp") == "unexpected 'x' after ']' in '[2001:db8::1]x'");
}

// ---------------------------------------------------------------- checksum

TEST_CASE("RFC 1071 checksum vectors") {
    // RFC 1071 section 3 example: the sum of 0001 f203 f4f5 f6f7 is ddf2.
    const uint8_t rfc[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    CHECK(Checksum().add(rfc).fold() == 0xddf2);
    CHECK(internet_checksum(rfc) == 0x220d);
    // Fed in odd pieces, the result is the same.
    Checksum c;
    c.add(std::span(rfc, 3)).add(std::span(rfc + 3, 1)).add(std::span(rfc + 4, 4));
    CHECK(c.fold() == 0xddf2);
    Checksum w;
    w.add_u16(0x0001).add_u32(0xf203f4f5).add_u16(0xf6f7);
    CHECK(w.fold() == 0xddf2);

    // A real IPv4 header (UDP, 192.168.0.1 -> 192.168.0.199): checksum b861.
    uint8_t hdr[] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                     0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
    CHECK(internet_checksum(hdr) == 0);
    hdr[10] = hdr[11] = 0;
    CHECK(internet_checksum(hdr) == 0xb861);

    // Odd length: the last byte is padded with zero on the right.
    const uint8_t odd[] = {0x01};
    CHECK(internet_checksum(odd) == 0xfeff);
    CHECK(internet_checksum({}) == 0xffff);
    // Carries fold back in: ffff + 0001 = 0001 (ones' complement).
    const uint8_t carry[] = {0xff, 0xff, 0x00, 0x01};
    CHECK(Checksum().add(carry).fold() == 0x0001);
}

TEST_CASE("pseudo-header checksums") {
    // A built UDP segment, 10.0.0.1:1024 -> 10.0.0.2:53 with 4 payload bytes, checked by hand.
    auto seg = PacketBuilder().ipv4(ip("10.0.0.1"), ip("10.0.0.2")).udp(1024, 53).payload("abcd").build();
    std::span<const uint8_t> udp = std::span(seg).subspan(20);
    CHECK(transport_checksum(ip("10.0.0.1"), ip("10.0.0.2"), 17, udp) == 0);
    // Hand computation: pseudo (0a00 0001 0a00 0002 0011 000c) + header
    // (0400 0035 000c) + "abcd" (6162 6364).
    std::vector<uint8_t> zeroed(udp.begin(), udp.end());
    zeroed[6] = zeroed[7] = 0;
    uint32_t sum = 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 0x0011 + 0x000c + 0x0400 + 0x0035 + 0x000c + 0x6162 + 0x6364;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    CHECK(transport_checksum(ip("10.0.0.1"), ip("10.0.0.2"), 17, zeroed) == uint16_t(~sum));
    CHECK(((udp[6] << 8) | udp[7]) == uint16_t(~sum));

    // IPv6 pseudo-header: 32-bit length and next header.
    Checksum a = pseudo_header(ip("::1"), ip("::2"), 58, 8);
    uint32_t s6 = 1 + 2 + 8 + 58;
    CHECK(a.fold() == s6);
}

// ---------------------------------------------------------------- link types

TEST_CASE("link_from_dlt") {
    CHECK(link_from_dlt(1) == LinkType::ethernet);
    CHECK(link_from_dlt(12) == LinkType::raw_ip);
    CHECK(link_from_dlt(101) == LinkType::raw_ip);
    CHECK(link_from_dlt(228) == LinkType::raw_ip);
    CHECK(link_from_dlt(229) == LinkType::raw_ip);
    CHECK(link_from_dlt(113) == LinkType::linux_sll);
    CHECK(link_from_dlt(276) == LinkType::linux_sll2);
    CHECK(link_from_dlt(0) == LinkType::null_loopback);
    CHECK(link_from_dlt(108) == LinkType::null_loopback);
    CHECK(!link_from_dlt(105));
    CHECK(!link_from_dlt(-1));
}

// ---------------------------------------------------------------- builder -> parser

TEST_CASE("eth + IPv4 + TCP round trip") {
    auto f = PacketBuilder()
                 .eth(kMacA, kMacB)
                 .ipv4(ip("198.51.100.7"), ip("203.0.113.10"))
                 .ttl(61)
                 .ip_id(0x1234)
                 .dont_fragment()
                 .tcp(5555, 443)
                 .flags(TcpFlags::syn | TcpFlags::ack)
                 .seq(1)
                 .ack(0xdeadbeef)
                 .window(1024)
                 .tcp_options({0x02, 0x04, 0x05, 0xb4})  // MSS 1460
                 .payload("hello")
                 .build();
    CHECK(f.size() == 14 + 20 + 24 + 5);
    CHECK(std::memcmp(f.data(), kMacB.data(), 6) == 0);  // destination first on the wire
    Packet p = parse_packet(f, LinkType::ethernet);
    REQUIRE(p.ok());
    CHECK(p.ethertype == 0x0800);
    CHECK(p.vlan_count == 0);
    CHECK(p.l3_off == 14);
    CHECK(p.l3_len == 20);
    CHECK(p.ip_version == 4);
    CHECK(p.ttl == 61);
    CHECK(p.frag_id == 0x1234);
    CHECK(p.dont_fragment);
    CHECK(!p.fragment);
    CHECK(!p.ip_options);
    CHECK(p.ip_checksum_ok);
    CHECK(p.proto == 6);
    CHECK(p.l4_off == 34);
    CHECK(p.l4_len == 24);
    CHECK(p.sport == 5555);
    CHECK(p.dport == 443);
    CHECK(p.tcp_flags == (TcpFlags::syn | TcpFlags::ack));
    CHECK(p.tcp_seq == 1);
    CHECK(p.tcp_ack == 0xdeadbeef);
    CHECK(p.tcp_window == 1024);
    CHECK(p.payload_off == 58);
    CHECK(p.payload_len == 5);
    CHECK(std::memcmp(f.data() + p.payload_off, "hello", 5) == 0);
    CHECK(p.l4_checksum_checked);
    CHECK(p.l4_checksum_ok);
    CHECK(flow_text(p.key) == "198.51.100.7:5555-203.0.113.10:443/tcp");
    CHECK(!p.has_inner);
}

TEST_CASE("VLAN and QinQ tags") {
    auto one = PacketBuilder().eth(kMacA, kMacB).vlan(100).ipv4(ip("10.0.0.1"), ip("10.0.0.2")).udp(1, 2).build();
    Packet p = parse_packet(one, LinkType::ethernet);
    REQUIRE(p.ok());
    CHECK(p.vlan_count == 1);
    CHECK(p.vlan_ids[0] == 100);
    CHECK(p.l3_off == 18);

    auto qinq = PacketBuilder()
                    .eth(kMacA, kMacB)
                    .qinq(10, 4095)
                    .ipv6(ip("2001:db8::1"), ip("2001:db8::2"))
                    .udp(53, 5353)
                    .payload("x")
                    .build();
    CHECK(qinq[12] == 0x88);
    CHECK(qinq[13] == 0xa8);
    p = parse_packet(qinq, LinkType::ethernet);
    REQUIRE(p.ok());
    CHECK(p.vlan_count == 2);
    CHECK(p.vlan_ids[0] == 10);
    CHECK(p.vlan_ids[1] == 4095);
    CHECK(p.l3_off == 22);
    CHECK(p.udp_len == 9);
    CHECK(flow_text(p.key) == "[2001:db8::1]:53-[2001:db8::2]:5353/udp");
    check_checksums(qinq, LinkType::ethernet);

    PacketBuilder five;
    five.eth(kMacA, kMacB);
    for (int i = 0; i < 5; ++i) five.vlan(uint16_t(i));
    p = parse_packet(five.ipv4(ip("10.0.0.1"), ip("10.0.0.2")).udp(1, 2).build(), LinkType::ethernet);
    CHECK(p.status == ParseStatus::malformed);
    CHECK(std::string(p.reason) == "too many VLAN tags");
    CHECK_THROWS_AS(PacketBuilder().vlan(4096), std::invalid_argument);
}

TEST_CASE("IPv4 options") {
    // Router alert (RFC 2113) is 4 bytes; a 3-byte option gets one EOL pad byte.
    auto f = PacketBuilder()
                 .ipv4(ip("10.0.0.1"), ip("10.0.0.2"))
                 .ipv4_options({0x94, 0x04, 0x00, 0x00, 0x01, 0x01, 0x01})
                 .udp(7, 8)
                 .payload("opt")
                 .build();
    Packet p = parse_packet(f, LinkType::raw_ip);
    REQUIRE(p.ok());
    CHECK(p.ip_options);
    CHECK(p.l3_len == 28);
    CHECK(p.l4_off == 28);
    CHECK(p.sport == 7);
    CHECK(p.payload_len == 3);
    check_checksums(f, LinkType::raw_ip);
    CHECK_THROWS_AS(PacketBuilder().ipv4_options(std::vector<uint8_t>(41, 1)), std::invalid_argument);
}

TEST_CASE("IPv6 extension headers") {
    auto f = PacketBuilder()
                 .eth(kMacA, kMacB)
                 .ipv6(ip("2001:db8::1"), ip("2001:db8::2"))
                 .ttl(7)
                 .hop_by_hop({0x05, 0x02, 0x00, 0x00})  // router alert
                 .dest_options()
                 .ext_header(43, {0, 0, 0, 0, 0, 0})  // empty routing header
                 .ext_header(51, std::vector<uint8_t>(10, 0xaa))  // AH: 12 bytes = (1 + 2) * 4
                 .tcp(1000, 80)
                 .flags(TcpFlags::fin)
                 .payload("bye")
                 .build();
    Packet p = parse_packet(f, LinkType::ethernet);
    REQUIRE(p.ok());
    CHECK(p.ip_version == 6);
    CHECK(p.ttl == 7);
    CHECK(p.l3_len == 40 + 8 + 8 + 8 + 12);
    CHECK(p.proto == 6);
    CHECK(p.tcp_flags == TcpFlags::fin);
    CHECK(p.payload_len == 3);
    CHECK(!p.ip_checksum_ok);  // IPv6 has none
    check_checksums(f, LinkType::ethernet);
    CHECK(flow_text(p.key) == "[2001:db8::1]:1000-[2001:db8::2]:80/tcp");

    // Hop-by-hop anywhere but first is malformed.
    auto late = PacketBuilder().ipv6(ip("::1"), ip("::2")).dest_options().hop_by_hop().udp(1, 2).build();
    p = parse_packet(late, LinkType::raw_ip);
    CHECK(p.status == ParseStatus::malformed);
    CHECK(p.ip_version == 6);

    // ESP and no-next-header stop the walk without an L4 parse.
    auto esp = PacketBuilder().ipv6(ip("::1"), ip("::2")).proto(50).payload("encrypted!").build();
    p = parse_packet(esp, LinkType::raw_ip);
    REQUIRE(p.ok());
    CHECK(p.proto == 50);
    CHECK(!p.has_l4);
    CHECK(p.payload_len == 10);
    auto none = PacketBuilder().ipv6(ip("::1"), ip("::2")).hop_by_hop().build();  // next header 59
    p = parse_packet(none, LinkType::raw_ip);
    REQUIRE(p.ok());
    CHECK(p.proto == 59);
    CHECK(p.payload_len == 0);

    // Nine destination-options headers exceed the walk bound.
    PacketBuilder many;
    many.ipv6(ip("::1"), ip("::2"));
    for (int i = 0; i < 9; ++i) many.dest_options();
    p = parse_packet(many.udp(1, 2).build(), LinkType::raw_ip);
    CHECK(p.status == ParseStatus::malformed);
    CHECK(std::string(p.reason) == "too many IPv6 extension headers");
}

TEST_CASE("ICMP echo v4 and v6") {
    auto f = PacketBuilder().eth(kMacA, kMacB).ipv4(ip("10.0.0.1"), ip("10.0.0.2")).echo_request(7, 1).payload("ping").build();
    Packet p = parse_packet(f, LinkType::ethernet);
    REQUIRE(p.ok());
    CHECK(p.proto == 1);
    CHECK(p.icmp_type == 8);
    CHECK(p.icmp_code == 0);
    CHECK(p.payload_len == 4);
    CHECK(!p.has_inner);
    CHECK(flow_text(p.key) == "10.0.0.1-10.0.0.2/icmp");
    check_checksums(f, LinkType::ethernet);

    auto r = PacketBuilder().ipv6(ip("2001:db8::2"), ip("2001:db8::1")).echo_reply(7, 1).build();
    p = parse_packet(r, LinkType::raw_ip);
    REQUIRE(p.ok());
    CHECK(p.proto == 58);
    CHECK(p.icmp_type == 129);
    CHECK(flow_text(p.key) == "2001:db8::2-2001:db8::1/icmpv6");
    check_checksums(r, LinkType::raw_ip);
    auto q = PacketBuilder().ipv6(ip("2001:db8::2"), ip("2001:db8::1")).echo_request(1, 2).build();
    CHECK(parse_packet(q, LinkType::raw_ip).icmp_type == 128);
}

TEST_CASE("ICMP errors carry the inner flow") {
    auto inner = PacketBuilder().ipv4(ip("192.0.2.1"), ip("198.51.100.9")).udp(33434, 53).payload("dns query").build();
    auto err = PacketBuilder()
                   .eth(kMacA, kMacB)
                   .ipv4(ip("203.0.113.1"), ip("192.0.2.1"))
                   .icmp_error(3, 4, std::span(inner).first(28))  // header + 8 bytes, as routers quote
                   .build();
    Packet p = parse_packet(err, LinkType::ethernet);
    REQUIRE(p.ok());
    CHECK(p.icmp_type == 3);
    CHECK(p.icmp_code == 4);
    REQUIRE(p.has_inner);
    CHECK(flow_text(p.inner_key) == "192.0.2.1:33434-198.51.100.9:53/udp");
    CHECK(flow_text(p.key) == "203.0.113.1-192.0.2.1/icmp");
    check_checksums(err, LinkType::ethernet);

    // Time exceeded quoting TCP with options in the quoted IP header.
    auto inner2 = PacketBuilder().ipv4(ip("10.1.1.1"), ip("10.2.2.2")).ipv4_options({1, 1, 1, 1}).tcp(1234, 80).build();
    auto te = PacketBuilder().ipv4(ip("10.9.9.9"), ip("10.1.1.1")).icmp_error(11, 0, inner2).build();
    p = parse_packet(te, LinkType::raw_ip);
    REQUIRE(p.has_inner);
    CHECK(flow_text(p.inner_key) == "10.1.1.1:1234-10.2.2.2:80/tcp");

    // IPv6 packet too big (2) quoting a packet with a hop-by-hop header.
    auto inner6 = PacketBuilder().ipv6(ip("2001:db8::1"), ip("2001:db8::2")).hop_by_hop().tcp(40000, 443).payload(std::string(100, 'z')).build();
    auto ptb = PacketBuilder().ipv6(ip("2001:db8::ff"), ip("2001:db8::1")).icmp(2, 0, 1280).payload(inner6).build();
    p = parse_packet(ptb, LinkType::raw_ip);
    REQUIRE(p.ok());
    CHECK(p.icmp_type == 2);
    REQUIRE(p.has_inner);
    CHECK(flow_text(p.inner_key) == "[2001:db8::1]:40000-[2001:db8::2]:443/tcp");
    check_checksums(ptb, LinkType::raw_ip);

    // A quote cut before the ports: the inner key has ports 0.
    auto cut = PacketBuilder().ipv4(ip("10.9.9.9"), ip("10.1.1.1")).icmp_error(3, 1, std::span(inner2).first(26)).build();
    p = parse_packet(cut, LinkType::raw_ip);
    REQUIRE(p.has_inner);
    CHECK(flow_text(p.inner_key) == "10.1.1.1:0-10.2.2.2:0/tcp");
    // A quote too short for an IP header: no inner key, still ok.
    auto tiny = PacketBuilder().ipv4(ip("10.9.9.9"), ip("10.1.1.1")).icmp_error(3, 1, std::span(inner2).first(10)).build();
    p = parse_packet(tiny, LinkType::raw_ip);
    CHECK(p.ok());
    CHECK(!p.has_inner);
    // An IPv6 quote in an ICMPv4 error is not trusted.
    auto mixed = PacketBuilder().ipv4(ip("10.9.9.9"), ip("10.1.1.1")).icmp_error(3, 1, inner6).build();
    CHECK(!parse_packet(mixed, LinkType::raw_ip).has_inner);
    // Echo is not an error: its payload is not parsed as a packet.
    auto echo = PacketBuilder().ipv4(ip("10.9.9.9"), ip("10.1.1.1")).echo_request(1, 1).payload(inner).build();
    CHECK(!parse_packet(echo, LinkType::raw_ip).has_inner);
}

TEST_CASE("fragments") {
    auto first = PacketBuilder().ipv4(ip("10.0.0.1"), ip("10.0.0.2")).fragment(0, true, 99).udp(1000, 2000).payload(std::string(16, 'a')).build();
    Packet p = parse_packet(first, LinkType::raw_ip);
    REQUIRE(p.ok());
    CHECK(p.fragment);
    CHECK(p.more_fragments);
    CHECK(p.frag_offset == 0);
    CHECK(p.frag_id == 99);
    CHECK(p.has_l4);
    CHECK(p.sport == 1000);  // the first fragment has the ports
    CHECK(!p.l4_checksum_checked);

    auto later = PacketBuilder().ipv4(ip("10.0.0.1"), ip("10.0.0.2")).fragment(24, false, 99).proto(17).payload(std::string(16, 'b')).build();
    p = parse_packet(later, LinkType::raw_ip);
    REQUIRE(p.ok());
    CHECK(p.fragment);
    CHECK(!p.more_fragments);
    CHECK(p.frag_offset == 24);
    CHECK(!p.has_l4);
    CHECK(p.payload_len == 16);
    CHECK(p.ip_checksum_ok);
    CHECK(flow_text(p.key) == "10.0.0.1:0-10.0.0.2:0/udp");

    auto v6first = PacketBuilder().ipv6(ip("2001:db8::1"), ip("2001:db8::2")).fragment(0, true, 0xabcdef).tcp(1, 2).build();
    p = parse_packet(v6first, LinkType::raw_ip);
    REQUIRE(p.ok());
    CHECK(p.fragment);
    CHECK(p.more_fragments);
    CHECK(p.frag_id == 0xabcdef);
    CHECK(p.has_l4);
    CHECK(p.dport == 2);
    auto v6later = PacketBuilder().ipv6(ip("2001:db8::1"), ip("2001:db8::2")).fragment(1448, false, 5).proto(6).payload("tail").build();
    p = parse_packet(v6later, LinkType::raw_ip);
    REQUIRE(p.ok());
    CHECK(p.frag_offset == 1448);
    CHECK(!p.has_l4);
    CHECK(p.proto == 6);
    CHECK(p.payload_len == 4);
    CHECK(std::string(p.reason) == "non-first fragment");
    CHECK_THROWS_AS(PacketBuilder().ipv4(ip("10.0.0.1"), ip("10.0.0.2")).fragment(3, false), std::invalid_argument);
}

TEST_CASE("other link types") {
    auto ip4 = PacketBuilder().ipv4(ip("10.0.0.1"), ip("10.0.0.2")).tcp(1, 2).build();
    auto ip6 = PacketBuilder().ipv6(ip("::1"), ip("::2")).udp(3, 4).build();

    std::vector<uint8_t> sll(16, 0);
    sll[14] = 0x08;
    sll.insert(sll.end(), ip4.begin(), ip4.end());
    Packet p = parse_packet(sll, LinkType::linux_sll);
    REQUIRE(p.ok());
    CHECK(p.l3_off == 16);
    CHECK(p.dport == 2);

    std::vector<uint8_t> sll2(20, 0);
    sll2[0] = 0x86;
    sll2[1] = 0xdd;
    sll2.insert(sll2.end(), ip6.begin(), ip6.end());
    p = parse_packet(sll2, LinkType::linux_sll2);
    REQUIRE(p.ok());
    CHECK(p.l3_off == 20);
    CHECK(p.dport == 4);

    for (std::vector<uint8_t> hdr : {std::vector<uint8_t>{2, 0, 0, 0}, std::vector<uint8_t>{0, 0, 0, 2}}) {
        hdr.insert(hdr.end(), ip4.begin(), ip4.end());
        p = parse_packet(hdr, LinkType::null_loopback);
        REQUIRE(p.ok());
        CHECK(p.ip_version == 4);
    }
    for (uint8_t af : {10, 24, 28, 30}) {
        std::vector<uint8_t> hdr{af, 0, 0, 0};
        hdr.insert(hdr.end(), ip6.begin(), ip6.end());
        CHECK(parse_packet(hdr, LinkType::null_loopback).ip_version == 6);
    }
    std::vector<uint8_t> ipx{0x17, 0, 0, 0, 0x45};
    CHECK(parse_packet(ipx, LinkType::null_loopback).status == ParseStatus::not_ip);

    // ARP over Ethernet is not IP.
    std::vector<uint8_t> arp(42, 0);
    arp[12] = 0x08;
    arp[13] = 0x06;
    CHECK(parse_packet(arp, LinkType::ethernet).status == ParseStatus::not_ip);
    CHECK(parse_packet(ip4, static_cast<LinkType>(99)).status == ParseStatus::unsupported_link);
    std::vector<uint8_t> v5{0x55, 0, 0, 20};
    CHECK(parse_packet(v5, LinkType::raw_ip).status == ParseStatus::malformed);
    CHECK(parse_packet({}, LinkType::raw_ip).status == ParseStatus::truncated);
}

TEST_CASE("malformed headers") {
    auto base = PacketBuilder().ipv4(ip("10.0.0.1"), ip("10.0.0.2")).tcp(1, 2).payload("data").build();
    auto with = [&](std::size_t off, uint8_t v) {
        auto b = base;
        b[off] = v;
        return parse_packet(b, LinkType::raw_ip);
    };
    CHECK(with(0, 0x44).status == ParseStatus::malformed);  // IHL 4
    CHECK(with(3, 19).status == ParseStatus::malformed);    // total < IHL*4
    CHECK(with(32, 0x40).status == ParseStatus::malformed); // TCP data offset 4
    CHECK(with(32, 0xf0).status == ParseStatus::malformed); // TCP options past the IP end
    Packet bad = with(10, uint8_t(base[10] ^ 1));
    CHECK(bad.ok());
    CHECK(!bad.ip_checksum_ok);
    Packet badl4 = with(42, 'X');
    CHECK(badl4.ok());
    CHECK(badl4.l4_checksum_checked);
    CHECK(!badl4.l4_checksum_ok);

    // Ethernet padding beyond the IP total length is not payload.
    auto padded = PacketBuilder().eth(kMacA, kMacB).ipv4(ip("10.0.0.1"), ip("10.0.0.2")).udp(1, 2).build();
    padded.resize(60, 0);
    Packet p = parse_packet(padded, LinkType::ethernet);
    REQUIRE(p.ok());
    CHECK(p.payload_len == 0);
    CHECK(!p.snap_truncated);
    CHECK(p.l4_checksum_ok);

    // UDP length longer than the IP payload, or shorter than its header.
    auto u = PacketBuilder().ipv4(ip("10.0.0.1"), ip("10.0.0.2")).udp(1, 2).payload("abc").build();
    u[25] = 12;
    CHECK(parse_packet(u, LinkType::raw_ip).status == ParseStatus::malformed);
    u[25] = 7;
    CHECK(parse_packet(u, LinkType::raw_ip).status == ParseStatus::malformed);

    // IPv6 payload length too short for the extension header it announces.
    auto e = PacketBuilder().ipv6(ip("::1"), ip("::2")).hop_by_hop().udp(1, 2).build();
    e[5] = 4;
    CHECK(parse_packet(e, LinkType::raw_ip).status == ParseStatus::malformed);
}

TEST_CASE("snaplen truncation is flagged, not an error") {
    auto f = PacketBuilder().eth(kMacA, kMacB).ipv4(ip("10.0.0.1"), ip("10.0.0.2")).tcp(1, 2).payload(std::string(100, 'p')).build();
    std::span<const uint8_t> cut(f.data(), 64);
    Packet p = parse_packet(cut, LinkType::ethernet);
    REQUIRE(p.ok());
    CHECK(p.snap_truncated);
    CHECK(p.payload_len == 64 - 54);
    CHECK(!p.l4_checksum_checked);
    CHECK(p.dport == 2);
}

namespace {

std::vector<std::pair<std::vector<uint8_t>, LinkType>> sample_packets() {
    auto inner = PacketBuilder().ipv4(ip("192.0.2.1"), ip("198.51.100.9")).udp(33434, 53).build();
    auto inner6 = PacketBuilder().ipv6(ip("2001:db8::1"), ip("2001:db8::2")).dest_options().tcp(1, 2).build();
    return {
        {PacketBuilder().eth(kMacA, kMacB).ipv4(ip("10.0.0.1"), ip("10.0.0.2")).tcp(1, 2).tcp_options({1, 1, 1, 1}).payload("abc").build(), LinkType::ethernet},
        {PacketBuilder().eth(kMacA, kMacB).qinq(1, 2).ipv4(ip("10.0.0.1"), ip("10.0.0.2")).ipv4_options({1, 1, 1, 0}).udp(1, 2).payload("abc").build(), LinkType::ethernet},
        {PacketBuilder().eth(kMacA, kMacB).vlan(7).ipv6(ip("2001:db8::1"), ip("2001:db8::2")).hop_by_hop({5, 2, 0, 0}).fragment(0, true, 1).udp(1, 2).payload("abc").build(), LinkType::ethernet},
        {PacketBuilder().ipv4(ip("203.0.113.1"), ip("192.0.2.1")).icmp_error(3, 3, inner).build(), LinkType::raw_ip},
        {PacketBuilder().ipv6(ip("2001:db8::9"), ip("2001:db8::1")).icmp_error(1, 4, inner6).build(), LinkType::raw_ip},
        {PacketBuilder().ipv6(ip("2001:db8::9"), ip("2001:db8::1")).ext_header(51, std::vector<uint8_t>(10, 0)).echo_request(1, 1).build(), LinkType::raw_ip},
        {PacketBuilder().ipv4(ip("10.0.0.1"), ip("10.0.0.2")).fragment(8, false).proto(6).payload("zz").build(), LinkType::raw_ip},
    };
}

}  // namespace

TEST_CASE("built packets have valid checksums") {
    for (const auto& [f, link] : sample_packets()) check_checksums(f, link);
}

TEST_CASE("truncation at every length") {
    for (const auto& [f, link] : sample_packets()) {
        Packet full = parse_packet(f, link);
        REQUIRE(full.ok());
        for (std::size_t n = 0; n < f.size(); ++n) {
            // A fresh heap copy of exactly n bytes so ASan catches any over-read.
            std::vector<uint8_t> cut(f.begin(), f.begin() + std::ptrdiff_t(n));
            Packet p = parse_packet(cut, link);
            if (!p.ok()) {
                CHECK(p.reason[0] != '\0');
                continue;
            }
            // A shorter parse that still succeeds agrees with the full one
            // on everything it reports, and stays inside the input.
            CHECK(p.snap_truncated);
            CHECK(p.ip_version == full.ip_version);
            CHECK(p.l3_off == full.l3_off);
            CHECK(p.proto == full.proto);
            CHECK(p.payload_off + p.payload_len <= n);
            CHECK(p.payload_len <= full.payload_len);
            if (p.has_l4) {
                CHECK(p.key == full.key);
                CHECK(p.icmp_type == full.icmp_type);
            }
            if (p.has_inner) CHECK(p.inner_key.family == full.inner_key.family);
        }
    }
}

TEST_CASE("random and mutated bytes never crash") {
    std::mt19937_64 rng(20240601);
    const LinkType links[] = {LinkType::ethernet, LinkType::raw_ip, LinkType::linux_sll,
                              LinkType::linux_sll2, LinkType::null_loopback};
    std::size_t ok = 0;
    for (int i = 0; i < 100000; ++i) {
        std::vector<uint8_t> buf(rng() % 200);
        for (auto& b : buf) b = uint8_t(rng());
        // Bias towards reaching deeper layers: plausible first bytes.
        if (buf.size() > 14 && i % 2) {
            buf[12] = i % 4 ? 0x08 : 0x86;
            buf[13] = i % 4 ? 0x00 : 0xdd;
            buf[14] = i % 4 ? uint8_t(0x45 + rng() % 3) : 0x60;
        }
        Packet p = parse_packet(buf, links[i % 5]);
        CHECK(p.payload_off + p.payload_len <= buf.size());
        ok += p.ok();
    }
    // Mutations of valid packets reach every layer.
    auto samples = sample_packets();
    for (int i = 0; i < 100000; ++i) {
        auto [f, link] = samples[std::size_t(i) % samples.size()];
        for (int m = 0; m < 1 + i % 4; ++m) f[rng() % f.size()] = uint8_t(rng());
        Packet p = parse_packet(f, link);
        CHECK(p.payload_off + p.payload_len <= f.size());
        ok += p.ok();
    }
    CHECK(ok > 0);
}

// parse_plain_udp4 is a shortcut for parse_packet: where it says yes, parse_packet must
// say the same (ok, UDP, whole, not a fragment, same addresses, ports and payload).
namespace {
void check_plain_agrees(std::span<const uint8_t> f, LinkType link, std::size_t& yes) {
    PlainUdp u;
    if (!parse_plain_udp4(f, link, u)) return;
    yes++;
    const Packet p = parse_packet(f, link, {false});
    REQUIRE(p.ok());
    CHECK(p.ip_version == 4);
    CHECK(p.proto == kProtoUdp);
    CHECK(p.has_l4);
    CHECK_FALSE(p.fragment);
    CHECK(u.src == p.src);
    CHECK(u.dst == p.dst);
    CHECK(u.sport == p.sport);
    CHECK(u.dport == p.dport);
    CHECK(u.udp_len == p.udp_len);
    CHECK(u.payload_off == p.payload_off);
    CHECK(u.payload_len == p.payload_len);
}
}  // namespace

TEST_CASE("parse_plain_udp4: the usual UDP frame, or no") {
    const auto ip4 = PacketBuilder().ipv4(ip("10.0.0.1"), ip("10.0.0.2")).udp(443, 51000).payload("quic").build();
    std::vector<std::pair<std::vector<uint8_t>, LinkType>> plain = {
        {PacketBuilder().eth(kMacA, kMacB).ipv4(ip("10.0.0.1"), ip("10.0.0.2")).udp(443, 51000).payload("quic").build(),
         LinkType::ethernet},
        {ip4, LinkType::raw_ip},
    };
    std::vector<uint8_t> sll(16, 0), sll2(20, 0);
    sll[14] = 0x08;
    sll.insert(sll.end(), ip4.begin(), ip4.end());
    sll2[0] = 0x08;
    sll2.insert(sll2.end(), ip4.begin(), ip4.end());
    plain.emplace_back(sll, LinkType::linux_sll);
    plain.emplace_back(sll2, LinkType::linux_sll2);
    auto padded = plain[0].first;  // Ethernet padding after the datagram is not payload
    padded.insert(padded.end(), 8, 0);
    plain.emplace_back(padded, LinkType::ethernet);
    for (const auto& [f, link] : plain) {
        PlainUdp u;
        REQUIRE(parse_plain_udp4(f, link, u));
        CHECK(u.sport == 443);
        CHECK(u.dport == 51000);
        CHECK(u.payload_len == 4);
        CHECK(std::memcmp(f.data() + u.payload_off, "quic", 4) == 0);
        std::size_t yes = 0;
        check_plain_agrees(f, link, yes);
        CHECK(yes == 1);
    }
    // Everything else is parse_packet's: VLAN tags, IPv4 options, fragments, IPv6, TCP,
    // loopback framing, a capture cut short, a UDP length past the IP length.
    PlainUdp u;
    CHECK_FALSE(parse_plain_udp4(
        PacketBuilder().eth(kMacA, kMacB).vlan(7).ipv4(ip("10.0.0.1"), ip("10.0.0.2")).udp(1, 2).payload("a").build(),
        LinkType::ethernet, u));
    CHECK_FALSE(parse_plain_udp4(
        PacketBuilder().ipv4(ip("10.0.0.1"), ip("10.0.0.2")).ipv4_options({1, 1, 1, 0}).udp(1, 2).payload("a").build(),
        LinkType::raw_ip, u));
    CHECK_FALSE(parse_plain_udp4(
        PacketBuilder().ipv4(ip("10.0.0.1"), ip("10.0.0.2")).fragment(0, true).udp(1, 2).payload("abcdefgh").build(),
        LinkType::raw_ip, u));
    CHECK_FALSE(parse_plain_udp4(PacketBuilder().ipv6(ip("::1"), ip("::2")).udp(3, 4).build(), LinkType::raw_ip, u));
    CHECK_FALSE(parse_plain_udp4(PacketBuilder().ipv4(ip("10.0.0.1"), ip("10.0.0.2")).tcp(1, 2).build(), LinkType::raw_ip, u));
    std::vector<uint8_t> loop{2, 0, 0, 0};
    loop.insert(loop.end(), ip4.begin(), ip4.end());
    CHECK_FALSE(parse_plain_udp4(loop, LinkType::null_loopback, u));
    CHECK(parse_packet(loop, LinkType::null_loopback).ok());
    auto cut = ip4;
    cut.pop_back();
    CHECK_FALSE(parse_plain_udp4(cut, LinkType::raw_ip, u));
    auto long_udp = ip4;
    long_udp[20 + 5] += 1;  // UDP length one past the IP datagram
    CHECK_FALSE(parse_plain_udp4(long_udp, LinkType::raw_ip, u));
    CHECK(parse_packet(long_udp, LinkType::raw_ip).status == ParseStatus::malformed);

    // Every cut, every mutation and random bytes: where it says yes, parse_packet agrees.
    std::mt19937_64 rng(7);
    std::size_t yes = 0;
    for (const auto& [f, link] : plain)
        for (std::size_t n = 0; n <= f.size(); ++n) {
            std::vector<uint8_t> c(f.begin(), f.begin() + std::ptrdiff_t(n));  // exact size: ASan sees over-reads
            check_plain_agrees(c, link, yes);
        }
    for (int i = 0; i < 100000; ++i) {
        auto [f, link] = plain[std::size_t(i) % plain.size()];
        for (int m = 0; m < 1 + i % 3; ++m) f[rng() % f.size()] = uint8_t(rng());
        check_plain_agrees(f, link, yes);
        std::vector<uint8_t> junk(rng() % 80);
        for (auto& b : junk) b = uint8_t(rng());
        check_plain_agrees(junk, LinkType::raw_ip, yes);
    }
    CHECK(yes > 10000);  // mutations that keep a plain frame are checked, not skipped
}
