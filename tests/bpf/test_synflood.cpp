// synflood fixtures: input bytes -> verdict and output bytes. SYN -> SYN-ACK carrying a
// kernel SYN cookie (addresses, ports swapped, ISN = cookie, ack = seq + 1, MSS option,
// checksums, compared whole with a PacketBuilder frame); the ACK with that cookie passes,
// forged ACKs drop; token buckets at their boundary; allow/deny LPM; uRPF with routes
// in a private network namespace; counters by reason and per destination.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <fstream>

#include "../../cmd/synflood-guard/guard.hpp"
#include "bpf/prog.hpp"
#include "config/toml.hpp"
#include "net/build.hpp"
#include "net/packet.hpp"
#include "synflood.skel.h"

using namespace edge::net;
using Bytes = std::vector<uint8_t>;

namespace {
const Mac kClientMac{2, 0, 0, 0, 0, 1}, kServerMac{2, 0, 0, 0, 0, 2};
IpAddr ip(const char* s) { return IpAddr::parse(s).value(); }

void sh(const std::string& cmd) {
    int rc = std::system((cmd + " >/dev/null 2>&1").c_str());
    if (rc != 0) FAIL("command failed: " << cmd);
}
void write_file(const std::string& path, const std::string& v) {
    std::ofstream f(path);
    f << v;
}

int listener(int family, uint16_t port) {
    int fd = socket(family, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_INET6) {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        sockaddr_in6 a{};
        a.sin6_family = AF_INET6;
        a.sin6_port = htons(port);
        REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    } else {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    }
    REQUIRE(listen(fd, 16) == 0);
    return fd;
}

// Once per process: a private network namespace with two veth interfaces and routes
// (for uRPF), forwarding on (bpf_fib_lookup needs it), SYN cookies on, listeners on 8080.
struct Netns {
    int if0 = 0, if1 = 0;
    Netns() {
        REQUIRE(unshare(CLONE_NEWNET) == 0);
        sh("ip link set lo up");
        sh("ip link add sfg0 type veth peer name sfg0p && ip link set sfg0p up && ip link set sfg0 up && ip addr add 10.1.0.1/24 dev sfg0");
        sh("ip link add sfg1 type veth peer name sfg1p && ip link set sfg1p up && ip link set sfg1 up && ip addr add 10.2.0.1/24 dev sfg1");
        sh("ip -6 addr add 2001:db8:1::1/64 dev sfg0 nodad");
        write_file("/proc/sys/net/ipv4/conf/all/forwarding", "1");
        write_file("/proc/sys/net/ipv4/tcp_syncookies", "2");  // cookies on demand (see synflood.bpf.c)
        if0 = static_cast<int>(if_nametoindex("sfg0"));
        if1 = static_cast<int>(if_nametoindex("sfg1"));
        REQUIRE(if0 > 0);
        REQUIRE(if1 > 0);
        listener(AF_INET, 8080);
        listener(AF_INET6, 8080);
    }
};
Netns& netns() {
    static Netns n;
    return n;
}

const char* kConfig = R"(
[guard]
allow = ["192.0.2.0/24"]
deny = ["198.51.100.0/24"]
[[protect]]
prefix = "10.1.0.0/24"
port = 8080
cookie = "always"
[[protect]]
prefix = "10.1.0.0/24"
port = 9090
[[protect]]
prefix = "2001:db8:1::/64"
port = 8080
cookie = "always"
)";

struct Guard {
    synflood* s = nullptr;
    sfg::GuardConfig cfg;
    sfg::Maps maps;
    explicit Guard(const std::string& text = kConfig) {
        netns();
        cfg = sfg::parse_config(edge::config::parse(text, "test.toml"));
        s = synflood__open_and_load();
        if (!s) FAIL("synflood__open_and_load: " << std::strerror(errno));
        maps = sfg::skel_maps(s);
        sfg::apply(maps, cfg);
    }
    ~Guard() { synflood__destroy(s); }
    edge::bpf::TestRun run(const Bytes& pkt, int ifindex = 0) {
        edge::bpf::TestRun r;
        r.data.resize(pkt.size() + 256);
        xdp_md ctx{};
        ctx.data_end = static_cast<uint32_t>(pkt.size());
        ctx.ingress_ifindex = static_cast<uint32_t>(ifindex);
        LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt.data(), .data_out = r.data.data(),
                    .data_size_in = static_cast<uint32_t>(pkt.size()),
                    .data_size_out = static_cast<uint32_t>(r.data.size()), .ctx_in = ifindex ? &ctx : nullptr,
                    .ctx_size_in = ifindex ? static_cast<uint32_t>(sizeof ctx) : 0u);
        int err = bpf_prog_test_run_opts(bpf_program__fd(s->progs.synflood), &opts);
        if (err) FAIL("BPF_PROG_TEST_RUN: " << edge::bpf::error_text(err));
        r.retval = opts.retval;
        r.data.resize(opts.data_size_out);
        return r;
    }
    uint64_t reason(uint32_t r) { return sfg::percpu_sum(maps.reasons, r, 1)[0]; }
    sfg_dst_stats stats(uint32_t id) { return sfg::dst_stats(maps, id); }
    void set_config(uint64_t pps, uint64_t Bps, uint8_t urpf) {
        uint32_t zero = 0;
        sfg_config c{};
        c.src_pps = pps;
        c.src_Bps = Bps;
        c.urpf = urpf;
        REQUIRE(bpf_map_update_elem(maps.config, &zero, &c, BPF_ANY) == 0);
    }
};

Bytes syn4(const char* src, uint16_t sport, const char* dst, uint16_t dport, uint32_t seq = 1000,
           std::vector<uint8_t> opts = {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}) {
    return PacketBuilder().eth(kClientMac, kServerMac).ipv4(ip(src), ip(dst)).ttl(57).tcp(sport, dport)
        .flags(TcpFlags::syn).seq(seq).tcp_options(opts).build();
}
Bytes ack4(const char* src, uint16_t sport, const char* dst, uint16_t dport, uint32_t seq, uint32_t ack) {
    return PacketBuilder().eth(kClientMac, kServerMac).ipv4(ip(src), ip(dst)).tcp(sport, dport)
        .flags(TcpFlags::ack).seq(seq).ack(ack).build();
}
Bytes syn6(const char* src, uint16_t sport, const char* dst, uint16_t dport, uint32_t seq = 1000) {
    return PacketBuilder().eth(kClientMac, kServerMac).ipv6(ip(src), ip(dst)).tcp(sport, dport)
        .flags(TcpFlags::syn).seq(seq).tcp_options({2, 4, 0x05, 0xa0}).build();
}
}  // namespace

TEST_CASE("SYN to a cookie-mode destination: a SYN-ACK with the kernel's cookie, byte for byte") {
    Guard g;
    Bytes in = syn4("10.1.0.5", 40000, "10.1.0.1", 8080, 1000);
    auto r = g.run(in);
    REQUIRE(r.retval == XDP_TX);
    REQUIRE(r.data.size() == 14 + 20 + 24);
    Packet p = parse_packet(r.data, LinkType::ethernet);
    REQUIRE(p.ok());
    CHECK(p.ip_checksum_ok);
    CHECK(p.l4_checksum_checked);
    CHECK(p.l4_checksum_ok);
    uint32_t cookie = p.tcp_seq;
    const uint8_t* opt = r.data.data() + 14 + 20 + 20;
    uint16_t mss = uint16_t(opt[2] << 8 | opt[3]);
    CHECK(opt[0] == 2);
    CHECK(opt[1] == 4);
    CHECK(mss >= 536);
    CHECK(mss <= 1460);
    Bytes want = PacketBuilder().eth(kServerMac, kClientMac).ipv4(ip("10.1.0.1"), ip("10.1.0.5")).ttl(64).ip_id(0)
                     .dont_fragment().tcp(8080, 40000).flags(TcpFlags::syn | TcpFlags::ack).seq(cookie).ack(1001)
                     .window(65535).tcp_options({2, 4, uint8_t(mss >> 8), uint8_t(mss)}).build();
    CHECK(r.data == want);
    CHECK(g.reason(SFG_R_COOKIE_SENT) == 1);
    CHECK(g.stats(0).syn == 1);
    CHECK(g.stats(0).cookies == 1);

    SUBCASE("the ACK carrying the cookie passes; forged ACKs drop") {
        auto ok = g.run(ack4("10.1.0.5", 40000, "10.1.0.1", 8080, 1001, cookie + 1));
        CHECK(ok.retval == XDP_PASS);
        CHECK(g.reason(SFG_R_COOKIE_ACK_OK) == 1);
        CHECK(g.stats(0).cookie_ok == 1);
        int dropped = 0;
        for (uint32_t delta : {2u, 0x1000u, 0x01000000u, 0x80000000u}) {
            auto bad = g.run(ack4("10.1.0.5", 40000, "10.1.0.1", 8080, 1001, cookie + delta));
            dropped += bad.retval == XDP_DROP;
        }
        CHECK(dropped == 4);
        // The same cookie from another source port is forged too.
        CHECK(g.run(ack4("10.1.0.5", 40001, "10.1.0.1", 8080, 1001, cookie + 1)).retval == XDP_DROP);
        CHECK(g.reason(SFG_R_DROP_COOKIE_ACK) == 5);
        CHECK(g.stats(0).cookie_bad == 5);
    }
    SUBCASE("a SYN without options grows to carry the MSS option") {
        auto r2 = g.run(syn4("10.1.0.6", 40000, "10.1.0.1", 8080, 7, {}));
        REQUIRE(r2.retval == XDP_TX);
        Packet q = parse_packet(r2.data, LinkType::ethernet);
        REQUIRE(q.ok());
        CHECK(q.l4_checksum_ok);
        CHECK(q.tcp_ack == 8);
        CHECK(r2.data.size() == 58);
    }
    SUBCASE("no listener on the port: the SYN goes to the kernel") {
        g.cfg.protect[0].port = 8081;
        sfg::GuardConfig c = sfg::parse_config(edge::config::parse(
            "[[protect]]\nprefix = \"10.1.0.0/24\"\ncookie = \"always\"\n", "t.toml"));
        sfg::apply(g.maps, c);
        auto r3 = g.run(syn4("10.1.0.5", 40000, "10.1.0.1", 8081));
        CHECK(r3.retval == XDP_PASS);
        CHECK(g.reason(SFG_R_PASS_NO_LISTENER) == 1);
    }
}

TEST_CASE("IPv6 SYN: a SYN-ACK cookie with a valid checksum") {
    Guard g;
    auto r = g.run(syn6("2001:db8:1::5", 40000, "2001:db8:1::1", 8080, 77));
    REQUIRE(r.retval == XDP_TX);
    REQUIRE(r.data.size() == 14 + 40 + 24);
    Packet p = parse_packet(r.data, LinkType::ethernet);
    REQUIRE(p.ok());
    CHECK(p.src == ip("2001:db8:1::1"));
    CHECK(p.dst == ip("2001:db8:1::5"));
    CHECK(p.sport == 8080);
    CHECK(p.dport == 40000);
    CHECK(p.tcp_ack == 78);
    CHECK(p.tcp_flags == (TcpFlags::syn | TcpFlags::ack));
    CHECK(p.l4_checksum_ok);
    auto ok = g.run(PacketBuilder().eth(kClientMac, kServerMac).ipv6(ip("2001:db8:1::5"), ip("2001:db8:1::1"))
                        .tcp(40000, 8080).flags(TcpFlags::ack).seq(78).ack(p.tcp_seq + 1).build());
    CHECK(ok.retval == XDP_PASS);
    auto bad = g.run(PacketBuilder().eth(kClientMac, kServerMac).ipv6(ip("2001:db8:1::5"), ip("2001:db8:1::1"))
                         .tcp(40000, 8080).flags(TcpFlags::ack).seq(78).ack(p.tcp_seq + 3).build());
    CHECK(bad.retval == XDP_DROP);
}

TEST_CASE("not in cookie mode: SYNs and ACKs pass untouched, counted per destination") {
    Guard g;
    Bytes in = syn4("10.1.0.5", 40000, "10.1.0.1", 9090);
    auto r = g.run(in);
    CHECK(r.retval == XDP_PASS);
    CHECK(r.data == in);
    CHECK(g.run(ack4("10.1.0.5", 40000, "10.1.0.1", 9090, 1, 12345)).retval == XDP_PASS);
    CHECK(g.stats(1).syn == 1);
    CHECK(g.stats(1).packets == 2);
    CHECK(g.reason(SFG_R_PASS) == 2);
    // Switching the entry to cookie mode (what `run` does under a flood) takes effect at once.
    auto d = sfg::get_dest(g.maps, g.cfg.protect[1]).value();
    d.flags |= SFG_D_COOKIE;
    sfg::set_dest(g.maps, g.cfg.protect[1], d);
    // nobody listens on 9090: the kernel will answer
    CHECK(g.run(in).retval == XDP_PASS);
    CHECK(g.reason(SFG_R_PASS_NO_LISTENER) == 1);
    CHECK(g.run(syn4("10.1.0.5", 40000, "10.3.0.1", 8080)).retval == XDP_PASS);
    CHECK(g.reason(SFG_R_PASS_UNPROTECTED) == 1);
}

TEST_CASE("deny and allow lists (LPM): deny drops anywhere, allow skips the limits") {
    Guard g;
    g.set_config(2, 0, SFG_URPF_OFF);
    CHECK(g.run(syn4("198.51.100.77", 1, "10.3.0.1", 80)).retval == XDP_DROP);      // unprotected too
    CHECK(g.run(syn4("198.51.100.77", 1, "10.1.0.1", 9090)).retval == XDP_DROP);
    CHECK(g.run(syn4("198.51.101.77", 1, "10.1.0.1", 9090)).retval == XDP_PASS);    // next /24
    CHECK(g.reason(SFG_R_DROP_DENY) == 2);
    for (int i = 0; i < 10; i++) CHECK(g.run(syn4("192.0.2.9", uint16_t(i), "10.1.0.1", 9090)).retval == XDP_PASS);
    CHECK(g.reason(SFG_R_PASS_ALLOWED) == 10);
    // block / unblock at run time
    auto k = sfg::src_key(Prefix::parse("10.1.0.0/28").value());
    uint32_t one = 1;
    REQUIRE(bpf_map_update_elem(g.maps.deny, &k, &one, BPF_ANY) == 0);
    sfg::sync_prefilter(g.maps);  // as block/unblock do after writing the trie
    CHECK(g.run(syn4("10.1.0.9", 1, "10.1.0.1", 9090)).retval == XDP_DROP);
    CHECK(g.run(syn4("10.1.0.19", 1, "10.1.0.1", 9090)).retval == XDP_PASS);
    REQUIRE(bpf_map_delete_elem(g.maps.deny, &k) == 0);
    sfg::sync_prefilter(g.maps);
    CHECK(g.run(syn4("10.1.0.9", 1, "10.1.0.1", 9090)).retval == XDP_PASS);
}

TEST_CASE("token buckets: per source packets/s and bytes/s, per destination SYN/s, at the boundary") {
    Guard g;
    SUBCASE("source packets/s: a full bucket of 5, the 6th drops; other sources unaffected") {
        g.set_config(5, 0, SFG_URPF_OFF);
        for (int i = 0; i < 5; i++) CHECK(g.run(ack4("10.1.0.5", 1, "10.1.0.1", 9090, 1, 1)).retval == XDP_PASS);
        CHECK(g.run(ack4("10.1.0.5", 1, "10.1.0.1", 9090, 1, 1)).retval == XDP_DROP);
        CHECK(g.run(ack4("10.1.0.6", 1, "10.1.0.1", 9090, 1, 1)).retval == XDP_PASS);
        CHECK(g.reason(SFG_R_DROP_SRC_RATE) == 1);
        CHECK(g.stats(1).drops == 1);
        // The bucket refills at 5/s: after 250 ms one more packet fits, not two.
        usleep(250000);
        CHECK(g.run(ack4("10.1.0.5", 1, "10.1.0.1", 9090, 1, 1)).retval == XDP_PASS);
        CHECK(g.run(ack4("10.1.0.5", 1, "10.1.0.1", 9090, 1, 1)).retval == XDP_DROP);
    }
    SUBCASE("source bytes/s: 4 frames of 54 bytes fit in 216 bytes/s, the 5th does not") {
        Bytes pkt = ack4("10.1.0.5", 1, "10.1.0.1", 9090, 1, 1);
        REQUIRE(pkt.size() == 54);
        g.set_config(0, 216, SFG_URPF_OFF);
        for (int i = 0; i < 4; i++) CHECK(g.run(pkt).retval == XDP_PASS);
        CHECK(g.run(pkt).retval == XDP_DROP);
    }
    SUBCASE("destination SYN/s: 3 SYNs, then drops; ACKs are not SYNs") {
        sfg::GuardConfig c = sfg::parse_config(edge::config::parse(
            "[[protect]]\nprefix = \"10.1.0.0/24\"\nport = 9090\nsyn_pps = 3\n", "t.toml"));
        sfg::apply(g.maps, c);
        for (int i = 0; i < 3; i++) CHECK(g.run(syn4("10.1.0.5", uint16_t(100 + i), "10.1.0.1", 9090)).retval == XDP_PASS);
        CHECK(g.run(syn4("10.1.0.7", 1, "10.1.0.1", 9090)).retval == XDP_DROP);
        CHECK(g.run(ack4("10.1.0.7", 1, "10.1.0.1", 9090, 1, 1)).retval == XDP_PASS);
        CHECK(g.reason(SFG_R_DROP_DST_RATE) == 1);
    }
}

TEST_CASE("uRPF with routes in a namespace: strict needs the ingress interface, loose any route") {
    Guard g;
    auto& ns = netns();
    Bytes from_net1 = ack4("10.1.0.5", 1, "10.1.0.1", 9090, 1, 1);
    Bytes from_nowhere = ack4("10.9.9.9", 1, "10.1.0.1", 9090, 1, 1);
    g.set_config(0, 0, SFG_URPF_STRICT);
    CHECK(g.run(from_net1, ns.if0).retval == XDP_PASS);
    CHECK(g.run(from_net1, ns.if1).retval == XDP_DROP);  // 10.1.0.0/24 is behind sfg0
    CHECK(g.run(from_nowhere, ns.if0).retval == XDP_DROP);
    CHECK(g.reason(SFG_R_DROP_URPF) == 2);
    g.set_config(0, 0, SFG_URPF_LOOSE);
    CHECK(g.run(from_net1, ns.if1).retval == XDP_PASS);
    CHECK(g.run(from_nowhere, ns.if1).retval == XDP_DROP);
    sh("ip route add 10.9.0.0/16 dev sfg1");
    CHECK(g.run(from_nowhere, ns.if1).retval == XDP_PASS);
    g.set_config(0, 0, SFG_URPF_STRICT);
    CHECK(g.run(from_nowhere, ns.if1).retval == XDP_PASS);
    CHECK(g.run(from_nowhere, ns.if0).retval == XDP_DROP);
    sh("ip route del 10.9.0.0/16 dev sfg1");
    CHECK(g.reason(SFG_R_DROP_URPF) == 4);
}

TEST_CASE("malformed packets to a protected destination drop; not-IP passes") {
    Guard g;
    Bytes in = syn4("10.1.0.5", 40000, "10.1.0.1", 8080);
    Bytes cut(in.begin(), in.begin() + 14 + 20 + 10);
    CHECK(g.run(cut).retval == XDP_DROP);
    CHECK(g.reason(SFG_R_DROP_MALFORMED) == 1);
    Bytes arp(60, 0);
    arp[12] = 0x08;
    arp[13] = 0x06;
    CHECK(g.run(arp).retval == XDP_PASS);
    CHECK(g.reason(SFG_R_PASS_NOT_IP) == 1);
}

namespace {
uint32_t mono_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint32_t>(static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000);
}
uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

// A guard whose cookie SYN-ACKs may carry timestamps, SACK and window scale `ws`.
struct OptGuard : Guard {
    explicit OptGuard(uint8_t opts = SFG_O_TS | SFG_O_SACK | SFG_O_WS, uint8_t ws = 9) {
        cfg.opts_resolved = opts;
        cfg.wscale = ws;
        sfg::apply(maps, cfg);
    }
};
}  // namespace

TEST_CASE("cookie SYN-ACK options: MSS, SACK-permitted, timestamp cookie, window scale, byte for byte") {
    OptGuard g;
    // SYN: MSS 1460, SACK-permitted, TS (TSval 1), NOP, WS 7
    uint32_t before = mono_ms();
    auto r = g.run(syn4("10.1.0.5", 40000, "10.1.0.1", 8080, 1000));
    uint32_t after = mono_ms();
    REQUIRE(r.retval == XDP_TX);
    REQUIRE(r.data.size() == 14 + 20 + 40);
    Packet p = parse_packet(r.data, LinkType::ethernet);
    REQUIRE(p.ok());
    CHECK(p.ip_checksum_ok);
    CHECK(p.l4_checksum_ok);
    const uint8_t* opt = r.data.data() + 14 + 20 + 20;
    uint16_t mss = uint16_t(opt[2] << 8 | opt[3]);
    uint32_t tsval = be32(opt + 8);
    // The kernel's timestamp cookie: low 6 bits = the client's wscale (7) | SACK (0x10),
    // the rest the clock in ms, never ahead of it.
    CHECK((tsval & 63) == (7 | 0x10));
    CHECK(tsval <= after);
    CHECK(tsval + 64 + 5 >= before);
    std::vector<uint8_t> want_opts = {2, 4, uint8_t(mss >> 8), uint8_t(mss),
                                      4, 2, 8, 10, uint8_t(tsval >> 24), uint8_t(tsval >> 16), uint8_t(tsval >> 8), uint8_t(tsval),
                                      0, 0, 0, 1,  // TSecr = the SYN's TSval
                                      1, 3, 3, 9};  // NOP, our window scale
    Bytes want = PacketBuilder().eth(kServerMac, kClientMac).ipv4(ip("10.1.0.1"), ip("10.1.0.5")).ttl(64).ip_id(0)
                     .dont_fragment().tcp(8080, 40000).flags(TcpFlags::syn | TcpFlags::ack).seq(p.tcp_seq).ack(1001)
                     .window(65535).tcp_options(want_opts).build();
    CHECK(r.data == want);
    // The client's ACK echoes our TSval; the cookie (in the sequence number) validates.
    Bytes ack = PacketBuilder().eth(kClientMac, kServerMac).ipv4(ip("10.1.0.5"), ip("10.1.0.1")).tcp(40000, 8080)
                    .flags(TcpFlags::ack).seq(1001).ack(p.tcp_seq + 1)
                    .tcp_options({1, 1, 8, 10, 0, 0, 0, 2, uint8_t(tsval >> 24), uint8_t(tsval >> 16), uint8_t(tsval >> 8), uint8_t(tsval)})
                    .build();
    CHECK(g.run(ack).retval == XDP_PASS);
    CHECK(g.reason(SFG_R_COOKIE_ACK_OK) == 1);
}

TEST_CASE("cookie SYN-ACK options follow the SYN and the configuration") {
    SUBCASE("timestamps only: NOP NOP TS, no SACK, wscale bits 0xf (none)") {
        OptGuard g;
        auto r = g.run(syn4("10.1.0.5", 40001, "10.1.0.1", 8080, 5, {2, 4, 5, 0xb4, 1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0, 0}));
        REQUIRE(r.retval == XDP_TX);
        REQUIRE(r.data.size() == 14 + 20 + 36);
        const uint8_t* opt = r.data.data() + 54;
        CHECK(std::vector<uint8_t>(opt + 4, opt + 8) == std::vector<uint8_t>{1, 1, 8, 10});
        CHECK((be32(opt + 8) & 63) == 0xf);
        CHECK(be32(opt + 12) == 0x1234);
        CHECK(parse_packet(r.data, LinkType::ethernet).l4_checksum_ok);
    }
    SUBCASE("no timestamp in the SYN: MSS only (the cookie cannot carry WS or SACK)") {
        OptGuard g;
        auto r = g.run(syn4("10.1.0.5", 40002, "10.1.0.1", 8080, 5, {2, 4, 5, 0xb4, 1, 3, 3, 7, 4, 2, 0, 0}));
        REQUIRE(r.retval == XDP_TX);
        CHECK(r.data.size() == 14 + 20 + 24);
        CHECK(parse_packet(r.data, LinkType::ethernet).l4_checksum_ok);
    }
    SUBCASE("a window scale over 14 is encoded as 14, as the kernel clamps it") {
        OptGuard g;
        auto r = g.run(syn4("10.1.0.5", 40003, "10.1.0.1", 8080, 5,
                            {2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 15}));
        REQUIRE(r.retval == XDP_TX);
        REQUIRE(r.data.size() == 14 + 20 + 40);
        CHECK((be32(r.data.data() + 54 + 8) & 63) == (14 | 0x10));
    }
    SUBCASE("SACK allowed, window scaling not (tcp_window_scaling=0): no WS option, wscale bits 0xf") {
        OptGuard g(SFG_O_TS | SFG_O_SACK);
        auto r = g.run(syn4("10.1.0.5", 40004, "10.1.0.1", 8080));
        REQUIRE(r.retval == XDP_TX);
        REQUIRE(r.data.size() == 14 + 20 + 36);
        CHECK((be32(r.data.data() + 54 + 8) & 63) == (0xf | 0x10));
        CHECK(r.data[54 + 4] == 4);  // SACK-permitted
    }
    SUBCASE("options off (cookie_options = false or tcp_timestamps=1): MSS only") {
        OptGuard g(0);
        auto r = g.run(syn4("10.1.0.5", 40005, "10.1.0.1", 8080));
        REQUIRE(r.retval == XDP_TX);
        CHECK(r.data.size() == 14 + 20 + 24);
    }
    SUBCASE("IPv6: the same options, a valid checksum") {
        OptGuard g;
        auto r = g.run(PacketBuilder().eth(kClientMac, kServerMac).ipv6(ip("2001:db8:1::5"), ip("2001:db8:1::1"))
                           .tcp(40000, 8080).flags(TcpFlags::syn).seq(9)
                           .tcp_options({2, 4, 5, 0xa0, 4, 2, 8, 10, 0, 0, 0, 7, 0, 0, 0, 0, 1, 3, 3, 2}).build());
        REQUIRE(r.retval == XDP_TX);
        REQUIRE(r.data.size() == 14 + 40 + 40);
        Packet p = parse_packet(r.data, LinkType::ethernet);
        REQUIRE(p.ok());
        CHECK(p.l4_checksum_ok);
        CHECK((be32(r.data.data() + 54 + 20 + 8) & 63) == (2 | 0x10));
        CHECK(r.data.back() == 9);
    }
}

TEST_CASE("the window scale the kernel picks for a cookie connection") {
    CHECK(sfg::kernel_wscale(6291456, 212992) == 7);     // Debian defaults
    CHECK(sfg::kernel_wscale(33554432, 4194304) == 10);
    CHECK(sfg::kernel_wscale(4096, 4096) == 0);
    CHECK(sfg::kernel_wscale(uint64_t{1} << 40, 0) == 14);
}

// ---- the prefilter in front of the LPM tries and the per-CPU cache of sfg_protect ----

TEST_CASE("prefilter bits: every first-16-bit value a prefix covers, per list and family") {
    auto bits = [&](const char* deny) {
        Guard h(std::string("[guard]\ndeny = [\"") + deny + "\"]\n[[protect]]\nprefix = \"10.1.0.0/24\"\n");
        std::vector<sfg_pf> w;
        sfg::prefilter_bits(h.maps, w);
        std::vector<uint32_t> on;  // (v6 << 16 | hi16) with the deny bit set
        for (uint32_t e = 0; e < SFG_PF_ENTRIES; e++)
            for (uint32_t b = 0; b < 64; b++)
                if (w[e].w[SFG_PF_DENY] >> b & 1) on.push_back(((e / SFG_PF_WORDS) << 16) | ((e % SFG_PF_WORDS) * 64 + b));
        // what the map holds is what was computed
        for (uint32_t e = 0; e < SFG_PF_ENTRIES; e++) {
            sfg_pf cur{};
            REQUIRE(bpf_map_lookup_elem(h.maps.prefilter, &e, &cur) == 0);
            CHECK(sfg::same_pf(cur, w[e]));
        }
        return on;
    };
    CHECK(bits("198.51.100.0/24") == std::vector<uint32_t>{0xc633});
    CHECK(bits("198.51.128.0/17") == std::vector<uint32_t>{0xc633});
    auto s8 = bits("10.0.0.0/8");
    REQUIRE(s8.size() == 256);
    CHECK(s8.front() == 0x0a00);
    CHECK(s8.back() == 0x0aff);
    CHECK(bits("0.0.0.0/0").size() == 65536);
    CHECK(bits("2001:db8::/32") == std::vector<uint32_t>{1u << 16 | 0x2001});
    CHECK(bits("fe80::/10").size() == 64);
}

TEST_CASE("allow list empty vs non-empty; deny and allow with prefixes shorter and longer than /16, IPv6") {
    const char* cfg = R"(
[guard]
src_pps = 2
[[protect]]
prefix = "10.1.0.0/24"
port = 9090
[[protect]]
prefix = "2001:db8:1::/64"
port = 9090
)";
    Guard g(cfg);
    auto burst = [&](const char* src, int n) {  // verdicts of n ACKs from src
        int pass = 0;
        for (int i = 0; i < n; i++) pass += g.run(ack4(src, 1, "10.1.0.1", 9090, 1, 1)).retval == XDP_PASS;
        return pass;
    };
    // empty lists: the limits apply to everyone, nothing is denied
    CHECK(burst("192.0.2.9", 5) == 2);
    CHECK(burst("198.51.100.7", 5) == 2);
    CHECK(g.reason(SFG_R_PASS_ALLOWED) == 0);
    CHECK(g.reason(SFG_R_DROP_DENY) == 0);
    // non-empty: an allow /8 (bits for 256 first-16-bit values) and a deny /28 inside one /16
    g.cfg.allow = {Prefix::parse("192.0.0.0/8").value()};
    g.cfg.deny = {Prefix::parse("198.51.100.0/28").value(), Prefix::parse("2001:db8:9::/48").value()};
    sfg::apply(g.maps, g.cfg);
    CHECK(burst("192.0.2.9", 5) == 5);      // allowed: no limit
    CHECK(burst("192.255.0.1", 5) == 5);    // the other end of the /8
    CHECK(burst("193.0.0.1", 5) == 2);      // next /8: limited
    CHECK(g.reason(SFG_R_PASS_ALLOWED) == 10);
    CHECK(burst("198.51.100.7", 3) == 0);   // denied
    CHECK(g.reason(SFG_R_DROP_DENY) == 3);
    CHECK(burst("198.51.100.17", 5) == 2);  // same /16, outside the /28: the trie decides
    CHECK(g.reason(SFG_R_DROP_DENY) == 3);
    auto ack6 = [&](const char* src) {
        return g.run(PacketBuilder().eth(kClientMac, kServerMac).ipv6(ip(src), ip("2001:db8:1::1")).tcp(1, 9090)
                         .flags(TcpFlags::ack).seq(1).ack(1).build()).retval;
    };
    CHECK(ack6("2001:db8:9::5") == XDP_DROP);
    CHECK(ack6("2001:db8:8::5") == XDP_PASS);  // same first 16 bits, not on the list
    CHECK(g.reason(SFG_R_DROP_DENY) == 4);
    // the IPv4 deny bits do not leak into IPv6 (and back): 0xc633 as an IPv6 prefix
    CHECK(ack6("c633::1") == XDP_PASS);
    // emptied again: back to the limits
    g.cfg.allow.clear();
    g.cfg.deny.clear();
    for (auto* fd : {&g.maps.allow, &g.maps.deny}) {  // what reload does for removed entries
        sfg_src_key k{}, next{};
        while (bpf_map_get_next_key(*fd, nullptr, &next) == 0) {
            k = next;
            REQUIRE(bpf_map_delete_elem(*fd, &k) == 0);
        }
    }
    sfg::sync_prefilter(g.maps);
    CHECK(burst("192.0.2.77", 5) == 2);
    CHECK(burst("198.51.100.8", 5) == 2);
    CHECK(g.reason(SFG_R_PASS_ALLOWED) == 10);
    CHECK(g.reason(SFG_R_DROP_DENY) == 4);
}

TEST_CASE("the per-CPU cache of protected destinations: many destinations, exact port before any port, changes seen at once") {
    const char* cfg = R"(
[[protect]]
prefix = "10.1.0.0/24"
port = 9090
syn_pps = 1
[[protect]]
prefix = "10.1.0.0/16"
[[protect]]
prefix = "10.1.0.128/25"
port = 9090
)";
    Guard g(cfg);
    // 600 packets to 300 destinations x 2 ports through a 64-slot cache: each goes to
    // the entry the tries give (exact port and longest prefix first, then port 0).
    uint64_t want[3] = {0, 0, 0}, unprotected = 0;
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 300; i++) {
            std::string dst = fmt::format("10.1.{}.{}", i / 250, i % 250);
            for (uint16_t port : {uint16_t(9090), uint16_t(7000)}) {
                g.run(ack4("10.9.0.1", 1, dst.c_str(), port, 1, 1));
                if (port == 7000) want[1]++;
                else if (i / 250 == 0 && i % 250 >= 128) want[2]++;
                else if (i / 250 == 0) want[0]++;
                else want[1]++;
            }
            g.run(ack4("10.9.0.1", 1, fmt::format("10.2.0.{}", i % 250).c_str(), 9090, 1, 1));
            unprotected++;
        }
    for (uint32_t id = 0; id < 3; id++) CHECK(g.stats(id).packets == want[id]);
    CHECK(g.reason(SFG_R_PASS_UNPROTECTED) == unprotected);
    // A flood on one victim: after the first SYN, the budget of 1 drops the rest.
    Bytes syn = syn4("10.9.0.2", 1, "10.1.0.7", 9090);
    g.run(syn);
    for (int i = 0; i < 5; i++) CHECK(g.run(syn).retval == XDP_DROP);
    uint64_t drops = g.reason(SFG_R_DROP_DST_RATE);
    CHECK(drops >= 5);
    // A new budget written by the control plane is seen by the next packet.
    auto d = sfg::get_dest(g.maps, g.cfg.protect[0]).value();
    d.syn_pps = 0;
    sfg::set_dest(g.maps, g.cfg.protect[0], d);
    CHECK(g.run(syn).retval == XDP_PASS);
    // A removed entry (reload) stops matching at once: 10.1.0.7 falls to the /16 entry.
    auto k = sfg::dst_key(g.cfg.protect[0]);
    REQUIRE(bpf_map_delete_elem(g.maps.protect, &k) == 0);
    sfg::sync_prefilter(g.maps);
    sfg::bump_protect_gen(g.maps);
    uint64_t before = g.stats(1).packets;
    CHECK(g.run(syn).retval == XDP_PASS);
    CHECK(g.stats(1).packets == before + 1);
    // ... and with every entry gone, the destination is unprotected.
    for (auto& p : g.cfg.protect) {
        auto kk = sfg::dst_key(p);
        bpf_map_delete_elem(g.maps.protect, &kk);
    }
    sfg::sync_prefilter(g.maps);
    sfg::bump_protect_gen(g.maps);
    uint64_t un = g.reason(SFG_R_PASS_UNPROTECTED);
    CHECK(g.run(syn).retval == XDP_PASS);
    CHECK(g.reason(SFG_R_PASS_UNPROTECTED) == un + 1);
}

TEST_CASE("a SYN bucket found short stays short for bigger SYNs only: a smaller SYN that fits still passes") {
    const char* cfg = R"(
[[protect]]
prefix = "10.1.0.0/24"
port = 9090
syn_bps = 1040
)";
    Guard g(cfg);  // 130 bytes/s of SYNs
    Bytes big = syn4("10.9.0.3", 1, "10.1.0.1", 9090);                                    // 74 bytes
    Bytes small = syn4("10.9.0.3", 2, "10.1.0.1", 9090, 1000, std::vector<uint8_t>{});  // 54 bytes
    REQUIRE(big.size() == 74);
    REQUIRE(small.size() == 54);
    CHECK(g.run(big).retval == XDP_PASS);    // 56 bytes left
    CHECK(g.run(big).retval == XDP_DROP);    // short for 74
    CHECK(g.run(big).retval == XDP_DROP);
    CHECK(g.run(small).retval == XDP_PASS);  // 54 fit: 2 left
    CHECK(g.run(small).retval == XDP_DROP);
    CHECK(g.reason(SFG_R_DROP_DST_RATE) == 3);
    CHECK(g.stats(0).syn == 5);
    CHECK(g.stats(0).drops == 3);
    // a refill written by the control plane (reload with new limits) is seen at once
    g.cfg.protect[0].syn_bps = 8000;
    sfg::apply(g.maps, g.cfg);
    CHECK(g.run(big).retval == XDP_PASS);
}
