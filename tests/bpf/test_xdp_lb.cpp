// xdp_lb fixtures in the Katran style: input bytes -> expected verdict and expected
// output bytes (outer headers built independently with PacketBuilder and compared whole),
// counters read back from the maps, the connection table across table changes, QUIC
// connection-id routing, and the same backend as maglev-calc's table for 10,000 flows.
#include <doctest/doctest.h>

#include <linux/bpf.h>

#include <sched.h>

#include <cstring>
#include <random>
#include <set>

#include "../../cmd/xdp-lb/lb.hpp"
#include "bpf/prog.hpp"
#include "net/build.hpp"
#include "net/checksum.hpp"
#include "net/flow.hpp"
#include "net/packet.hpp"
#include "xdp_lb.skel.h"

using namespace edge::net;
using Bytes = std::vector<uint8_t>;

namespace {
const Mac kClientMac{2, 0, 0, 0, 0, 1}, kLbMac{2, 0, 0, 0, 0, 2};
IpAddr ip(const char* s) { return IpAddr::parse(s).value(); }

const char* kConfig = R"(
[lb]
table_size = 251
hash_key = "00112233445566778899aabbccddeeff"

[[service]]
vip = "203.0.113.10"
port = 80
proto = "tcp"
backends = ["10.0.1.11", "10.0.1.12", "10.0.1.13"]

[[service]]
vip = "203.0.113.10"
port = 53
proto = "udp"
backends = ["10.0.1.11", "10.0.1.12", "10.0.1.13"]

[[service]]
vip = "203.0.113.10"
port = 443
proto = "udp"
quic = true
[[service.backend]]
address = "10.0.1.11"
server_id = 0x0a01
[[service.backend]]
address = "10.0.1.12"
server_id = 0x0a02
[[service.backend]]
address = "10.0.1.13"
server_id = 0x0a03

[[service]]
vip = "2001:db8::10"
port = 443
proto = "tcp"
backends = ["2001:db8:1::11", "2001:db8:1::12"]

[[service]]
vip = "2001:db8::20"
port = 80
proto = "tcp"
backends = ["10.0.1.21"]

[[service]]
vip = "203.0.113.20"
port = 80
proto = "tcp"
backends = ["2001:db8:1::21"]

[[service]]
vip = "203.0.113.30"
port = 53
proto = "udp"
backends = ["10.0.1.14=0"]

[[service]]
vip = "203.0.113.40"
port = 80
proto = "tcp"
[[service.backend]]
address = "10.0.1.31"
mac = "02:00:00:00:0b:31"
)";

// kConfig plus a service whose one backend sits behind another interface (lo): its
// packets leave through the devmap (XDP_REDIRECT) with the backend's own MAC.
constexpr const char* kRedirectService = R"(
[[service]]
vip = "203.0.113.50"
port = 80
proto = "tcp"
[[service.backend]]
address = "10.0.2.11"
mac = "02:00:00:00:0c:11"
interface = "lo"
)";

struct Lb {
    xdp_lb* s = nullptr;
    xlb::LbConfig cfg;
    std::unique_ptr<xlb::Controller> ctl;

    explicit Lb(const std::string& text = kConfig) {
        cfg = parse(text);
        s = xdp_lb__open();
        REQUIRE(s);
        xlb::size_maps(s, cfg);
        int err = xdp_lb__load(s);
        if (err) FAIL("xdp_lb__load: " << edge::bpf::error_text(err));
        ctl = std::make_unique<xlb::Controller>(xlb::skel_maps(s), cfg.table_size, cfg.max_services);
        ctl->apply(cfg);
    }
    ~Lb() { xdp_lb__destroy(s); }
    static xlb::LbConfig parse(const std::string& text) {
        return xlb::parse_config(edge::config::parse(text, "test.toml"));
    }
    void reload(const std::string& text) {
        cfg = parse(text);
        ctl->apply(cfg);
    }
    edge::bpf::TestRun run(const Bytes& pkt) { return edge::bpf::test_run(bpf_program__fd(s->progs.xdp_lb), pkt); }
    uint64_t reason(uint32_t r) { return xlb::percpu_sum(bpf_map__fd(s->maps.xlb_reasons), r, 1)[0]; }
    xlb_svc_stats svc(const std::string& name) {
        auto id = ctl->services().at(name).id;
        auto v = xlb::percpu_sum(bpf_map__fd(s->maps.xlb_svc_stats), id, sizeof(xlb_svc_stats) / 8);
        xlb_svc_stats st;
        std::memcpy(&st, v.data(), sizeof st);
        return st;
    }
    xlb_be_stats be(const char* addr) {
        auto id = ctl->backend_ids().at(ip(addr));
        auto v = xlb::percpu_sum(bpf_map__fd(s->maps.xlb_be_stats), id, sizeof(xlb_be_stats) / 8);
        xlb_be_stats st;
        std::memcpy(&st, v.data(), sizeof st);
        return st;
    }
    // The backend maglev-calc picks for this flow in this service (same library, same names).
    std::string maglev(const edge_flow_key& k, const std::string& service) {
        for (auto& sc : cfg.services) {
            if (sc.name() != service) continue;
            edge::maglev::Table t(xlb::maglev_backends(sc), cfg.table_size);
            return t.backends()[t.lookup(edge::hash::flow_hash(k, cfg.hash_key))].name;
        }
        FAIL("no service " << service);
        return {};
    }
};

Packet parse(const Bytes& b) { return parse_packet(b, LinkType::ethernet); }

// What the program must produce: L2 with MACs swapped (no next-hop MAC configured), then an
// outer header built by PacketBuilder (its own lengths and checksum), then the inner packet.
Bytes expected_encap(const Bytes& in, const IpAddr& backend, const Mac* dst_mac = nullptr,
                     const edge_flow_key* hint_key = nullptr) {
    Packet p = parse(in);
    REQUIRE(p.ip_version != 0);
    Bytes inner(in.begin() + static_cast<long>(p.l3_off), in.end());
    size_t inner_len = p.ip_version == 4 ? (size_t(inner[2]) << 8 | inner[3]) : (size_t(inner[4]) << 8 | inner[5]) + 40;
    inner.resize(inner_len);
    uint32_t hint = xlb_flow_hint(hint_key ? hint_key : &p.key);
    uint8_t tos = p.ip_version == 4 ? inner[1] : uint8_t((inner[0] << 4) | (inner[1] >> 4));
    PacketBuilder b;
    b.eth(kLbMac, dst_mac ? *dst_mac : kClientMac);
    for (int i = 0; i < p.vlan_count; i++) b.vlan(p.vlan_ids[size_t(i)], i == 0 && p.vlan_count == 2 ? 0x88a8 : 0x8100);
    if (backend.is_v4()) {
        uint32_t src = 0xac100000u | (hint & 0xffffu);
        b.ipv4(IpAddr::v4(src), backend).ttl(64).tos(tos).ip_id(0);
        if (p.ip_version == 6 || p.dont_fragment) b.dont_fragment();
    } else {
        auto a = ip("fd00:e:1b::").raw();
        a[12] = uint8_t(hint >> 24), a[13] = uint8_t(hint >> 16), a[14] = uint8_t(hint >> 8), a[15] = uint8_t(hint);
        b.ipv6(IpAddr::v6(a), backend).ttl(64).tos(tos);
    }
    b.proto(p.ip_version == 4 ? 4 : 41).payload(inner);
    Bytes out = b.build();
    if (backend.is_v6()) {  // PacketBuilder has no flow label: the program puts the flow's bits there
        size_t o = 14 + 4 * p.vlan_count;
        out[o + 1] |= uint8_t((hint >> 16) & 0xf);
        out[o + 2] = uint8_t(hint >> 8);
        out[o + 3] = uint8_t(hint);
    }
    return out;
}

// The outer destination of an encapsulated frame, as text.
std::string outer_dst(const Bytes& out) {
    Packet p = parse(out);
    REQUIRE(p.ip_version != 0);
    return p.dst.to_string();
}

bool ipv4_checksum_ok(const Bytes& out, size_t off) {
    Checksum c;
    c.add(std::span<const uint8_t>(out.data() + off, 20));
    return c.finish() == 0;
}

Bytes tcp4(const char* src, uint16_t sport, const char* dst, uint16_t dport, uint8_t flags = TcpFlags::syn) {
    return PacketBuilder().eth(kClientMac, kLbMac).ipv4(ip(src), ip(dst)).tcp(sport, dport).flags(flags).payload("GET /").build();
}
Bytes udp4(const char* src, uint16_t sport, const char* dst, uint16_t dport, std::string_view payload = "hello") {
    return PacketBuilder().eth(kClientMac, kLbMac).ipv4(ip(src), ip(dst)).udp(sport, dport).payload(payload).build();
}
Bytes tcp6(const char* src, uint16_t sport, const char* dst, uint16_t dport, uint8_t flags = TcpFlags::syn) {
    return PacketBuilder().eth(kClientMac, kLbMac).ipv6(ip(src), ip(dst)).tcp(sport, dport).flags(flags).payload("GET /").build();
}

void check_tx(Lb& lb, const Bytes& in, const std::string& service, const Mac* mac = nullptr) {
    Packet p = parse(in);
    std::string want = lb.maglev(p.key, service);
    auto r = lb.run(in);
    REQUIRE(r.retval == XDP_TX);
    CHECK(outer_dst(r.data) == want);
    Bytes exp = expected_encap(in, ip(want.c_str()), mac);
    CHECK(r.data == exp);
    Packet o = parse(r.data);
    if (o.ip_version == 4) CHECK(ipv4_checksum_ok(r.data, o.l3_off));
}

std::string quic_short(uint32_t sid, uint8_t config_id = 0) {
    std::string s;
    s.push_back(char(0x40));                    // short header, fixed bit
    s.push_back(char((config_id << 5) | 7));    // QUIC-LB first octet: config id | length - 1 (8-byte CID)
    s.push_back(char(sid >> 8));
    s.push_back(char(sid & 0xff));
    s.append("\x11\x22\x33\x44\x55", 5);        // nonce
    s.append("protected payload");
    return s;
}
}  // namespace

TEST_CASE("IPv4 TCP and UDP to a VIP: IPv4-in-IPv4 to the Maglev backend, exact bytes and checksums") {
    Lb lb;
    check_tx(lb, tcp4("198.51.100.7", 5555, "203.0.113.10", 80), "203.0.113.10:80/tcp");
    check_tx(lb, tcp4("198.51.100.8", 40000, "203.0.113.10", 80, TcpFlags::ack | TcpFlags::psh), "203.0.113.10:80/tcp");
    check_tx(lb, udp4("198.51.100.9", 1234, "203.0.113.10", 53), "203.0.113.10:53/udp");
    // DF and TOS of the inner packet are carried to the outer header.
    check_tx(lb, PacketBuilder().eth(kClientMac, kLbMac).ipv4(ip("198.51.100.10"), ip("203.0.113.10")).dont_fragment().tos(0xb8).tcp(1, 80).build(),
             "203.0.113.10:80/tcp");
    CHECK(lb.reason(XLB_R_TX) == 4);
}

TEST_CASE("IPv6-in-IPv6, IPv6-in-IPv4 and IPv4-in-IPv6") {
    Lb lb;
    check_tx(lb, tcp6("2001:db8:ff::1", 5555, "2001:db8::10", 443), "[2001:db8::10]:443/tcp");
    check_tx(lb, PacketBuilder().eth(kClientMac, kLbMac).ipv6(ip("2001:db8:ff::2"), ip("2001:db8::10")).tos(0x28).hop_by_hop().tcp(6000, 443).build(),
             "[2001:db8::10]:443/tcp");
    check_tx(lb, tcp6("2001:db8:ff::3", 5555, "2001:db8::20", 80), "[2001:db8::20]:80/tcp");
    check_tx(lb, tcp4("198.51.100.7", 5555, "203.0.113.20", 80), "203.0.113.20:80/tcp");
}

TEST_CASE("VLAN and QinQ tags stay in front of the outer header") {
    Lb lb;
    check_tx(lb, PacketBuilder().eth(kClientMac, kLbMac).vlan(100).ipv4(ip("198.51.100.7"), ip("203.0.113.10")).tcp(7, 80).build(),
             "203.0.113.10:80/tcp");
    check_tx(lb, PacketBuilder().eth(kClientMac, kLbMac).qinq(10, 20).ipv4(ip("198.51.100.7"), ip("203.0.113.10")).udp(7, 53).build(),
             "203.0.113.10:53/udp");
    check_tx(lb, PacketBuilder().eth(kClientMac, kLbMac).vlan(7).ipv6(ip("2001:db8:ff::1"), ip("2001:db8::10")).tcp(7, 443).build(),
             "[2001:db8::10]:443/tcp");
}

TEST_CASE("a backend's MAC in the config is the destination MAC") {
    Lb lb;
    Mac m{2, 0, 0, 0, 0x0b, 0x31};
    check_tx(lb, tcp4("198.51.100.7", 5555, "203.0.113.40", 80), "203.0.113.40:80/tcp", &m);
}

TEST_CASE("established IPv4 TCP flows from this CPU's flow cache: the same bytes, verdicts and counters") {
    // Pinned: the copies are per CPU, so the second packet of each flow takes the
    // straight-line path (fast_hit4) that serves cached IPv4 TCP flows.
    cpu_set_t old_set, one;
    REQUIRE(sched_getaffinity(0, sizeof old_set, &old_set) == 0);
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &old_set)) {
            CPU_SET(c, &one);
            break;
        }
    REQUIRE(sched_setaffinity(0, sizeof one, &one) == 0);
    std::string cfg = std::string(kConfig) + kRedirectService;
    Lb lb(cfg);
    const Mac bmac{2, 0, 0, 0, 0x0b, 0x31};
    auto ack = [](const char* dst, uint16_t sport) { return tcp4("198.51.100.7", sport, dst, 80, TcpFlags::ack | TcpFlags::psh); };
    Bytes padded = ack("203.0.113.10", 7003);
    padded.resize(padded.size() + 12, 0xee);  // Ethernet padding: not carried into the tunnel
    struct Flow {
        Bytes in;
        const char* service;
        const Mac* mac;
    };
    std::vector<Flow> flows = {
        {ack("203.0.113.10", 7001), "203.0.113.10:80/tcp", nullptr},
        {PacketBuilder().eth(kClientMac, kLbMac).ipv4(ip("198.51.100.7"), ip("203.0.113.10")).dont_fragment().tos(0xb8).tcp(7002, 80).flags(TcpFlags::ack).payload("x").build(),
         "203.0.113.10:80/tcp", nullptr},
        {padded, "203.0.113.10:80/tcp", nullptr},
        {ack("203.0.113.40", 7004), "203.0.113.40:80/tcp", &bmac},
    };
    for (auto& f : flows) {
        std::string want = lb.maglev(parse(f.in).key, f.service);
        Bytes exp = expected_encap(f.in, ip(want.c_str()), f.mac);
        for (int i = 0; i < 3; i++) {  // a new flow by Maglev, then two hits
            auto r = lb.run(f.in);
            REQUIRE(r.retval == XDP_TX);
            CHECK(r.data == exp);
        }
    }
    auto st = lb.svc("203.0.113.10:80/tcp");
    CHECK(st.ct_hits == 6);
    CHECK(st.new_flows == 3);
    CHECK(st.packets == 9);
    uint64_t bytes = 0;
    for (int i = 0; i < 3; i++) bytes += 3 * (uint64_t(flows[size_t(i)].in[16]) << 8 | flows[size_t(i)].in[17]);  // IPv4 total length
    CHECK(st.bytes == bytes);
    CHECK(lb.svc("203.0.113.40:80/tcp").ct_hits == 2);
    CHECK(lb.reason(XLB_R_TX) == 12);
    // Redirected through the devmap: the same frame on every packet.
    Bytes in = ack("203.0.113.50", 7005);
    auto first = lb.run(in);
    REQUIRE(first.retval == XDP_REDIRECT);
    for (int i = 0; i < 2; i++) {
        auto r = lb.run(in);
        CHECK(r.retval == XDP_REDIRECT);
        CHECK(r.data == first.data);
    }
    CHECK(lb.reason(XLB_R_REDIRECT) == 3);
    CHECK(lb.be("10.0.2.11").packets == 3);
    // Not for a VIP (a port no service has): untouched, counted.
    Bytes miss = ack("203.0.113.10", 7006);
    miss[14 + 20 + 3] = 81;  // destination port 81
    auto r = lb.run(miss);
    CHECK(r.retval == XDP_PASS);
    CHECK(r.data == miss);
    CHECK(lb.reason(XLB_R_PASS_NOT_VIP) == 1);
    REQUIRE(sched_setaffinity(0, sizeof old_set, &old_set) == 0);
}

TEST_CASE("traffic that is not for a VIP passes untouched and is counted") {
    Lb lb;
    std::vector<Bytes> misses = {
        tcp4("198.51.100.7", 5555, "203.0.113.11", 80),   // other address
        tcp4("198.51.100.7", 5555, "203.0.113.10", 81),   // other port
        udp4("198.51.100.7", 5555, "203.0.113.10", 80),   // other protocol
        tcp6("2001:db8:ff::1", 5555, "2001:db8::11", 443),
        tcp6("2001:db8:ff::1", 5555, "2001:db8::10", 80),
        PacketBuilder().eth(kClientMac, kLbMac).ipv4(ip("198.51.100.7"), ip("203.0.113.10")).proto(47).payload("gre").build(),
    };
    for (auto& m : misses) {
        auto r = lb.run(m);
        CHECK(r.retval == XDP_PASS);
        CHECK(r.data == m);
    }
    CHECK(lb.reason(XLB_R_PASS_NOT_VIP) == misses.size());
    Bytes arp(60, 0);
    arp[12] = 0x08, arp[13] = 0x06;
    auto r = lb.run(arp);
    CHECK(r.retval == XDP_PASS);
    CHECK(r.data == arp);
    CHECK(lb.reason(XLB_R_PASS_NOT_IP) == 1);
    CHECK(lb.reason(XLB_R_TX) == 0);
}

TEST_CASE("truncation at every byte: to a VIP dropped once the IP header is there, else passed") {
    Lb lb;
    struct Fx {
        Bytes pkt;
        size_t ip_end;  // bytes needed to know the destination
    };
    std::vector<Fx> fx = {
        {tcp4("198.51.100.7", 5555, "203.0.113.10", 80), 14 + 20},
        {udp4("198.51.100.7", 5555, "203.0.113.10", 53), 14 + 20},
        {tcp6("2001:db8:ff::1", 5555, "2001:db8::10", 443), 14 + 40},
        {PacketBuilder().eth(kClientMac, kLbMac).vlan(5).ipv4(ip("198.51.100.7"), ip("203.0.113.10")).tcp(1, 80).build(), 18 + 20},
    };
    uint64_t drops = 0, passes = 0;
    for (auto& f : fx) {
        for (size_t len = 0; len < f.pkt.size(); len++) {
            Bytes cut(f.pkt.begin(), f.pkt.begin() + static_cast<long>(len));
            CAPTURE(len);
            if (len < 14) continue;  // BPF_PROG_TEST_RUN refuses frames shorter than Ethernet
            auto r = lb.run(cut);
            if (len < f.ip_end) {
                CHECK(r.retval == XDP_PASS);
                CHECK(r.data == cut);
                passes++;
            } else {
                CHECK(r.retval == XDP_DROP);
                drops++;
            }
        }
        CHECK(lb.run(f.pkt).retval == XDP_TX);
    }
    CHECK(lb.reason(XLB_R_DROP_TRUNCATED) == drops);
    CHECK(lb.reason(XLB_R_PASS_TRUNCATED) + lb.reason(XLB_R_PASS_NOT_IP) == passes);
    CHECK(lb.reason(XLB_R_TX) == fx.size());
}

TEST_CASE("an IPv4 total length longer than the frame is dropped, Ethernet padding is not sent") {
    Lb lb;
    Bytes p = tcp4("198.51.100.7", 5555, "203.0.113.10", 80);
    Bytes lie = p;
    lie[16] = 0x05;  // total length 0x05xx > frame
    lie[24] = lie[25] = 0;
    CHECK(lb.run(lie).retval == XDP_DROP);
    Bytes small = PacketBuilder().eth(kClientMac, kLbMac).ipv4(ip("198.51.100.7"), ip("203.0.113.10")).udp(9, 53).build();
    Bytes padded = small;
    padded.resize(60, 0);  // minimum Ethernet frame
    auto r = lb.run(padded);
    REQUIRE(r.retval == XDP_TX);
    Packet o = parse(r.data);
    CHECK(r.data.size() == small.size() + 20);
    CHECK(o.dst.to_string() == lb.maglev(parse(small).key, "203.0.113.10:53/udp"));
}

TEST_CASE("fragments to a VIP are dropped and counted; to other addresses they pass") {
    Lb lb;
    auto first = PacketBuilder().eth(kClientMac, kLbMac).ipv4(ip("198.51.100.9"), ip("203.0.113.10")).fragment(0, true, 77).udp(1000, 53).payload(std::string(64, 'x')).build();
    auto later = PacketBuilder().eth(kClientMac, kLbMac).ipv4(ip("198.51.100.9"), ip("203.0.113.10")).fragment(1480, false, 77).proto(17).payload(std::string(64, 'y')).build();
    auto v6 = PacketBuilder().eth(kClientMac, kLbMac).ipv6(ip("2001:db8:ff::9"), ip("2001:db8::10")).fragment(0, true, 5).tcp(1, 443).build();
    auto v6later = PacketBuilder().eth(kClientMac, kLbMac).ipv6(ip("2001:db8:ff::9"), ip("2001:db8::10")).fragment(1448, false, 5).proto(6).payload(std::string(32, 'z')).build();
    for (auto* f : {&first, &later, &v6, &v6later}) CHECK(lb.run(*f).retval == XDP_DROP);
    CHECK(lb.reason(XLB_R_DROP_FRAGMENT) == 4);
    auto other = PacketBuilder().eth(kClientMac, kLbMac).ipv4(ip("198.51.100.9"), ip("192.0.2.1")).fragment(1480, false, 77).proto(17).payload("y").build();
    auto r = lb.run(other);
    CHECK(r.retval == XDP_PASS);
    CHECK(r.data == other);
}

TEST_CASE("IPv4 options to a VIP are forwarded inside the tunnel and counted") {
    Lb lb;
    check_tx(lb, PacketBuilder().eth(kClientMac, kLbMac).ipv4(ip("192.0.2.1"), ip("203.0.113.10")).ipv4_options({1, 1, 1, 1, 0x94, 4, 0, 0}).tcp(40000, 80).build(),
             "203.0.113.10:80/tcp");
    CHECK(lb.reason(XLB_R_IP_OPTIONS) == 1);
}

TEST_CASE("ICMP frag-needed and ICMPv6 packet-too-big follow the flow they quote") {
    Lb lb;
    // A flow, then a router's error about the VIP's reply to it.
    Bytes syn = tcp4("198.51.100.7", 5555, "203.0.113.10", 80);
    auto first = lb.run(syn);
    REQUIRE(first.retval == XDP_TX);
    auto reply = PacketBuilder().ipv4(ip("203.0.113.10"), ip("198.51.100.7")).tcp(80, 5555).flags(TcpFlags::ack).payload(std::string(100, 'r')).build();
    auto icmp = PacketBuilder().eth(kClientMac, kLbMac).ipv4(ip("192.0.2.254"), ip("203.0.113.10")).icmp_error(3, 4, reply).build();
    auto r = lb.run(icmp);
    REQUIRE(r.retval == XDP_TX);
    CHECK(outer_dst(r.data) == outer_dst(first.data));
    // The outer source is the flow's, so the error lands on the flow's receive queue.
    auto flow = parse(syn).key;
    CHECK(r.data == expected_encap(icmp, ip(outer_dst(first.data).c_str()), nullptr, &flow));
    CHECK(lb.reason(XLB_R_ICMP_TOO_BIG) == 1);

    Bytes syn6 = tcp6("2001:db8:ff::1", 5555, "2001:db8::10", 443);
    auto f6 = lb.run(syn6);
    REQUIRE(f6.retval == XDP_TX);
    auto reply6 = PacketBuilder().ipv6(ip("2001:db8::10"), ip("2001:db8:ff::1")).tcp(443, 5555).flags(TcpFlags::ack).payload(std::string(64, 'r')).build();
    auto ptb = PacketBuilder().eth(kClientMac, kLbMac).ipv6(ip("2001:db8:ee::1"), ip("2001:db8::10")).icmp_error(2, 0, reply6).build();
    auto r6 = lb.run(ptb);
    REQUIRE(r6.retval == XDP_TX);
    CHECK(outer_dst(r6.data) == outer_dst(f6.data));
    CHECK(lb.reason(XLB_R_ICMP_TOO_BIG) == 2);

    // Not a too-big error, or quoting a flow of no service: passed to the stack.
    auto echo = PacketBuilder().eth(kClientMac, kLbMac).ipv4(ip("198.51.100.7"), ip("203.0.113.10")).echo_request(1, 1).build();
    auto unreach = PacketBuilder().eth(kClientMac, kLbMac).ipv4(ip("192.0.2.254"), ip("203.0.113.10")).icmp_error(3, 1, reply).build();
    auto other = PacketBuilder().ipv4(ip("203.0.113.99"), ip("198.51.100.7")).tcp(80, 5555).build();
    auto about_other = PacketBuilder().eth(kClientMac, kLbMac).ipv4(ip("192.0.2.254"), ip("203.0.113.99")).icmp_error(3, 4, other).build();
    for (auto* p : {&echo, &unreach, &about_other}) {
        auto x = lb.run(*p);
        CHECK(x.retval == XDP_PASS);
        CHECK(x.data == *p);
    }
    CHECK(lb.reason(XLB_R_PASS_ICMP) == 3);
}

TEST_CASE("the connection table keeps a flow on its backend when the table changes") {
    Lb lb;
    // Find flows whose Maglev backend changes when 10.0.1.13 is replaced by 10.0.1.14.
    std::string after = std::string(kConfig);
    after.replace(after.find("backends = [\"10.0.1.11\", \"10.0.1.12\", \"10.0.1.13\"]"), 50,
                  "backends = [\"10.0.1.11\", \"10.0.1.12\", \"10.0.1.14\"]");
    auto cfg2 = Lb::parse(after);
    edge::maglev::Table t2(xlb::maglev_backends(cfg2.services[0]), cfg2.table_size);
    int moved = 0;
    std::vector<std::pair<Bytes, std::string>> flows;
    for (uint16_t port = 1000; port < 1400; port++) {
        Bytes syn = tcp4("198.51.100.7", port, "203.0.113.10", 80);
        auto r = lb.run(syn);
        REQUIRE(r.retval == XDP_TX);
        flows.emplace_back(tcp4("198.51.100.7", port, "203.0.113.10", 80, TcpFlags::ack), outer_dst(r.data));
    }
    auto before_stats = lb.svc("203.0.113.10:80/tcp");
    CHECK(before_stats.new_flows == 400);
    CHECK(before_stats.ct_misses == 400);
    lb.reload(after);
    for (auto& [ack, backend] : flows) {
        Packet p = parse(ack);
        std::string now = t2.backends()[t2.lookup(edge::hash::flow_hash(p.key, cfg2.hash_key))].name;
        if (now != backend) moved++;
        auto r = lb.run(ack);
        REQUIRE(r.retval == XDP_TX);
        CHECK(outer_dst(r.data) == backend);  // established: old backend, even 10.0.1.13
    }
    CHECK(moved > 50);  // the test means something: many flows would have moved
    auto st = lb.svc("203.0.113.10:80/tcp");
    CHECK(st.ct_hits == 400);
    CHECK(st.packets == 800);
    // A new connection (SYN) on the same tuple takes the new table.
    for (auto& [ack, backend] : flows) {
        Bytes syn = ack;
        Packet p = parse(syn);
        syn[p.l4_off + 13] = TcpFlags::syn;
        auto r = lb.run(syn);  // checksum is stale, but the balancer does not verify it
        std::string now = t2.backends()[t2.lookup(edge::hash::flow_hash(p.key, cfg2.hash_key))].name;
        CHECK(outer_dst(r.data) == now);
    }
}

TEST_CASE("table updates flip between two halves of the ring; a drained backend gets no new flows") {
    Lb lb;
    auto key = xlb::vip_key(lb.cfg.services[0]);
    xlb_service before{}, after{};
    REQUIRE(bpf_map_lookup_elem(bpf_map__fd(lb.s->maps.xlb_services), &key, &before) == 0);
    // Established flows first.
    std::map<uint16_t, std::string> est;
    for (uint16_t port = 2000; port < 2300; port++) est[port] = outer_dst(lb.run(tcp4("198.51.100.8", port, "203.0.113.10", 80)).data);
    std::string drained = std::string(kConfig);
    drained.replace(drained.find("backends = [\"10.0.1.11\", \"10.0.1.12\", \"10.0.1.13\"]"), 50,
                    "backends = [\"10.0.1.11\", \"10.0.1.12\", \"10.0.1.13=0\"]");
    lb.reload(drained);
    REQUIRE(bpf_map_lookup_elem(bpf_map__fd(lb.s->maps.xlb_services), &key, &after) == 0);
    CHECK(after.id == before.id);
    CHECK(after.ring_base != before.ring_base);
    CHECK((after.ring_base == before.ring_base + lb.cfg.table_size || before.ring_base == after.ring_base + lb.cfg.table_size));
    int to13 = 0;
    for (auto& [port, b] : est) {
        auto r = lb.run(tcp4("198.51.100.8", port, "203.0.113.10", 80, TcpFlags::ack));
        CHECK(outer_dst(r.data) == b);
        to13 += b == "10.0.1.13";
    }
    CHECK(to13 > 30);
    for (uint16_t port = 3000; port < 3500; port++) {
        auto r = lb.run(tcp4("198.51.100.9", port, "203.0.113.10", 80));
        REQUIRE(r.retval == XDP_TX);
        CHECK(outer_dst(r.data) != "10.0.1.13");
    }
}

TEST_CASE("a service with every backend drained drops and counts") {
    Lb lb;
    CHECK(lb.run(udp4("198.51.100.7", 5, "203.0.113.30", 53)).retval == XDP_DROP);
    CHECK(lb.reason(XLB_R_DROP_NO_BACKEND) == 1);
    CHECK(lb.svc("203.0.113.30:53/udp").drops == 1);
}

TEST_CASE("QUIC: long headers by Maglev, short headers by the server id in the DCID") {
    Lb lb;
    const std::string svc = "203.0.113.10:443/udp";
    // Long header (Initial): Maglev on the 4-tuple.
    std::string initial = "\xc0\x00\x00\x00\x01\x08\x01\x02\x03\x04\x05\x06\x07\x08\x00";
    initial.append(1200 - initial.size(), '\0');
    check_tx(lb, udp4("198.51.100.7", 50000, "203.0.113.10", 443, initial), svc);
    // Short header with each backend's server id: that backend, whatever the 4-tuple.
    std::map<uint32_t, std::string> sid = {{0x0a01, "10.0.1.11"}, {0x0a02, "10.0.1.12"}, {0x0a03, "10.0.1.13"}};
    for (auto& [id, addr] : sid) {
        for (uint16_t port = 40000; port < 40050; port++) {  // a client that changes port keeps its backend
            auto r = lb.run(udp4("198.51.100.7", port, "203.0.113.10", 443, quic_short(id)));
            REQUIRE(r.retval == XDP_TX);
            CHECK(outer_dst(r.data) == addr);
        }
    }
    CHECK(lb.reason(XLB_R_QUIC_CID) == 150);
    CHECK(lb.svc(svc).quic_cid == 150);
    // Unknown server id, or another configuration's CID: Maglev, counted.
    for (auto* p : {"unknown", "config"}) {
        Bytes pkt = udp4("198.51.100.7", 41000, "203.0.113.10", 443,
                         std::string(p) == "unknown" ? quic_short(0x0bad) : quic_short(0x0a01, 3));
        check_tx(lb, pkt, svc);
    }
    CHECK(lb.reason(XLB_R_QUIC_CID_UNKNOWN) == 2);
    // Too short to hold our CID: Maglev.
    check_tx(lb, udp4("198.51.100.7", 41001, "203.0.113.10", 443, std::string("\x40\x07\x0a", 3)), svc);
    // The same short header to a non-QUIC UDP service is not CID-routed.
    Bytes dns = udp4("198.51.100.7", 41002, "203.0.113.10", 53, quic_short(0x0a03));
    check_tx(lb, dns, "203.0.113.10:53/udp");
    CHECK(lb.reason(XLB_R_QUIC_CID) == 150);
}

TEST_CASE("per-service and per-backend counters add up") {
    Lb lb;
    uint64_t bytes = 0;
    for (uint16_t port = 100; port < 200; port++) {
        Bytes p = udp4("198.51.100.7", port, "203.0.113.10", 53, std::string(port, 'x'));
        bytes += p.size() - 14;
        CHECK(lb.run(p).retval == XDP_TX);
    }
    auto st = lb.svc("203.0.113.10:53/udp");
    CHECK(st.packets == 100);
    CHECK(st.bytes == bytes);
    CHECK(st.new_flows == 100);
    uint64_t sum = 0, sum_new = 0;
    for (auto* b : {"10.0.1.11", "10.0.1.12", "10.0.1.13"}) {
        auto s = lb.be(b);
        CHECK(s.packets > 10);
        sum += s.packets;
        sum_new += s.new_flows;
    }
    CHECK(sum == 100);
    CHECK(sum_new == 100);
}

TEST_CASE("the outer source varies per flow inside the configured prefix") {
    Lb lb;
    std::set<std::string> v4, v6;
    for (uint16_t port = 1; port <= 200; port++) {
        auto r = lb.run(tcp4("198.51.100.7", port, "203.0.113.10", 80));
        Packet o = parse(r.data);
        CHECK(Prefix::parse("172.16.0.0/16")->contains(o.src));
        v4.insert(o.src.to_string());
        auto r6 = lb.run(tcp6("2001:db8:ff::1", port, "2001:db8::10", 443));
        Packet o6 = parse(r6.data);
        CHECK(Prefix::parse("fd00:e:1b::/96")->contains(o6.src));
        v6.insert(o6.src.to_string());
    }
    CHECK(v4.size() > 190);
    CHECK(v6.size() > 190);
}

TEST_CASE("xdp_lb and maglev-calc's table pick the same backend for 10,000 random flows") {
    Lb lb;
    std::mt19937_64 rng(42);
    int checked = 0;
    for (int i = 0; i < 10000; i++) {
        bool v6 = rng() % 5 == 0;
        uint16_t sport = static_cast<uint16_t>(1024 + rng() % 60000);
        Bytes pkt;
        std::string svc;
        if (v6) {
            std::array<uint8_t, 16> a{0x20, 0x01, 0x0d, 0xb8, 0, 0xff};
            for (int k = 8; k < 16; k++) a[size_t(k)] = static_cast<uint8_t>(rng());
            pkt = PacketBuilder().eth(kClientMac, kLbMac).ipv6(IpAddr::v6(a), ip("2001:db8::10")).tcp(sport, 443).flags(TcpFlags::syn).build();
            svc = "[2001:db8::10]:443/tcp";
        } else {
            auto src = IpAddr::v4(static_cast<uint32_t>(0x0a000000u | (rng() & 0x00ffffffu)));
            bool udp = rng() % 2;
            auto b = PacketBuilder().eth(kClientMac, kLbMac).ipv4(src, ip("203.0.113.10"));
            if (udp) b.udp(sport, 53);
            else b.tcp(sport, 80).flags(TcpFlags::syn);
            pkt = b.build();
            svc = udp ? "203.0.113.10:53/udp" : "203.0.113.10:80/tcp";
        }
        auto r = lb.run(pkt);
        REQUIRE(r.retval == XDP_TX);
        Packet p = parse(pkt);
        if (outer_dst(r.data) != lb.maglev(p.key, svc)) FAIL_CHECK("flow " << format_flow(p.key) << " differs");
        checked++;
    }
    CHECK(checked == 10000);
}

TEST_CASE("a deleted service stops forwarding its established flows; the fast path checks the service generation") {
    Lb lb;
    std::vector<Bytes> acks;
    for (uint16_t port = 5000; port < 5020; port++) {
        REQUIRE(lb.run(tcp4("198.51.100.7", port, "203.0.113.10", 80)).retval == XDP_TX);
        acks.push_back(tcp4("198.51.100.7", port, "203.0.113.10", 80, TcpFlags::ack));
    }
    for (auto& a : acks) CHECK(lb.run(a).retval == XDP_TX);  // conntrack hits
    std::string without = std::string(kConfig);
    auto at = without.find("[[service]]\nvip = \"203.0.113.10\"\nport = 80\n");
    REQUIRE(at != std::string::npos);
    without.erase(at, without.find("[[service]]", at + 5) - at);
    lb.reload(without);
    for (auto& a : acks) {
        auto r = lb.run(a);
        CHECK(r.retval == XDP_PASS);  // no service: the stack's, even with a conntrack entry
        CHECK(r.data == a);
    }
    // Re-added (it may get another id): its flows are balanced again, by the table.
    lb.reload(kConfig);
    for (auto& a : acks) CHECK(lb.run(a).retval == XDP_TX);
}

TEST_CASE("a SYN for a tuple in the table takes the new table and the following packets follow it") {
    Lb lb;
    std::string after = std::string(kConfig);
    after.replace(after.find("backends = [\"10.0.1.11\", \"10.0.1.12\", \"10.0.1.13\"]"), 50,
                  "backends = [\"10.0.1.11\", \"10.0.1.12\", \"10.0.1.14\"]");
    std::map<uint16_t, std::string> first;
    for (uint16_t port = 6000; port < 6200; port++) first[port] = outer_dst(lb.run(tcp4("198.51.100.9", port, "203.0.113.10", 80)).data);
    lb.reload(after);
    int changed = 0;
    for (auto& [port, b] : first) {
        auto syn = lb.run(tcp4("198.51.100.9", port, "203.0.113.10", 80));
        REQUIRE(syn.retval == XDP_TX);
        std::string now = outer_dst(syn.data);
        CHECK(now == lb.maglev(parse(tcp4("198.51.100.9", port, "203.0.113.10", 80)).key, "203.0.113.10:80/tcp"));
        changed += now != b;
        auto ack = lb.run(tcp4("198.51.100.9", port, "203.0.113.10", 80, TcpFlags::ack));
        CHECK(outer_dst(ack.data) == now);  // the entry was rewritten
    }
    CHECK(changed > 20);
}

TEST_CASE("a backend behind another interface: encapsulated and redirected through the devmap") {
    std::string cfg = std::string(kConfig) + kRedirectService;
    Lb lb(cfg);
    Bytes in = tcp4("198.51.100.7", 5555, "203.0.113.50", 80);
    auto r = lb.run(in);
    CHECK(r.retval == XDP_REDIRECT);
    Mac dst{2, 0, 0, 0, 0x0c, 0x11};
    Bytes exp = expected_encap(in, ip("10.0.2.11"), &dst);
    std::fill(exp.begin() + 6, exp.begin() + 12, 0);  // source MAC: lo's (all zero)
    CHECK(r.data == exp);
    CHECK(lb.reason(XLB_R_REDIRECT) == 1);
    CHECK(lb.reason(XLB_R_TX) == 0);
    uint32_t port = 0, ifindex = 0;
    REQUIRE(bpf_map_lookup_elem(bpf_map__fd(lb.s->maps.xlb_tx_ports), &port, &ifindex) == 0);
    CHECK(ifindex == if_nametoindex("lo"));
    // The other services still go out with XDP_TX.
    check_tx(lb, tcp4("198.51.100.7", 5555, "203.0.113.10", 80), "203.0.113.10:80/tcp");
}

TEST_CASE("render_config reads back to the same configuration; a second controller adopts the maps") {
    auto c = Lb::parse(kConfig);
    std::string text = xlb::render_config(c);
    auto c2 = Lb::parse(text);
    CHECK(xlb::render_config(c2) == text);
    REQUIRE(c2.services.size() == c.services.size());
    for (size_t i = 0; i < c.services.size(); i++) {
        CHECK(c2.services[i].name() == c.services[i].name());
        CHECK(xlb::maglev_backends(c2.services[i]).size() == xlb::maglev_backends(c.services[i]).size());
    }
    CHECK(c2.hash_key == c.hash_key);

    Lb lb;
    std::map<uint16_t, std::string> est;
    for (uint16_t port = 7000; port < 7200; port++) est[port] = outer_dst(lb.run(tcp4("198.51.100.8", port, "203.0.113.10", 80)).data);
    // Another process (xdp-lb backend drain) takes over the maps and drains 10.0.1.13.
    xlb::Controller other(xlb::skel_maps(lb.s), lb.cfg.table_size, lb.cfg.max_services);
    other.adopt();
    CHECK(other.services().size() == lb.ctl->services().size());
    CHECK(other.backend_ids() == lb.ctl->backend_ids());
    auto drained = c2;
    for (auto& b : drained.services[0].backends)
        if (b.addr == ip("10.0.1.13")) b.weight = 0;
    other.apply(drained);
    for (auto& [name, st] : other.services()) CHECK(st.id == lb.ctl->services().at(name).id);
    for (auto& [port, b] : est) CHECK(outer_dst(lb.run(tcp4("198.51.100.8", port, "203.0.113.10", 80, TcpFlags::ack)).data) == b);
    for (uint16_t port = 8000; port < 8300; port++)
        CHECK(outer_dst(lb.run(tcp4("198.51.100.9", port, "203.0.113.10", 80)).data) != "10.0.1.13");
}

// ---- Daisy chaining (Unimog's second hop) ------------------------------------------------

namespace {
const char* kDaisy = R"(
[lb]
table_size = 251
hash_key = "00112233445566778899aabbccddeeff"

[[service]]
vip = "203.0.113.60"
port = 80
proto = "tcp"
daisy_chain = true
backends = ["10.0.1.11", "10.0.1.12"]

[[service]]
vip = "203.0.113.61"
port = 80
proto = "tcp"
backends = ["10.0.1.11", "10.0.1.12"]

[[service]]
vip = "2001:db8::60"
port = 80
proto = "tcp"
daisy_chain = true
backends = ["2001:db8:1::11", "2001:db8:1::12"]
)";

std::string daisy_changed() {
    std::string s = kDaisy;
    for (auto [from, to] : {std::pair<std::string, std::string>{"[\"10.0.1.11\", \"10.0.1.12\"]", "[\"10.0.1.11\", \"10.0.1.12\", \"10.0.1.13\"]"},
                            {"[\"10.0.1.11\", \"10.0.1.12\"]", "[\"10.0.1.11\", \"10.0.1.12\", \"10.0.1.13\"]"},
                            {"[\"2001:db8:1::11\", \"2001:db8:1::12\"]", "[\"2001:db8:1::11\", \"2001:db8:1::12\", \"2001:db8:1::13\"]"}})
        s.replace(s.find(from), from.size(), to);
    return s;
}

// The GUE frame xdp_lb must send to `backend` carrying `prev` (edge/lb.h), built independently.
Bytes expected_gue(const Bytes& in, const IpAddr& backend, const IpAddr& prev) {
    Packet p = parse(in);
    REQUIRE(p.ip_version != 0);
    Bytes inner(in.begin() + static_cast<long>(p.l3_off), in.end());
    size_t inner_len = p.ip_version == 4 ? (size_t(inner[2]) << 8 | inner[3]) : (size_t(inner[4]) << 8 | inner[5]) + 40;
    inner.resize(inner_len);
    uint32_t hint = xlb_flow_hint(&p.key);
    uint8_t tos = p.ip_version == 4 ? inner[1] : uint8_t((inner[0] << 4) | (inner[1] >> 4));
    Bytes pay;
    size_t alen = prev.is_v4() ? 4 : 16;
    size_t ulen = 8 + 4 + 4 + alen + inner.size();
    uint16_t sport = uint16_t(0xc000 | ((hint ^ (hint >> 16)) & 0x3fff));
    pay = {uint8_t(sport >> 8), uint8_t(sport), 0x26, 0x9e /* 9886 */, uint8_t(ulen >> 8), uint8_t(ulen), 0, 0};
    pay.push_back(uint8_t((4 + alen) / 4));           // GUE: version 0, C 0, Hlen
    pay.push_back(p.ip_version == 4 ? 4 : 41);        // inner protocol
    pay.insert(pay.end(), {0, 0});                    // flags
    pay.insert(pay.end(), {0xeb, 0, uint8_t(prev.is_v4() ? 4 : 6), 0});  // private data
    pay.insert(pay.end(), prev.bytes().begin(), prev.bytes().end());
    pay.insert(pay.end(), inner.begin(), inner.end());
    PacketBuilder b;
    b.eth(kLbMac, kClientMac);
    if (backend.is_v4()) {
        b.ipv4(IpAddr::v4(0xac100000u | (hint & 0xffffu)), backend).ttl(64).tos(tos).ip_id(0);
        if (p.ip_version == 6 || p.dont_fragment) b.dont_fragment();
    } else {
        auto a = ip("fd00:e:1b::").raw();
        a[12] = uint8_t(hint >> 24), a[13] = uint8_t(hint >> 16), a[14] = uint8_t(hint >> 8), a[15] = uint8_t(hint);
        b.ipv6(IpAddr::v6(a), backend).ttl(64).tos(tos);
    }
    b.proto(17).payload(pay);
    Bytes out = b.build();
    if (backend.is_v6()) {
        out[15] |= uint8_t((hint >> 16) & 0xf);
        out[16] = uint8_t(hint >> 8);
        out[17] = uint8_t(hint);
    }
    return out;
}

std::string name_of(uint32_t id, Lb& lb) {
    for (auto& [a, i] : lb.ctl->backend_ids())
        if (i == id) return a.to_string();
    return "none";
}
}  // namespace

TEST_CASE("daisy chaining: each slot keeps the backend it had before the table change") {
    Lb lb(kDaisy);
    auto read = [&](const char* svc) {
        xlb_service sv{};
        auto& sc = *std::find_if(lb.cfg.services.begin(), lb.cfg.services.end(), [&](auto& s) { return s.name() == svc; });
        auto k = xlb::vip_key(sc);
        REQUIRE(bpf_map_lookup_elem(bpf_map__fd(lb.s->maps.xlb_services), &k, &sv) == 0);
        std::vector<uint32_t> v(sv.ring_size);
        for (uint32_t i = 0; i < sv.ring_size; i++) {
            uint32_t key = sv.ring_base + i;
            REQUIRE(bpf_map_lookup_elem(bpf_map__fd(lb.s->maps.xlb_ring), &key, &v[i]) == 0);
        }
        return std::pair{sv, v};
    };
    auto [sv0, t0] = read("203.0.113.60:80/tcp");
    CHECK((sv0.flags & XLB_SVC_DAISY) != 0);
    for (auto e : t0) CHECK(XLB_RING_PREV(e) == XLB_RING_NONE);  // a fresh table has no history
    lb.reload(daisy_changed());
    auto [sv1, t1] = read("203.0.113.60:80/tcp");
    REQUIRE(t1.size() == t0.size());
    int moved = 0;
    for (size_t i = 0; i < t1.size(); i++) {
        if (XLB_RING_CUR(t1[i]) != XLB_RING_CUR(t0[i])) {
            moved++;
            CHECK(XLB_RING_PREV(t1[i]) == XLB_RING_CUR(t0[i]));
        } else {
            CHECK(XLB_RING_PREV(t1[i]) == XLB_RING_NONE);
        }
    }
    CHECK(moved > 50);
    // A service without daisy_chain keeps plain backend ids in its slots (what edgectl reads).
    auto [svp, tp] = read("203.0.113.61:80/tcp");
    for (auto e : tp) CHECK(e < XLB_MAX_BACKENDS);
    // Another change that leaves a slot alone keeps its previous backend; a slot that
    // moves again names the backend it just had.
    std::string third = daisy_changed();
    third.replace(third.find("\"10.0.1.13\"]"), 12, "\"10.0.1.13\", \"10.0.1.14\"]");
    lb.reload(third);
    auto [sv2, t2] = read("203.0.113.60:80/tcp");
    int kept = 0;
    for (size_t i = 0; i < t2.size(); i++) {
        if (XLB_RING_CUR(t2[i]) == XLB_RING_CUR(t1[i])) {
            CHECK(XLB_RING_PREV(t2[i]) == XLB_RING_PREV(t1[i]));
            kept += XLB_RING_PREV(t1[i]) != XLB_RING_NONE;
        } else {
            CHECK(XLB_RING_PREV(t2[i]) == XLB_RING_CUR(t1[i]));
        }
    }
    CHECK(kept > 20);
}

TEST_CASE("daisy chaining: a mid-connection packet the balancer never saw goes in GUE carrying the previous backend") {
    Lb lb(kDaisy);
    lb.reload(daisy_changed());
    auto cfg0 = Lb::parse(kDaisy);
    int gue = 0, plain = 0;
    for (uint16_t port = 10000; port < 10200; port++) {
        Bytes ack = tcp4("198.51.100.7", port, "203.0.113.60", 80, TcpFlags::ack | TcpFlags::psh);
        Packet p = parse(ack);
        std::string now = lb.maglev(p.key, "203.0.113.60:80/tcp");
        edge::maglev::Table t0(xlb::maglev_backends(cfg0.services[0]), 251);
        std::string before = t0.backends()[t0.lookup(edge::hash::flow_hash(p.key, cfg0.hash_key))].name;
        auto r = lb.run(ack);
        REQUIRE(r.retval == XDP_TX);
        CHECK(outer_dst(r.data) == now);
        if (now != before) {
            gue++;
            CHECK(r.data == expected_gue(ack, ip(now.c_str()), ip(before.c_str())));
            Packet o = parse(r.data);
            CHECK(ipv4_checksum_ok(r.data, o.l3_off));
            // The connection table keeps the previous backend: the next packet carries it too.
            auto r2 = lb.run(ack);
            CHECK(r2.data == r.data);
            edge_flow_key k = p.key;
            xlb_ct4_key k4{};
            std::memcpy(&k4.src, k.src, 4);
            std::memcpy(&k4.dst, k.dst, 4);
            k4.sport = k.sport, k4.dport = k.dport, k4.proto = k.proto;
            xlb_ct_value v{};
            REQUIRE(bpf_map_lookup_elem(bpf_map__fd(lb.s->maps.xlb_conntrack4), &k4, &v) == 0);
            CHECK(name_of(v.prev, lb) == before);
            CHECK(name_of(v.backend, lb) == now);
        } else {
            plain++;
            CHECK(r.data == expected_encap(ack, ip(now.c_str())));  // unmoved slot: plain IP-in-IP
        }
    }
    CHECK(gue > 20);
    CHECK(plain > 20);
    CHECK(lb.reason(XLB_R_DAISY) == uint64_t(2 * gue));
}

TEST_CASE("daisy chaining: SYNs, services without daisy_chain and UDP carry no previous backend; IPv6 carries one") {
    Lb lb(kDaisy);
    lb.reload(daisy_changed());
    auto cfg0 = Lb::parse(kDaisy);
    int v6gue = 0;
    for (uint16_t port = 11000; port < 11100; port++) {
        // A SYN starts a connection on the slot's backend: nothing to carry, and the
        // connection table remembers no previous backend for the packets that follow.
        Bytes syn = tcp4("198.51.100.8", port, "203.0.113.60", 80);
        std::string now = lb.maglev(parse(syn).key, "203.0.113.60:80/tcp");
        auto r = lb.run(syn);
        CHECK(r.data == expected_encap(syn, ip(now.c_str())));
        Bytes ack = tcp4("198.51.100.8", port, "203.0.113.60", 80, TcpFlags::ack);
        CHECK(lb.run(ack).data == expected_encap(ack, ip(now.c_str())));
        // The same change on a service without daisy_chain: plain IP-in-IP to the slot's backend.
        Bytes other = tcp4("198.51.100.8", port, "203.0.113.61", 80, TcpFlags::ack);
        CHECK(lb.run(other).data == expected_encap(other, ip(lb.maglev(parse(other).key, "203.0.113.61:80/tcp").c_str())));
        // IPv6 in IPv6 with an IPv6 previous backend.
        Bytes ack6 = tcp6("2001:db8:ff::7", port, "2001:db8::60", 80, TcpFlags::ack);
        Packet p6 = parse(ack6);
        std::string now6 = lb.maglev(p6.key, "[2001:db8::60]:80/tcp");
        edge::maglev::Table t0(xlb::maglev_backends(cfg0.services[2]), 251);
        std::string before6 = t0.backends()[t0.lookup(edge::hash::flow_hash(p6.key, cfg0.hash_key))].name;
        auto r6 = lb.run(ack6);
        REQUIRE(r6.retval == XDP_TX);
        if (now6 != before6) {
            v6gue++;
            CHECK(r6.data == expected_gue(ack6, ip(now6.c_str()), ip(before6.c_str())));
        } else {
            CHECK(r6.data == expected_encap(ack6, ip(now6.c_str())));
        }
    }
    CHECK(v6gue > 10);
    CHECK(lb.reason(XLB_R_DAISY) == uint64_t(v6gue));
    // daisy_chain is for TCP services.
    std::string udp = kDaisy;
    udp.replace(udp.find("proto = \"tcp\"\ndaisy_chain"), 13, "proto = \"udp\"");
    CHECK_THROWS_WITH_AS(Lb::parse(udp), doctest::Contains("daisy_chain"), edge::UsageError);
    // render_config keeps it.
    auto c = Lb::parse(kDaisy);
    CHECK(Lb::parse(xlb::render_config(c)).services[0].daisy_chain);
    CHECK_FALSE(Lb::parse(xlb::render_config(c)).services[1].daisy_chain);
}
