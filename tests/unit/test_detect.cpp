// common/detect: distinct counting, medians, and the SYN-flood detector on packets built
// in memory (spoofed and single-source floods, flash crowds, baselines, mitigations).
#include <doctest/doctest.h>

#include <cstring>
#include <random>

#include "detect/synflood.hpp"
#include "net/build.hpp"

using namespace edge::net;
using edge::detect::SynFloodDetector;

namespace {
IpAddr ip(const char* s) { return IpAddr::parse(s).value(); }
const int64_t t0 = 1700000000LL * 1000000;

void feed(SynFloodDetector& d, const IpAddr& s, uint16_t sp, const IpAddr& dst, uint16_t dp, uint8_t flags, int64_t ts,
          uint8_t ttl = 64) {
    PacketBuilder b;
    if (s.is_v4()) b.ipv4(s, dst);
    else b.ipv6(s, dst);
    auto bytes = b.ttl(ttl).tcp(sp, dp).flags(flags).build();
    Packet p = parse_packet(bytes, LinkType::raw_ip);
    REQUIRE(p.ok());
    d.add(p, ts, static_cast<uint32_t>(bytes.size()));
}
// n completed handshakes per second to dst:port for `secs` seconds.
void background(SynFloodDetector& d, const IpAddr& dst, uint16_t port, int per_sec, int secs) {
    for (int s = 0; s < secs; s++)
        for (int i = 0; i < per_sec; i++) {
            IpAddr c = IpAddr::v4(0x0a000000u + uint32_t(i % 50));
            uint16_t sp = uint16_t(10000 + s * per_sec + i);
            int64_t ts = t0 + s * 1000000LL + i * (1000000LL / per_sec);
            feed(d, c, sp, dst, port, TcpFlags::syn, ts);
            feed(d, dst, port, c, sp, TcpFlags::syn | TcpFlags::ack, ts + 100);
            feed(d, c, sp, dst, port, TcpFlags::ack, ts + 200);
        }
}
}  // namespace

TEST_CASE("DistinctCounter: HyperLogLog within a few percent") {
    for (uint32_t n : {50u, 1000u, 20000u, 200000u}) {
        edge::detect::DistinctCounter c;
        for (uint32_t i = 0; i < n; i++) {
            c.add(IpAddr::v4(0x01000000u + i * 7919u));
            c.add(IpAddr::v4(0x01000000u + i * 7919u));  // duplicates do not count
        }
        CHECK(c.estimate() == doctest::Approx(n).epsilon(0.05));
    }
}

TEST_CASE("median") {
    CHECK(edge::detect::median({}) == 0);
    CHECK(edge::detect::median({5}) == 5);
    CHECK(edge::detect::median({1, 9, 3}) == 3);
    CHECK(edge::detect::median({1, 2, 3, 10}) == 2.5);
}

TEST_CASE("normal traffic: no flood") {
    SynFloodDetector d;
    background(d, ip("203.0.113.10"), 443, 50, 10);
    auto r = d.finish();
    CHECK(r.floods.empty());
    CHECK(r.syn == 500);
    CHECK(r.syn_ack == 500);
    CHECK(r.completed == 500);
    CHECK(r.seconds == doctest::Approx(10).epsilon(0.05));
}

TEST_CASE("spoofed flood: destination flood, spoofing signs, FlowSpec on the /32") {
    SynFloodDetector d;
    IpAddr victim = ip("203.0.113.10");
    background(d, victim, 443, 20, 10);
    std::mt19937 rng(7);
    for (int i = 0; i < 6000; i++)  // 3000 SYN/s for 2 s from second 5
        feed(d, IpAddr::v4(0x01000000u + rng() % 0xd0000000u), uint16_t(rng()), victim, 80, TcpFlags::syn,
             t0 + 5000000 + i * 333, uint8_t(30 + rng() % 200));
    auto r = d.finish();
    REQUIRE(r.floods.size() == 1);
    auto& f = r.floods[0];
    CHECK(f.kind == "destination");
    CHECK(f.dst == victim);
    CHECK(f.dst_ports == std::vector<uint16_t>{80});
    CHECK(f.start_s == 5);
    CHECK(f.duration_s == 2);
    CHECK(f.peak_syn_pps >= 2900);
    CHECK(f.threshold_pps == 1000);  // floor: 8 x median 20 < 1000
    CHECK(f.baseline_pps == 20);
    CHECK(f.half_open == 6000);
    CHECK(f.completion_ratio < 0.05);
    CHECK(f.distinct_sources == doctest::Approx(6000).epsilon(0.05));
    CHECK(f.spoofed);
    CHECK(f.ttl_distinct > 100);
    REQUIRE(r.mitigations.size() == 1);
    CHECK(r.mitigations[0].action == "flowspec");
    CHECK(r.mitigations[0].prefix.to_string() == "203.0.113.10/32");
    CHECK(!r.mitigations[0].source);
    CHECK(r.mitigations[0].dst_ports == std::vector<uint16_t>{80});
    // per-second series of the victim: the flood's seconds stand out
    uint64_t peak = 0;
    for (auto& row : r.series) peak = std::max(peak, row.syn);
    CHECK(peak >= 2900);
}

TEST_CASE("single-source flood over IPv6: a source flood, FlowSpec narrowed to the source; rtbh when forced") {
    for (const char* action : {"auto", "rtbh"}) {
        edge::detect::SynFloodParams p;
        p.action = action;
        p.baseline_pps = 0;  // the capture is all flood: its median would be the flood itself
        SynFloodDetector d(p);
        IpAddr victim = ip("2001:db8::10"), bad = ip("2001:db8:bad::1");
        for (int i = 0; i < 4000; i++) {
            feed(d, bad, uint16_t(1024 + i), victim, 22, TcpFlags::syn, t0 + i * 500);
            feed(d, victim, 22, bad, uint16_t(1024 + i), TcpFlags::syn | TcpFlags::ack, t0 + i * 500 + 50);
            feed(d, bad, uint16_t(1024 + i), victim, 22, TcpFlags::rst, t0 + i * 500 + 90);
        }
        auto r = d.finish();
        REQUIRE(r.floods.size() == 2);
        CHECK(r.floods[0].kind == "destination");
        CHECK(!r.floods[0].spoofed);
        CHECK(r.floods[0].top_source_share == 1.0);
        CHECK(r.floods[0].syn_ack_ratio == 1.0);
        CHECK(r.floods[1].kind == "source");
        CHECK(r.floods[1].src == bad);
        REQUIRE(r.mitigations.size() == 1);
        CHECK(r.mitigations[0].prefix.to_string() == "2001:db8::10/128");
        if (std::string(action) == "auto") {
            CHECK(r.mitigations[0].action == "flowspec");
            REQUIRE(r.mitigations[0].source);
            CHECK(r.mitigations[0].source->to_string() == "2001:db8:bad::1/128");
        } else {
            CHECK(r.mitigations[0].action == "rtbh");
            CHECK(r.mitigations[0].dst_ports.empty());
        }
    }
}

TEST_CASE("a capture that is all flood: the source rule still fires without a baseline") {
    SynFloodDetector d;
    for (int i = 0; i < 4000; i++)
        feed(d, ip("198.51.100.66"), uint16_t(1024 + i), ip("203.0.113.10"), 80, TcpFlags::syn, t0 + i * 500);
    auto r = d.finish();
    REQUIRE(r.floods.size() == 1);
    CHECK(r.floods[0].kind == "source");
    REQUIRE(r.mitigations.size() == 1);
    CHECK(r.mitigations[0].source->to_string() == "198.51.100.66/32");
}

TEST_CASE("flash crowd completes its handshakes: not a flood") {
    SynFloodDetector d;
    background(d, ip("203.0.113.10"), 443, 3000, 3);
    CHECK(d.finish().floods.empty());
}

TEST_CASE("the threshold follows the baseline: a busy destination needs factor x its median") {
    edge::detect::SynFloodParams p;
    p.floor_pps = 100;
    p.factor = 4;
    SynFloodDetector d(p);
    IpAddr dst = ip("198.18.0.1");
    // 10 s of 500 unanswered SYN/s (a scanner target, say), then 2 s of 1500: 3x, under 4x.
    int64_t ts = t0;
    for (int s = 0; s < 12; s++) {
        int n = s < 10 ? 500 : 1500;
        for (int i = 0; i < n; i++)
            feed(d, IpAddr::v4(0x01000000u + uint32_t(s * 2000 + i)), 1000, dst, 80, TcpFlags::syn, ts + i * (1000000 / n));
        ts += 1000000;
    }
    auto r = d.finish();
    CHECK(r.floods.empty());
}

TEST_CASE("AddrTable: inserts, finds, grows, respects its cap") {
    edge::detect::AddrTable<uint64_t> t(4);
    for (uint32_t i = 0; i < 50000; i++) {
        IpAddr a = i % 2 ? IpAddr::v4(0x0a000000u + i) : IpAddr::v6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0,
                                                                      uint8_t(i >> 24), uint8_t(i >> 16), uint8_t(i >> 8), uint8_t(i)});
        *t.get(a, edge::detect::addr_hash(a)) = i + 1;
    }
    CHECK(t.size() == 50000);
    int wrong = 0;
    for (uint32_t i = 0; i < 50000; i++) {
        IpAddr a = i % 2 ? IpAddr::v4(0x0a000000u + i) : IpAddr::v6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0,
                                                                      uint8_t(i >> 24), uint8_t(i >> 16), uint8_t(i >> 8), uint8_t(i)});
        uint64_t* v = t.find(a, edge::detect::addr_hash(a));
        wrong += !v || *v != i + 1;
    }
    CHECK(wrong == 0);
    // 10.0.0.0 (v4) and :: with the same bytes are different keys
    IpAddr v4 = IpAddr::v4(0x0a000000u), v6 = IpAddr::v6({10, 0, 0, 0});
    edge::detect::AddrTable<uint64_t> u;
    *u.get(v4, edge::detect::addr_hash(v4)) = 1;
    CHECK(u.find(v6, edge::detect::addr_hash(v6)) == nullptr);
    CHECK(u.get(v6, edge::detect::addr_hash(v6), 1) == nullptr);  // at its cap
    CHECK(u.size() == 1);
}

TEST_CASE("a flood bigger than the exact flow table: sampled flows, estimates within a few percent") {
    SynFloodDetector d;
    background(d, ip("203.0.113.10"), 80, 50, 10);
    // 400k spoofed SYN flows over 4 s; every 4th one completes (a real client among them).
    std::mt19937 rng(3);
    const uint32_t n = 400000;
    for (uint32_t i = 0; i < n; i++) {
        IpAddr s = IpAddr::v4(0x0b000000u + rng() % 0xffffff);
        uint16_t sp = uint16_t(1024 + i % 60000);
        int64_t ts = t0 + 10000000 + int64_t(i) * 10;
        feed(d, s, sp, ip("203.0.113.10"), 80, TcpFlags::syn, ts, uint8_t(30 + i % 200));
        if (i % 4 == 0) feed(d, s, sp, ip("203.0.113.10"), 80, TcpFlags::ack, ts + 5);
    }
    auto r = d.finish();
    CHECK(r.flow_sample_rate < 1);
    CHECK(r.flow_sample_rate > 0);
    CHECK(double(r.syn_flows) == doctest::Approx(n + 500).epsilon(0.05));
    CHECK(double(r.completed) == doctest::Approx(n / 4 + 500).epsilon(0.08));
    CHECK(double(r.sources) == doctest::Approx(double(n)).epsilon(0.05));  // HyperLogLog (~1% repeats in 2^24)
    REQUIRE(r.floods.size() >= 1);
    CHECK(r.floods[0].kind == "destination");
    CHECK(r.floods[0].completion_ratio == doctest::Approx(0.25).epsilon(0.1));
    CHECK(r.floods[0].spoofed);
    // no source sends more than a few SYNs: no source floods
    for (auto& f : r.floods) CHECK(f.kind == "destination");
}

TEST_CASE("a heavy source hidden in a spoofed flood is found (sketch promotion), its peak close to exact") {
    SynFloodDetector d;  // src floor 1000/s: promoted at 64 SYNs in a second
    std::mt19937 rng(5);
    IpAddr heavy = ip("198.51.100.66");
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < 30000; i++) {
            int64_t ts = t0 + s * 1000000LL + i * 33;
            feed(d, IpAddr::v4(0x0b000000u + rng() % 0xffffff), uint16_t(1024 + i % 60000), ip("203.0.113.10"), 80,
                 TcpFlags::syn, ts);
            if (i % 20 == 0) feed(d, heavy, uint16_t(2000 + (s * 30000 + i) % 60000), ip("203.0.113.10"), 80, TcpFlags::syn, ts + 1);
        }
    auto r = d.finish();
    const edge::detect::Flood* src = nullptr;
    for (auto& f : r.floods)
        if (f.kind == "source") src = &f;
    REQUIRE(src != nullptr);
    CHECK(src->src == heavy);
    CHECK(src->peak_syn_pps == doctest::Approx(1500).epsilon(0.05));  // exact 1500/s
    CHECK(src->syn == doctest::Approx(4500).epsilon(0.05));
    CHECK(src->start_s == 0);
    int sources = 0;
    for (auto& f : r.floods) sources += f.kind == "source";
    CHECK(sources == 1);
}

namespace {
void check_same_flood(const edge::detect::Flood& a, const edge::detect::Flood& b) {
    CHECK(a.kind == b.kind);
    CHECK(a.dst == b.dst);
    CHECK(a.src == b.src);
    CHECK(a.dst_ports == b.dst_ports);
    CHECK(a.start_us == b.start_us);
    CHECK(a.end_us == b.end_us);
    CHECK(a.syn == b.syn);
    CHECK(a.syn_flows == b.syn_flows);
    CHECK(a.syn_ack == b.syn_ack);
    CHECK(a.completed == b.completed);
    CHECK(a.half_open == b.half_open);
    CHECK(a.peak_syn_pps == b.peak_syn_pps);
    CHECK(a.peak_bps == b.peak_bps);
    CHECK(a.baseline_pps == b.baseline_pps);
    CHECK(a.distinct_sources == b.distinct_sources);
    CHECK(a.ttl_distinct == b.ttl_distinct);
    CHECK(a.ttl_stdev == b.ttl_stdev);
    CHECK(a.spoofing_signs == b.spoofing_signs);
    CHECK(a.top_source_share == b.top_source_share);
    REQUIRE(a.top_sources.size() == b.top_sources.size());
    for (size_t i = 0; i < a.top_sources.size(); i++) {
        CHECK(a.top_sources[i].key == b.top_sources[i].key);
        CHECK(a.top_sources[i].syn == b.top_sources[i].syn);
    }
    REQUIRE(a.top_prefixes.size() == b.top_prefixes.size());
    for (size_t i = 0; i < a.top_prefixes.size(); i++) {
        CHECK(a.top_prefixes[i].key == b.top_prefixes[i].key);
        CHECK(a.top_prefixes[i].syn == b.top_prefixes[i].syn);
    }
}

void check_same_report(const edge::detect::SynReport& a, const edge::detect::SynReport& b) {
    CHECK(a.packets == b.packets);
    CHECK(a.bytes == b.bytes);
    CHECK(a.tcp == b.tcp);
    CHECK(a.syn == b.syn);
    CHECK(a.syn_ack == b.syn_ack);
    CHECK(a.rst == b.rst);
    CHECK(a.completed == b.completed);
    CHECK(a.destinations == b.destinations);
    CHECK(a.sources == b.sources);
    CHECK(a.syn_flows == b.syn_flows);
    CHECK(a.flow_sample_rate == b.flow_sample_rate);
    CHECK(a.seconds == b.seconds);
    REQUIRE(a.floods.size() == b.floods.size());
    for (size_t i = 0; i < a.floods.size(); i++) check_same_flood(a.floods[i], b.floods[i]);
    REQUIRE(a.mitigations.size() == b.mitigations.size());
    for (size_t i = 0; i < a.mitigations.size(); i++) {
        CHECK(a.mitigations[i].action == b.mitigations[i].action);
        CHECK(a.mitigations[i].prefix == b.mitigations[i].prefix);
        CHECK(a.mitigations[i].source == b.mitigations[i].source);
        CHECK(a.mitigations[i].dst_ports == b.mitigations[i].dst_ports);
    }
    REQUIRE(a.series.size() == b.series.size());
    for (size_t i = 0; i < a.series.size(); i++) {
        CHECK(a.series[i].dst == b.series[i].dst);
        CHECK(a.series[i].syn == b.series[i].syn);
        CHECK(a.series[i].syn_ack == b.series[i].syn_ack);
        CHECK(a.series[i].syn_bytes == b.series[i].syn_bytes);
    }
}

struct TestFrame {
    std::vector<uint8_t> bytes;
    int64_t ts;
};

// A capture's worth of frames: handshakes to a few servers, a spoofed flood big enough
// for the capped per-destination tables and the sampled flow table, a heavy source, and
// frames the lean path must leave to the full parser (VLAN, IPv4 options, fragments,
// IPv6, UDP, cut short).
std::vector<TestFrame> mixed_frames(bool ethernet, uint32_t flood) {
    std::mt19937 rng(11);
    std::vector<TestFrame> v;
    const Mac m1{{2, 0, 0, 0, 0, 1}}, m2{{2, 0, 0, 0, 0, 2}};
    IpAddr victim = ip("203.0.113.10"), heavy = ip("198.51.100.66");
    auto add = [&](const IpAddr& s, uint16_t sp, const IpAddr& d, uint16_t dp, uint8_t flags, int64_t ts, int odd) {
        PacketBuilder b;
        if (ethernet) b.eth(m1, m2);
        if (ethernet && odd == 1) b.vlan(7);
        if (s.is_v4()) b.ipv4(s, d);
        else b.ipv6(s, d);
        if (odd == 2) b.ipv4_options({1, 1, 1, 1});
        if (odd == 3) b.fragment(0, true, 9);
        b.ttl(uint8_t(20 + rng() % 200));
        if (odd == 4) b.udp(sp, dp);
        else b.tcp(sp, dp).flags(flags);
        if (odd == 5) b.tcp_options({2, 4, 5, 180});
        auto bytes = b.build();
        if (odd == 6) bytes.resize(std::min<size_t>(bytes.size(), (ethernet ? 14 : 0) + 20 + 10 + rng() % 20));
        v.push_back({std::move(bytes), ts});
    };
    for (uint32_t i = 0; i < flood; i++) {
        int64_t ts = t0 + int64_t(i) * 20;  // 50k packets/s
        int odd = i % 97 == 0 ? int(1 + rng() % 6) : 0;
        IpAddr s = IpAddr::v4(0x0b000000u + rng() % 0xffffff);
        uint16_t sp = uint16_t(1024 + rng() % 60000);
        add(s, sp, victim, 80, TcpFlags::syn, ts, odd);
        if (i % 5 == 0) add(s, sp, victim, 80, TcpFlags::ack, ts + 3, 0);
        if (i % 9 == 0) add(victim, 80, s, sp, TcpFlags::syn | TcpFlags::ack, ts + 2, 0);
        if (i % 31 == 0) add(s, sp, victim, 80, TcpFlags::rst, ts + 4, 0);
        if (i % 10 == 0) add(heavy, uint16_t(2000 + i % 50000), victim, 443, TcpFlags::syn, ts + 1, 0);
        if (i % 50 == 0) {  // a normal client of another server, and one over IPv6
            IpAddr c = IpAddr::v4(0x0a000000u + i % 200), srv = ip("192.0.2.80");
            add(c, uint16_t(i % 65536), srv, 443, TcpFlags::syn, ts + 5, 0);
            add(srv, 443, c, uint16_t(i % 65536), TcpFlags::syn | TcpFlags::ack, ts + 6, 0);
            add(c, uint16_t(i % 65536), srv, 443, TcpFlags::ack, ts + 7, 0);
            add(ip("2001:db8::5"), uint16_t(i % 65536), ip("2001:db8::80"), 443, TcpFlags::syn, ts + 8, 0);
        }
    }
    return v;
}
}  // namespace

TEST_CASE("add_frame (lean IPv4/TCP path, with prefetch hints) counts exactly as parse_packet + add") {
    for (bool ethernet : {true, false}) {
        CAPTURE(ethernet);
        const LinkType link = ethernet ? LinkType::ethernet : LinkType::raw_ip;
        auto frames = mixed_frames(ethernet, ethernet ? 100000 : 20000);
        edge::detect::SynFloodParams params;
        params.baseline_pps = 0;  // all flood: the floor decides
        SynFloodDetector lean(params), full(params);
        size_t fast = 0, slow = 0, disagree = 0;
        for (size_t i = 0; i < frames.size(); i++) {
            const auto& f = frames[i];
            if (i + 3 < frames.size()) lean.prefetch_frame(frames[i + 3].bytes, link);
            edge::detect::SynPacket sp;
            const bool accepted = lean.add_frame(f.bytes, link, f.ts, uint32_t(f.bytes.size()));
            disagree += accepted != edge::detect::parse_tcp4_fast(f.bytes, link, sp);
            Packet p = parse_packet(f.bytes, link, {false});
            if (!accepted && p.ok()) lean.add(p, f.ts, uint32_t(f.bytes.size()));
            if (p.ok()) full.add(p, f.ts, uint32_t(f.bytes.size()));
            (accepted ? fast : slow)++;
        }
        CHECK(disagree == 0);     // add_frame takes what parse_tcp4_fast takes
        CHECK(fast > slow * 10);  // most frames took the lean path
        CHECK(slow > 100);        // and the odd ones did not
        auto a = lean.finish(), b = full.finish();
        if (ethernet) {  // the big run reaches the capped tables, sampling and promotion
            CHECK(a.flow_sample_rate < 1);
            REQUIRE(a.floods.size() >= 2);
            CHECK(a.floods[0].distinct_sources > 4096);
            bool heavy = false;
            for (auto& f : a.floods) heavy |= f.kind == "source" && f.src == ip("198.51.100.66");
            CHECK(heavy);
        }
        check_same_report(a, b);
    }
}

TEST_CASE("AddrTable at its cap: lookups of held keys still succeed, absent ones fail, a higher cap inserts") {
    edge::detect::AddrTable<uint64_t> t;
    const size_t cap = 1000;
    auto key = [](uint32_t i) { return IpAddr::v4(0x0c000000u + i * 7u); };
    for (uint32_t i = 0; i < 5000; i++) {
        IpAddr a = key(i);
        if (uint64_t* v = t.get(a, edge::detect::addr_hash(a), cap)) *v = i + 1;
    }
    CHECK(t.size() == cap);
    int wrong = 0;
    for (uint32_t i = 0; i < 5000; i++) {
        IpAddr a = key(i);
        uint32_t w = 0;
        std::memcpy(&w, a.raw().data(), 4);
        uint64_t* v = t.find(a, edge::detect::addr_hash(a));
        uint64_t* v4 = t.find_v4(w, edge::detect::addr_hash(a));
        uint64_t* g = t.get_v4(w, edge::detect::addr_hash(a), cap);
        if (i < cap) wrong += !v || *v != i + 1 || v4 != v || g != v;
        else wrong += v != nullptr || v4 != nullptr || g != nullptr;
    }
    CHECK(wrong == 0);
    CHECK(t.size() == cap);
    // past the cap (a larger one): new keys go in and are found
    for (uint32_t i = 5000; i < 5100; i++) {
        IpAddr a = key(i);
        *t.get(a, edge::detect::addr_hash(a), cap + 100) = i + 1;
    }
    for (uint32_t i = 5000; i < 5100; i++) {
        IpAddr a = key(i);
        uint64_t* v = t.find(a, edge::detect::addr_hash(a));
        wrong += !v || *v != i + 1;
    }
    CHECK(wrong == 0);
    CHECK(t.size() == cap + 100);
}
