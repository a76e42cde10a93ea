// xdp_decap: encapsulated frames (as xdp_lb builds them) lose their outer header and
// pass to the stack; frames not for us, or not encapsulated, pass untouched; a lying
// inner header is dropped. Counters read back.
#include <doctest/doctest.h>

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "bpf/prog.hpp"
#include "edge/lb.h"
#include "net/build.hpp"
#include "net/checksum.hpp"
#include "net/packet.hpp"
#include "xdp_decap.skel.h"

using namespace edge::net;
using Bytes = std::vector<uint8_t>;

namespace {
const Mac kLbMac{2, 0, 0, 0, 0, 2}, kBeMac{2, 0, 0, 0, 0, 0x11};
IpAddr ip(const char* s) { return IpAddr::parse(s).value(); }

struct Decap {
    xdp_decap* s;
    explicit Decap(std::vector<const char*> local, bool any = false) {
        s = xdp_decap__open();
        REQUIRE(s);
        s->rodata->decap_any = any;
        REQUIRE(xdp_decap__load(s) == 0);
        for (auto* a : local) {
            xlb_addr_key k{};
            auto addr = ip(a);
            std::memcpy(k.addr, addr.bytes().data(), addr.bytes().size());
            k.family = static_cast<uint8_t>(addr.family());
            uint32_t one = 1;
            REQUIRE(bpf_map_update_elem(bpf_map__fd(s->maps.xdec_addrs), &k, &one, BPF_ANY) == 0);
        }
    }
    ~Decap() { xdp_decap__destroy(s); }
    edge::bpf::TestRun run(const Bytes& p) { return edge::bpf::test_run(bpf_program__fd(s->progs.xdp_decap), p); }
    uint64_t reason(uint32_t r) {
        std::vector<uint64_t> v(static_cast<size_t>(libbpf_num_possible_cpus()));
        REQUIRE(bpf_map_lookup_elem(bpf_map__fd(s->maps.xdec_reasons), &r, v.data()) == 0);
        uint64_t sum = 0;
        for (auto x : v) sum += x;
        return sum;
    }
};

Bytes inner4() { return PacketBuilder().ipv4(ip("198.51.100.7"), ip("203.0.113.10")).tcp(5555, 80).flags(TcpFlags::syn).payload("GET /").build(); }
Bytes inner6() { return PacketBuilder().ipv6(ip("2001:db8:ff::1"), ip("2001:db8::10")).udp(5555, 443).payload("quic").build(); }

// outer(version) + inner, with `tags` VLAN tags.
Bytes encap(const Bytes& inner, const char* src, const char* dst, int tags = 0) {
    PacketBuilder b;
    b.eth(kLbMac, kBeMac);
    if (tags >= 1) b.vlan(100);
    if (tags >= 2) b.vlan(200);
    if (ip(dst).is_v4()) b.ipv4(ip(src), ip(dst)).ttl(64);
    else b.ipv6(ip(src), ip(dst)).ttl(64);
    b.proto((inner[0] >> 4) == 4 ? 4 : 41).payload(inner);
    return b.build();
}

// What the stack must see: the same L2 header with the inner EtherType, then the inner packet.
Bytes plain(const Bytes& inner, int tags = 0) {
    Bytes out = {kBeMac.begin(), kBeMac.end()};
    out.insert(out.end(), kLbMac.begin(), kLbMac.end());
    if (tags >= 1) out.insert(out.end(), {0x81, 0x00, 0x00, 100});
    if (tags >= 2) out.insert(out.end(), {0x81, 0x00, 0x00, 200});
    if ((inner[0] >> 4) == 4) out.insert(out.end(), {0x08, 0x00});
    else out.insert(out.end(), {0x86, 0xdd});
    out.insert(out.end(), inner.begin(), inner.end());
    return out;
}
}  // namespace

TEST_CASE("IPv4-in-IPv4, IPv6-in-IPv6, IPv4-in-IPv6 and IPv6-in-IPv4 to this host lose the outer header") {
    Decap d({"10.0.1.11", "2001:db8:1::11"});
    struct Fx {
        Bytes inner;
        const char *src, *dst;
    };
    std::vector<Fx> fx = {{inner4(), "172.16.1.2", "10.0.1.11"},
                          {inner6(), "fd00:e:1b::1", "2001:db8:1::11"},
                          {inner4(), "fd00:e:1b::2", "2001:db8:1::11"},
                          {inner6(), "172.16.3.4", "10.0.1.11"}};
    for (int tags = 0; tags <= 2; tags++) {
        for (auto& f : fx) {
            CAPTURE(tags);
            CAPTURE(f.dst);
            auto r = d.run(encap(f.inner, f.src, f.dst, tags));
            CHECK(r.retval == XDP_PASS);
            CHECK(r.data == plain(f.inner, tags));
            Packet p = parse_packet(r.data, LinkType::ethernet);
            CHECK(p.ok());
            CHECK(p.l4_checksum_ok);
        }
    }
    CHECK(d.reason(XDEC_R_DECAP_V4) == 6);
    CHECK(d.reason(XDEC_R_DECAP_V6) == 6);
}

TEST_CASE("frames not encapsulated, or encapsulated to another host, pass untouched") {
    Decap d({"10.0.1.11"});
    std::vector<Bytes> untouched = {
        PacketBuilder().eth(kLbMac, kBeMac).ipv4(ip("198.51.100.7"), ip("10.0.1.11")).tcp(1, 22).build(),
        PacketBuilder().eth(kLbMac, kBeMac).ipv6(ip("2001:db8::1"), ip("2001:db8::2")).udp(1, 53).build(),
        encap(inner4(), "172.16.0.1", "10.0.1.12"),
        encap(inner6(), "fd00::1", "2001:db8:1::11"),
    };
    for (auto& u : untouched) {
        auto r = d.run(u);
        CHECK(r.retval == XDP_PASS);
        CHECK(r.data == u);
    }
    CHECK(d.reason(XDEC_R_PASS_NOT_ENCAP) == 2);
    CHECK(d.reason(XDEC_R_PASS_NOT_LOCAL) == 2);
    Bytes arp(60, 0);
    arp[12] = 0x08, arp[13] = 0x06;
    CHECK(d.run(arp).data == arp);
    // --any: whatever the destination.
    Decap any({}, true);
    auto r = any.run(encap(inner4(), "172.16.0.1", "10.0.1.99"));
    CHECK(r.data == plain(inner4()));
}

TEST_CASE("a lying or missing inner header is dropped and counted") {
    Decap d({"10.0.1.11"});
    Bytes wrong = encap(inner6(), "172.16.0.1", "10.0.1.11");
    wrong[14 + 9] = 4;  // says IPv4 inside, carries IPv6
    // (the outer checksum is now wrong too: the decap does not need it)
    CHECK(d.run(wrong).retval == XDP_DROP);
    Bytes shortp = encap(inner4(), "172.16.0.1", "10.0.1.11");
    shortp.resize(14 + 20 + 10);
    CHECK(d.run(shortp).retval == XDP_DROP);
    CHECK(d.reason(XDEC_R_DROP_MALFORMED) == 2);
}

// ---- GUE (daisy chaining) ----------------------------------------------------------------

namespace {
// A GUE frame as xdp_lb sends it (edge/lb.h): outer IP, UDP to 9886 with checksum 0, GUE
// header, private data with the previous backend, then the inner packet.
Bytes gue(const Bytes& inner, const char* src, const char* dst, const char* prev, uint8_t pflags = 0, uint16_t gflags = 0) {
    IpAddr p = ip(prev);
    Bytes pay;
    size_t alen = p.is_v4() ? 4 : 16;
    size_t ulen = 8 + 4 + 4 + alen + inner.size();
    pay = {0xc1, 0x23, 0x26, 0x9e, uint8_t(ulen >> 8), uint8_t(ulen), 0, 0};
    pay.push_back(uint8_t((4 + alen) / 4));
    pay.push_back((inner[0] >> 4) == 4 ? 4 : 41);
    pay.push_back(uint8_t(gflags >> 8));
    pay.push_back(uint8_t(gflags));
    pay.insert(pay.end(), {0xeb, pflags, uint8_t(p.is_v4() ? 4 : 6), 0});
    pay.insert(pay.end(), p.bytes().begin(), p.bytes().end());
    pay.insert(pay.end(), inner.begin(), inner.end());
    PacketBuilder b;
    b.eth(kLbMac, kBeMac);
    if (ip(dst).is_v4()) b.ipv4(ip(src), ip(dst)).ttl(64).dont_fragment();
    else b.ipv6(ip(src), ip(dst)).ttl(64);
    b.proto(17).payload(pay);
    return b.build();
}

// A real TCP connection on loopback (BPF_PROG_TEST_RUN looks sockets up in this netns).
struct Conn {
    int lfd = -1, cfd = -1, afd = -1;
    uint16_t lport = 0, cport = 0;
    explicit Conn(bool v6) {
        int fam = v6 ? AF_INET6 : AF_INET;
        sockaddr_storage ss{};
        socklen_t len;
        if (v6) {
            auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
            a->sin6_family = AF_INET6;
            a->sin6_addr = in6addr_loopback;
            len = sizeof(*a);
        } else {
            auto* a = reinterpret_cast<sockaddr_in*>(&ss);
            a->sin_family = AF_INET;
            a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            len = sizeof(*a);
        }
        lfd = socket(fam, SOCK_STREAM, 0);
        REQUIRE(bind(lfd, reinterpret_cast<sockaddr*>(&ss), len) == 0);
        REQUIRE(listen(lfd, 8) == 0);
        socklen_t l2 = len;
        REQUIRE(getsockname(lfd, reinterpret_cast<sockaddr*>(&ss), &l2) == 0);
        cfd = socket(fam, SOCK_STREAM, 0);
        REQUIRE(connect(cfd, reinterpret_cast<sockaddr*>(&ss), len) == 0);
        afd = accept(lfd, nullptr, nullptr);
        REQUIRE(afd >= 0);
        lport = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
        sockaddr_storage cs{};
        l2 = sizeof cs;
        REQUIRE(getsockname(cfd, reinterpret_cast<sockaddr*>(&cs), &l2) == 0);
        cport = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&cs)->sin6_port : reinterpret_cast<sockaddr_in*>(&cs)->sin_port);
    }
    ~Conn() {
        for (int fd : {afd, cfd, lfd})
            if (fd >= 0) close(fd);
    }
};

// A port nothing listens on.
uint16_t closed_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t l = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &l);
    close(fd);
    return ntohs(a.sin_port);
}

Bytes tcp_in(const char* src, uint16_t sport, const char* dst, uint16_t dport, uint8_t flags) {
    PacketBuilder b;
    if (ip(src).is_v4()) b.ipv4(ip(src), ip(dst));
    else b.ipv6(ip(src), ip(dst));
    return b.tcp(sport, dport).flags(flags).payload("data").build();
}

// Checks a frame was sent on to `prev`: same bytes after L2 but the outer destination and
// the second-hop flag (and the IPv4 checksum); TX/redirect with FORWARD, or PASS with
// FORWARD_STACK. Returns the number of forwards counted so far.
void check_forwarded(Decap& d, const Bytes& in, const edge::bpf::TestRun& r, const Bytes& want, uint64_t n) {
    REQUIRE(r.data.size() == in.size());
    CHECK(Bytes(r.data.begin() + 14, r.data.end()) == Bytes(want.begin() + 14, want.end()));
    uint64_t fwd = d.reason(XDEC_R_FORWARD), stack = d.reason(XDEC_R_FORWARD_STACK);
    CHECK(fwd + stack == n);
    if (r.retval == XDP_PASS) CHECK(stack > 0);
    else CHECK((r.retval == XDP_TX || r.retval == XDP_REDIRECT));
}
}  // namespace

TEST_CASE("GUE: decapsulated for the local stack when a socket owns the packet, for SYNs, UDP and second hops") {
    Decap d({"10.0.1.11", "2001:db8:1::11"});
    Conn c4(false), c6(true);
    uint16_t closed = closed_port();
    struct Fx {
        Bytes inner;
        const char *src, *dst, *prev;
        uint8_t pflags;
    };
    std::vector<Fx> fx = {
        // An established socket here: ours.
        {tcp_in("127.0.0.1", c4.cport, "127.0.0.1", c4.lport, TcpFlags::ack | TcpFlags::psh), "172.16.0.1", "10.0.1.11", "10.0.1.12", 0},
        {tcp_in("::1", c6.cport, "::1", c6.lport, TcpFlags::ack), "fd00:e:1b::1", "2001:db8:1::11", "2001:db8:1::12", 0},
        // A SYN starts a connection here, socket or not.
        {tcp_in("127.0.0.1", 40000, "127.0.0.1", closed, TcpFlags::syn), "172.16.0.1", "10.0.1.11", "10.0.1.12", 0},
        // Already a second hop: never forwarded again (the stack resets it).
        {tcp_in("127.0.0.1", 40001, "127.0.0.1", closed, TcpFlags::ack), "172.16.0.1", "10.0.1.11", "10.0.1.12", XLB_GUE_F_SECOND_HOP},
        {tcp_in("::1", 40001, "::1", closed, TcpFlags::ack), "fd00:e:1b::1", "2001:db8:1::11", "2001:db8:1::12", XLB_GUE_F_SECOND_HOP},
        // Not TCP.
        {inner6(), "fd00:e:1b::1", "2001:db8:1::11", "2001:db8:1::12", 0},
        // The previous backend's family differs from the outer header's: kept here.
        {tcp_in("127.0.0.1", 40002, "127.0.0.1", closed, TcpFlags::ack), "172.16.0.1", "10.0.1.11", "2001:db8:1::12", 0},
    };
    for (size_t i = 0; i < fx.size(); i++) {
        CAPTURE(i);
        auto& f = fx[i];
        auto r = d.run(gue(f.inner, f.src, f.dst, f.prev, f.pflags));
        CHECK(r.retval == XDP_PASS);
        CHECK(r.data == plain(f.inner));
    }
    CHECK(d.reason(XDEC_R_DECAP_GUE) == fx.size());
    CHECK(d.reason(XDEC_R_FORWARD) + d.reason(XDEC_R_FORWARD_STACK) == 0);
}

TEST_CASE("GUE: a TCP packet without SYN and without a socket here goes on to the previous backend, marked second hop") {
    Decap d({"10.0.1.11", "2001:db8:1::11"});
    Conn c4(false), c6(true);
    uint16_t closed = closed_port();
    uint64_t n = 0;
    // No socket at all, and a listener but no connection (an ACK that is no SYN cookie).
    for (uint16_t dport : {closed, c4.lport}) {
        CAPTURE(dport);
        Bytes inner = tcp_in("127.0.0.1", 40010, "127.0.0.1", dport, TcpFlags::ack | TcpFlags::psh);
        Bytes in = gue(inner, "172.16.0.1", "10.0.1.11", "10.0.1.12");
        auto r = d.run(in);
        check_forwarded(d, in, r, gue(inner, "172.16.0.1", "10.0.1.12", "10.0.1.12", XLB_GUE_F_SECOND_HOP), ++n);
        Packet o = parse_packet(r.data, LinkType::ethernet);
        Checksum cs;
        cs.add(std::span<const uint8_t>(r.data.data() + 14, 20));
        CHECK(cs.finish() == 0);
        CHECK(o.dst.to_string() == "10.0.1.12");
        // What the previous backend's decap does with it: decapsulates (second hop).
        Decap prev({"10.0.1.12"});
        auto r2 = prev.run(r.data);
        CHECK(r2.retval == XDP_PASS);
        Bytes want = plain(inner);
        CHECK(Bytes(r2.data.begin() + 12, r2.data.end()) == Bytes(want.begin() + 12, want.end()));
        CHECK(prev.reason(XDEC_R_DECAP_GUE) == 1);
    }
    // IPv6, and a FIN or RST of a connection that is not here.
    for (uint8_t flags : {uint8_t(TcpFlags::ack), uint8_t(TcpFlags::fin | TcpFlags::ack), uint8_t(TcpFlags::rst)}) {
        Bytes inner = tcp_in("::1", 40011, "::1", c6.lport, flags);
        Bytes in = gue(inner, "fd00:e:1b::1", "2001:db8:1::11", "2001:db8:1::12");
        auto r = d.run(in);
        check_forwarded(d, in, r, gue(inner, "fd00:e:1b::1", "2001:db8:1::12", "2001:db8:1::12", XLB_GUE_F_SECOND_HOP), ++n);
    }
    CHECK(d.reason(XDEC_R_DECAP_GUE) == 0);
}

TEST_CASE("GUE: malformed headers are dropped; other UDP and GUE to other hosts pass untouched") {
    Decap d({"10.0.1.11"});
    Bytes inner = tcp_in("127.0.0.1", 1, "127.0.0.1", 2, TcpFlags::syn);
    CHECK(d.run(gue(inner, "172.16.0.1", "10.0.1.11", "10.0.1.12", 0, 0x8000)).retval == XDP_DROP);  // optional fields
    Bytes v1 = gue(inner, "172.16.0.1", "10.0.1.11", "10.0.1.12");
    v1[14 + 20 + 8] |= 0x40;  // GUE version 1
    CHECK(d.run(v1).retval == XDP_DROP);
    Bytes lying = gue(inner, "172.16.0.1", "10.0.1.11", "10.0.1.12");
    lying[14 + 20 + 8 + 1] = 41;  // says IPv6 inside
    CHECK(d.run(lying).retval == XDP_DROP);
    Bytes cut = gue(inner, "172.16.0.1", "10.0.1.11", "10.0.1.12");
    cut.resize(14 + 20 + 8 + 4 + 8 + 10);
    CHECK(d.run(cut).retval == XDP_DROP);
    CHECK(d.reason(XDEC_R_DROP_MALFORMED) == 4);
    std::vector<Bytes> untouched = {
        gue(inner, "172.16.0.1", "10.0.1.12", "10.0.1.11"),  // not ours
        PacketBuilder().eth(kLbMac, kBeMac).ipv4(ip("198.51.100.7"), ip("10.0.1.11")).udp(9886, 53).payload("dns?").build(),
    };
    for (auto& u : untouched) {
        auto r = d.run(u);
        CHECK(r.retval == XDP_PASS);
        CHECK(r.data == u);
    }
    CHECK(d.reason(XDEC_R_PASS_NOT_LOCAL) == 1);
    CHECK(d.reason(XDEC_R_PASS_NOT_ENCAP) == 1);
}
