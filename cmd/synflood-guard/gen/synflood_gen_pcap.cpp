// synflood-gen-pcap: synthetic captures for synflood-guard's detection tests and benchmark.
//   synflood-gen-pcap OUT [--seconds S] [--flood none|spoofed|single|flash] [--rate SYN/s]
//                     [--flood-start S] [--flood-seconds S] [--victim ADDR] [--port P] [--v6]
// Background: clients completing TCP handshakes to two servers (SYN, SYN-ACK, ACK, data).
// spoofed: SYNs from random sources with random TTLs (the server answers some; nobody ACKs).
// single: one source (TTL 64, incrementing ports, RST for every SYN-ACK), like hping3 -S.
// flash: many real clients at the same rate, every handshake completed (not a flood).
// Deterministic for a seed; packets are written in time order.
#include <algorithm>
#include <random>
#include <string>

#include <CLI/CLI.hpp>

#include "net/build.hpp"
#include "pcap/writer.hpp"

using namespace edge::net;

namespace {
struct Ev {
    int64_t ts;
    uint64_t seq;
    std::vector<uint8_t> bytes;
};
const Mac kA{2, 0, 0, 0, 0, 1}, kB{2, 0, 0, 0, 0, 2};
}  // namespace

int main(int argc, char** argv) {
    CLI::App app("synflood-gen-pcap: synthetic SYN-flood captures");
    std::string out, flood = "none", victim_s;
    double seconds = 10, rate = 5000, start = 4, fseconds = 3, conn_rate = 40;
    uint64_t seed = 1;
    uint16_t port = 80;
    bool v6 = false;
    int payload = 200;
    app.add_option("out", out, "Output capture ('-' for stdout)")->required();
    app.add_option("--seconds", seconds, "Length of the capture");
    app.add_option("--conn-rate", conn_rate, "Background connections per second");
    app.add_option("--flood", flood, "none | spoofed | single | flash")->check(CLI::IsMember({"none", "spoofed", "single", "flash"}));
    app.add_option("--rate", rate, "Flood SYN/s (flash: connections/s)");
    app.add_option("--flood-start", start, "Second the flood starts");
    app.add_option("--flood-seconds", fseconds, "Flood length in seconds");
    app.add_option("--victim", victim_s, "Flooded address (default 203.0.113.10 or 2001:db8::10)");
    app.add_option("--port", port, "Flooded port");
    app.add_option("--payload", payload, "Data bytes per background packet");
    app.add_flag("--v6", v6, "IPv6 everywhere");
    app.add_option("--seed", seed, "PRNG seed");
    CLI11_PARSE(app, argc, argv);

    std::mt19937_64 rng(seed);
    auto ip = [](const char* s) { return IpAddr::parse(s).value(); };
    IpAddr srv1 = v6 ? ip("2001:db8::10") : ip("203.0.113.10");
    IpAddr srv2 = v6 ? ip("2001:db8::20") : ip("203.0.113.20");
    IpAddr victim = victim_s.empty() ? srv1 : ip(victim_s.c_str());
    auto client = [&](uint32_t i) {
        if (v6) {
            std::array<uint8_t, 16> a{0x20, 0x01, 0x0d, 0xb8, 0xc1};
            a[14] = uint8_t(i >> 8), a[15] = uint8_t(i);
            return IpAddr::v6(a);
        }
        return IpAddr::v4(0x0a000000u | (i & 0xffffff));  // 10.0.x.y
    };
    auto random_src = [&] {
        if (v6) {
            std::array<uint8_t, 16> a{};
            for (auto& b : a) b = uint8_t(rng());
            a[0] = 0x20 | (a[0] & 0x0f);  // 2000::/4, global unicast
            return IpAddr::v6(a);
        }
        uint32_t x;
        do x = uint32_t(rng()); while ((x >> 24) == 0 || (x >> 24) >= 224 || (x >> 24) == 10 || (x >> 24) == 127);
        return IpAddr::v4(x);
    };

    std::vector<Ev> ev;
    uint64_t n = 0;
    const int64_t t0 = 1700000000LL * 1000000;
    std::vector<uint8_t> body(size_t(std::max(payload, 0)), 'd');
    auto pkt = [&](int64_t ts, const IpAddr& s, uint16_t sp, const IpAddr& d, uint16_t dp, uint8_t flags, uint8_t ttl,
                   uint32_t seqno, uint32_t ackno, bool data) {
        PacketBuilder b;
        b.eth(kA, kB);
        if (s.is_v4()) b.ipv4(s, d);
        else b.ipv6(s, d);
        b.ttl(ttl).tcp(sp, dp).flags(flags).seq(seqno).ack(ackno);
        if (flags & TcpFlags::syn) b.tcp_options({2, 4, 0x05, 0xb4});
        if (data) b.payload(body);
        ev.push_back({ts, n++, b.build()});
    };
    // A complete connection: SYN, SYN-ACK, ACK, request, response, FIN exchange.
    auto connection = [&](int64_t ts, const IpAddr& c, const IpAddr& s, uint16_t sp, uint16_t dp, uint8_t ttl) {
        uint32_t cs = uint32_t(rng()), ss = uint32_t(rng());
        int64_t rtt = 200 + int64_t(rng() % 2000);
        pkt(ts, c, sp, s, dp, TcpFlags::syn, ttl, cs, 0, false);
        pkt(ts + rtt / 2, s, dp, c, sp, TcpFlags::syn | TcpFlags::ack, 64, ss, cs + 1, false);
        pkt(ts + rtt, c, sp, s, dp, TcpFlags::ack, ttl, cs + 1, ss + 1, false);
        pkt(ts + rtt + 10, c, sp, s, dp, TcpFlags::ack | TcpFlags::psh, ttl, cs + 1, ss + 1, true);
        pkt(ts + rtt * 3 / 2, s, dp, c, sp, TcpFlags::ack | TcpFlags::psh, 64, ss + 1, cs + 1 + uint32_t(body.size()), true);
        pkt(ts + rtt * 2, c, sp, s, dp, TcpFlags::fin | TcpFlags::ack, ttl, cs + 1 + uint32_t(body.size()),
            ss + 1 + uint32_t(body.size()), false);
    };

    // Background: 200 clients, each with its own TTL (path length).
    std::vector<uint8_t> ttls(200);
    for (auto& t : ttls) t = uint8_t(40 + rng() % 25);
    int64_t nconn = int64_t(seconds * conn_rate);
    for (int64_t i = 0; i < nconn; i++) {
        int64_t ts = t0 + int64_t(double(i) / conn_rate * 1e6) + int64_t(rng() % 1000);
        uint32_t c = uint32_t(rng() % 200);
        bool two = rng() % 4 == 0;
        connection(ts, client(c + 1), two ? srv2 : srv1, uint16_t(1024 + rng() % 60000), two ? 22 : (rng() % 2 ? 443 : 80),
                   ttls[c]);
    }

    int64_t fstart = t0 + int64_t(start * 1e6);
    int64_t nflood = flood == "none" ? 0 : int64_t(rate * fseconds);
    IpAddr attacker = v6 ? ip("2001:db8:bad::66") : ip("198.51.100.66");
    for (int64_t i = 0; i < nflood; i++) {
        int64_t ts = fstart + int64_t(double(i) / rate * 1e6);
        if (flood == "spoofed") {
            IpAddr s = random_src();
            uint16_t sp = uint16_t(1024 + rng() % 60000);
            uint32_t seqno = uint32_t(rng());
            pkt(ts, s, sp, victim, port, TcpFlags::syn, uint8_t(30 + rng() % 220), seqno, 0, false);
            if (i % 3 == 0)  // the backlog lets some through: SYN-ACKs to nowhere
                pkt(ts + 50, victim, port, s, sp, TcpFlags::syn | TcpFlags::ack, 64, uint32_t(rng()), seqno + 1, false);
        } else if (flood == "single") {
            uint16_t sp = uint16_t(1024 + i % 60000);
            uint32_t seqno = uint32_t(rng());
            pkt(ts, attacker, sp, victim, port, TcpFlags::syn, 64, seqno, 0, false);
            uint32_t ss = uint32_t(rng());
            pkt(ts + 40, victim, port, attacker, sp, TcpFlags::syn | TcpFlags::ack, 64, ss, seqno + 1, false);
            pkt(ts + 80, attacker, sp, victim, port, TcpFlags::rst, 64, seqno + 1, 0, false);
        } else {  // flash crowd: real clients, every handshake completes
            connection(ts, client(1000 + uint32_t(i % 50000)), victim, uint16_t(1024 + rng() % 60000), port,
                       uint8_t(40 + rng() % 25));
        }
    }
    std::sort(ev.begin(), ev.end(), [](const Ev& a, const Ev& b) { return a.ts != b.ts ? a.ts < b.ts : a.seq < b.seq; });
    edge::pcap::Writer w(out, 1 /* DLT_EN10MB */);
    for (auto& e : ev) w.write(e.bytes, e.ts);
    w.flush();
    return 0;
}
