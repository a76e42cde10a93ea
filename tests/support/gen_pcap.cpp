// edge-gen-pcap: writes synthetic captures for CLI tests and benchmarks.
//   edge-gen-pcap OUT --flows N --packets M [--seed S] [--ipv6-share PCT] [--vip ADDR:PORT]
// Flows are random clients talking TCP/UDP to one VIP, packets spread over flows with a
// skewed (Zipf-like) popularity, like real edge traffic. Deterministic for a seed.
#include <cstdio>
#include <random>
#include <string>

#include <CLI/CLI.hpp>

#include "net/build.hpp"
#include "pcap/writer.hpp"

using namespace edge::net;

int main(int argc, char** argv) {
    CLI::App app("edge-gen-pcap: synthetic captures for tests and benchmarks");
    std::string out;
    uint64_t flows = 1000, packets = 10000, seed = 1;
    int v6_share = 10, payload = 64;
    std::string vip4 = "203.0.113.10", vip6 = "2001:db8::10";
    app.add_option("out", out, "Output capture ('-' for stdout)")->required();
    app.add_option("--flows", flows, "Distinct flows");
    app.add_option("--packets", packets, "Packets");
    app.add_option("--seed", seed, "PRNG seed");
    app.add_option("--ipv6-share", v6_share, "Percent of flows over IPv6");
    app.add_option("--payload", payload, "Payload bytes per packet");
    CLI11_PARSE(app, argc, argv);

    std::mt19937_64 rng(seed);
    struct F {
        IpAddr src, dst;
        uint16_t sport, dport;
        bool udp;
    };
    std::vector<F> fl;
    for (uint64_t i = 0; i < flows; i++) {
        F f;
        bool v6 = static_cast<int>(rng() % 100) < v6_share;
        if (v6) {
            std::array<uint8_t, 16> a{0x20, 0x01, 0x0d, 0xb8};
            for (int k = 8; k < 16; k++) a[k] = static_cast<uint8_t>(rng());
            f.src = IpAddr::v6(a);
            f.dst = IpAddr::parse(vip6).value();
        } else {
            f.src = IpAddr::v4(static_cast<uint32_t>(0x0a000000u | (rng() & 0x00ffffffu)));
            f.dst = IpAddr::parse(vip4).value();
        }
        f.sport = static_cast<uint16_t>(1024 + rng() % 60000);
        f.udp = rng() % 4 == 0;
        f.dport = f.udp ? 443 : (rng() % 2 ? 443 : 80);
        fl.push_back(f);
    }
    // Popularity: flow index drawn from a skewed distribution, but every flow appears
    // at least once (the first `flows` packets walk them in order).
    std::vector<uint8_t> body(static_cast<size_t>(payload), 'x');
    const Mac a{2, 0, 0, 0, 0, 1}, b{2, 0, 0, 0, 0, 2};
    edge::pcap::Writer w(out, 1 /* DLT_EN10MB */);
    std::exponential_distribution<double> expo(1.0 / (static_cast<double>(flows) / 8 + 1));
    int64_t ts = 1700000000LL * 1000000;
    for (uint64_t i = 0; i < packets; i++) {
        uint64_t idx = i < flows ? i : static_cast<uint64_t>(expo(rng)) % flows;
        const F& f = fl[idx];
        PacketBuilder pb;
        pb.eth(a, b);
        if (f.src.is_v4()) pb.ipv4(f.src, f.dst);
        else pb.ipv6(f.src, f.dst);
        if (f.udp) pb.udp(f.sport, f.dport);
        else pb.tcp(f.sport, f.dport).flags(TcpFlags::ack).seq(static_cast<uint32_t>(i));
        pb.payload(body);
        auto pkt = pb.build();
        w.write(pkt, ts);
        ts += 10;
    }
    w.flush();
    return 0;
}
