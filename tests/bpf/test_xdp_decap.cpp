// xdp_decap: encapsulated frames (as xdp_lb builds them) lose their outer header and
// pass to the stack; frames not for us, or not encapsulated, pass untouched; a lying
// inner header is dropped. Counters read back.
#include <doctest/doctest.h>

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <cstring>

#include "bpf/prog.hpp"
#include "edge/lb.h"
#include "net/build.hpp"
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
