// The BPF build pipeline works end to end (clang -> object -> skeleton -> load -> run),
// and the flow hash computed in XDP equals the one user space computes for the same bytes.
#include <doctest/doctest.h>

#include <linux/bpf.h>

#include <cstring>
#include <memory>

#include "bpf/prog.hpp"
#include "flowhash.skel.h"
#include "hash/flow_hash.hpp"
#include "net/build.hpp"
#include "net/flow.hpp"
#include "net/packet.hpp"

using namespace edge::net;

namespace {
struct HashResult {
    edge_flow_key key;
    uint64_t hash;
    uint32_t status;
    uint32_t pad;
};

struct Skel {
    flowhash* s;
    explicit Skel(edge::hash::Key key = {}) {
        s = flowhash__open();
        REQUIRE(s);
        s->rodata->hash_k0 = key.k0;
        s->rodata->hash_k1 = key.k1;
        int err = flowhash__load(s);
        if (err) FAIL("flowhash__load: " << edge::bpf::error_text(err));
    }
    ~Skel() { flowhash__destroy(s); }
    HashResult run(const std::vector<uint8_t>& pkt) {
        auto r = edge::bpf::test_run(bpf_program__fd(s->progs.flowhash), pkt);
        CHECK(r.retval == XDP_PASS);
        CHECK(r.data == pkt);  // flowhash never rewrites
        HashResult res{};
        uint32_t zero = 0;
        REQUIRE(bpf_map__lookup_elem(s->maps.last, &zero, sizeof zero, &res, sizeof res, 0) == 0);
        return res;
    }
};

const Mac a{2, 0, 0, 0, 0, 1}, b{2, 0, 0, 0, 0, 2};
IpAddr ip(const char* s) { return IpAddr::parse(s).value(); }

std::vector<std::vector<uint8_t>> fixtures() {
    std::vector<std::vector<uint8_t>> v;
    v.push_back(PacketBuilder().eth(a, b).ipv4(ip("198.51.100.7"), ip("203.0.113.10")).tcp(5555, 443).flags(TcpFlags::syn).build());
    v.push_back(PacketBuilder().eth(a, b).vlan(100).ipv4(ip("10.0.0.1"), ip("10.0.0.2")).udp(53, 5353).payload("hello").build());
    v.push_back(PacketBuilder().eth(a, b).qinq(10, 20).ipv4(ip("10.1.0.1"), ip("10.2.0.2")).tcp(1, 2).build());
    v.push_back(PacketBuilder().eth(a, b).ipv4(ip("192.0.2.1"), ip("192.0.2.2")).ipv4_options({1, 1, 1, 1, 0x94, 4, 0, 0}).tcp(40000, 80).build());
    v.push_back(PacketBuilder().eth(a, b).ipv6(ip("2001:db8::1"), ip("2001:db8::2")).tcp(5555, 443).build());
    v.push_back(PacketBuilder().eth(a, b).ipv6(ip("2001:db8::1"), ip("2001:db8::2")).hop_by_hop().dest_options().udp(443, 4433).payload("quic").build());
    v.push_back(PacketBuilder().eth(a, b).ipv4(ip("198.51.100.1"), ip("203.0.113.1")).echo_request(7, 1).build());
    v.push_back(PacketBuilder().eth(a, b).ipv6(ip("2001:db8::7"), ip("2001:db8::8")).echo_request(7, 1).build());
    // First fragment keeps ports; a later fragment hashes on addresses and protocol only.
    v.push_back(PacketBuilder().eth(a, b).ipv4(ip("198.51.100.9"), ip("203.0.113.9")).fragment(0, true, 77).udp(1000, 2000).payload(std::string(64, 'x')).build());
    v.push_back(PacketBuilder().eth(a, b).ipv4(ip("198.51.100.9"), ip("203.0.113.9")).fragment(1480, false, 77).proto(17).payload(std::string(64, 'y')).build());
    v.push_back(PacketBuilder().eth(a, b).ipv6(ip("2001:db8::9"), ip("2001:db8::a")).fragment(1448, false, 5).proto(17).payload(std::string(32, 'z')).build());
    return v;
}
}  // namespace

TEST_CASE("XDP and user space compute the same flow key and hash for the same packets") {
    Skel skel;
    for (auto& pkt : fixtures()) {
        Packet p = parse_packet(pkt, LinkType::ethernet);
        REQUIRE(p.ok());
        HashResult r = skel.run(pkt);
        CAPTURE(format_flow(p.key));
        CHECK(r.status == 0);
        CHECK(format_flow(r.key) == format_flow(p.key));
        CHECK(std::memcmp(&r.key, &p.key, sizeof p.key) == 0);
        CHECK(r.hash == edge::hash::flow_hash(p.key));
    }
}

TEST_CASE("a deployment's hash key reaches the BPF program") {
    edge::hash::Key key{0x1122334455667788ULL, 0x99aabbccddeeff00ULL};
    Skel skel(key);
    for (auto& pkt : fixtures()) {
        Packet p = parse_packet(pkt, LinkType::ethernet);
        HashResult r = skel.run(pkt);
        CHECK(r.hash == edge::hash::flow_hash(p.key, key));
        CHECK(r.hash != edge::hash::flow_hash(p.key));
    }
}

TEST_CASE("non-IP and truncated frames are reported, not hashed") {
    Skel skel;
    std::vector<uint8_t> arp(60, 0);
    arp[12] = 0x08;
    arp[13] = 0x06;
    CHECK(skel.run(arp).status == 1);
    auto pkt = PacketBuilder().eth(a, b).ipv4(ip("10.0.0.1"), ip("10.0.0.2")).tcp(1, 2).build();
    pkt.resize(14 + 10);
    CHECK(skel.run(pkt).status == 2);
}
