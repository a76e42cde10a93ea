#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "cli/error.hpp"
#include "net/build.hpp"
#include "pcap/filter.hpp"
#include "pcap/reader.hpp"
#include "pcap/scan.hpp"
#include "pcap/writer.hpp"


namespace {
std::string tmpname(const char* tag) {
    char name[64];
    std::snprintf(name, sizeof name, "/tmp/edge-pcap-test-%s-%d", tag, getpid());
    return name;
}

std::vector<std::vector<uint8_t>> packets() {
    const edge::net::Mac a{2, 0, 0, 0, 0, 1}, b{2, 0, 0, 0, 0, 2};
    auto ip = [](const char* s) { return edge::net::IpAddr::parse(s).value(); };
    std::vector<std::vector<uint8_t>> v;
    v.push_back(edge::net::PacketBuilder().eth(a, b).ipv4(ip("10.0.0.1"), ip("10.0.0.2")).tcp(1000, 80).build());
    v.push_back(edge::net::PacketBuilder().eth(a, b).ipv4(ip("10.0.0.1"), ip("10.0.0.3")).udp(1000, 53).payload("dns").build());
    v.push_back(edge::net::PacketBuilder().eth(a, b).ipv6(ip("2001:db8::1"), ip("2001:db8::2")).udp(5, 443).build());
    std::vector<uint8_t> arp(60, 0);
    arp[12] = 0x08;
    arp[13] = 0x06;
    v.push_back(arp);
    return v;
}

std::string write_capture(const char* tag) {
    auto path = tmpname(tag);
    edge::pcap::Writer w(path, 1);
    int64_t ts = 1700000000LL * 1000000 + 123456;
    for (auto& p : packets()) w.write(p, ts++);
    w.flush();
    return path;
}

std::vector<uint8_t> slurp(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}
void spit(const std::string& p, const std::vector<uint8_t>& d) {
    std::ofstream out(p, std::ios::binary);
    out.write(reinterpret_cast<const char*>(d.data()), static_cast<std::streamsize>(d.size()));
}
uint32_t rd32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}
void wr32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }

// Same capture with every header field byte-swapped (a big-endian writer's file).
std::vector<uint8_t> swap_endianness(std::vector<uint8_t> d, bool nanos) {
    wr32(d.data(), nanos ? 0x4d3cb2a1 : 0xd4c3b2a1);
    auto sw16 = [&](size_t o) { std::swap(d[o], d[o + 1]); };
    auto sw32 = [&](size_t o) { wr32(&d[o], __builtin_bswap32(rd32(&d[o]))); };
    sw16(4);
    sw16(6);
    for (size_t o = 8; o < 24; o += 4) sw32(o);
    size_t off = 24;
    while (off + 16 <= d.size()) {
        uint32_t caplen = rd32(&d[off + 8]);
        if (nanos) wr32(&d[off + 4], rd32(&d[off + 4]) * 1000);
        for (size_t k = 0; k < 16; k += 4) sw32(off + k);
        off += 16 + caplen;
    }
    return d;
}

// A pcapng file with one interface and the given packets as Enhanced Packet Blocks.
std::vector<uint8_t> to_pcapng(const std::vector<std::vector<uint8_t>>& pkts, uint64_t ts = 1700000000ULL * 1000000) {
    std::vector<uint8_t> out;
    auto u32 = [&](uint32_t v) { out.insert(out.end(), reinterpret_cast<uint8_t*>(&v), reinterpret_cast<uint8_t*>(&v) + 4); };
    auto u16 = [&](uint16_t v) { out.insert(out.end(), reinterpret_cast<uint8_t*>(&v), reinterpret_cast<uint8_t*>(&v) + 2); };
    u32(0x0a0d0d0a); u32(28); u32(0x1a2b3c4d); u16(1); u16(0); u32(0xffffffff); u32(0xffffffff); u32(28);  // SHB
    u32(1); u32(20); u16(1); u16(0); u32(262144); u32(20);  // IDB, Ethernet
    for (auto& p : pkts) {
        uint32_t padded = static_cast<uint32_t>((p.size() + 3) & ~size_t{3});
        uint32_t len = 32 + padded;
        u32(6); u32(len); u32(0); u32(static_cast<uint32_t>(ts >> 32)); u32(static_cast<uint32_t>(ts));
        u32(static_cast<uint32_t>(p.size())); u32(static_cast<uint32_t>(p.size()));
        out.insert(out.end(), p.begin(), p.end());
        out.resize(out.size() + (padded - p.size()), 0);
        u32(len);
        ts++;
    }
    return out;
}

struct Seen {
    std::vector<size_t> sizes;
    std::vector<int64_t> ts;
};
Seen read_all(const std::string& path, const std::string& filter = "") {
    edge::pcap::Reader r(path);
    edge::pcap::apply_filter(r, filter);
    Seen s;
    edge::pcap::Frame f;
    while (r.next(f)) {
        s.sizes.push_back(f.data.size());
        s.ts.push_back(f.ts_us);
    }
    CHECK_FALSE(r.truncated());
    return s;
}
}  // namespace

TEST_CASE("written captures read back identically, in every byte order and precision") {
    auto path = write_capture("rt");
    auto want = read_all(path);
    REQUIRE(want.sizes.size() == 4);
    CHECK(want.ts[0] == 1700000000LL * 1000000 + 123456);
    auto raw = slurp(path);
    for (bool nanos : {false, true}) {
        auto other = tmpname(nanos ? "swns" : "sw");
        spit(other, swap_endianness(raw, nanos));
        auto got = read_all(other);
        CHECK(got.sizes == want.sizes);
        CHECK(got.ts == want.ts);
        std::remove(other.c_str());
    }
    std::remove(path.c_str());
}

TEST_CASE("pcapng is read through libpcap, and filters work on both paths") {
    auto path = write_capture("ng-src");
    auto ng = tmpname("ng");
    spit(ng, to_pcapng(packets()));
    CHECK(read_all(ng).sizes == read_all(path).sizes);
    CHECK(read_all(path, "udp").sizes.size() == 2);
    CHECK(read_all(ng, "udp").sizes.size() == 2);
    CHECK(read_all(path, "ip6").sizes.size() == 1);
    edge::pcap::Reader r(path);
    CHECK_THROWS_WITH_AS(edge::pcap::apply_filter(r, "no such ((("), doctest::Contains("bad filter"), edge::UsageError);
    std::remove(path.c_str());
    std::remove(ng.c_str());
}

TEST_CASE("pcapng timestamps beyond the year 292,277 are read, not overflowed") {
    // Found by fuzz_pcap: libpcap hands back seconds that overflow when made microseconds
    // (undefined behaviour, which the sanitizer tier stops on).
    auto ng = tmpname("ng-ts");
    spit(ng, to_pcapng(packets(), ~uint64_t{0} - 10));
    auto seen = read_all(ng);
    CHECK(seen.sizes.size() == packets().size());
    std::remove(ng.c_str());
}

TEST_CASE("scan counts what it skips") {
    auto path = write_capture("scan");
    edge::pcap::Reader r(path);
    int seen = 0;
    auto st = edge::pcap::scan(r, [&](const edge::net::Packet&, const edge::pcap::Frame&) { seen++; });
    CHECK(seen == 3);
    CHECK(st.frames == 4);
    CHECK(st.non_ip == 1);
    CHECK(st.skipped_summary() == "skipped 1 non-IP of 4 frames");
    std::remove(path.c_str());
}

TEST_CASE("a capture cut anywhere: complete frames are returned, the cut is reported") {
    auto path = write_capture("cut");
    auto raw = slurp(path);
    auto cut = tmpname("cutx");
    size_t complete = 0, boundary = 24;
    for (size_t n = 25; n < raw.size(); n++) {
        spit(cut, std::vector<uint8_t>(raw.begin(), raw.begin() + static_cast<long>(n)));
        edge::pcap::Reader r(cut);
        edge::pcap::Frame f;
        size_t got = 0;
        while (r.next(f)) got++;
        // Frames that end at or before n are complete.
        while (boundary + 16 <= raw.size() && boundary + 16 + rd32(&raw[boundary + 8]) <= n) {
            boundary += 16 + rd32(&raw[boundary + 8]);
            complete++;
        }
        CAPTURE(n);
        CHECK(got == complete);
        CHECK(r.truncated() == (n != boundary));
        if (r.truncated()) CHECK(r.error().find("truncated dump file") != std::string::npos);
    }
    std::remove(cut.c_str());
    std::remove(path.c_str());
}

TEST_CASE("open errors are usage errors that say why") {
    auto p = tmpname("bad");
    spit(p, {});
    CHECK_THROWS_WITH_AS(edge::pcap::Reader{p}, doctest::Contains("the file is empty"), edge::UsageError);
    spit(p, std::vector<uint8_t>(100, 0x42));
    CHECK_THROWS_WITH_AS(edge::pcap::Reader{p}, doctest::Contains("not a pcap or pcapng capture"), edge::UsageError);
    spit(p, {0xd4, 0xc3, 0xb2, 0xa1, 2, 0});
    CHECK_THROWS_WITH_AS(edge::pcap::Reader{p}, doctest::Contains("truncated"), edge::UsageError);
    CHECK_THROWS_WITH_AS(edge::pcap::Reader{"/nonexistent.pcap"}, doctest::Contains("No such file"), edge::UsageError);
    CHECK_THROWS_WITH_AS(edge::pcap::Reader{"/tmp"}, doctest::Contains("is a directory"), edge::UsageError);
    std::remove(p.c_str());
}

TEST_CASE("an absurd record length is an error, not a huge read") {
    auto path = write_capture("huge");
    auto raw = slurp(path);
    wr32(&raw[24 + 8], 0x7fffffff);
    spit(path, raw);
    edge::pcap::Reader r(path);
    edge::pcap::Frame f;
    CHECK_FALSE(r.next(f));
    CHECK(r.truncated());
    CHECK(r.error().find("invalid packet capture length") != std::string::npos);
    std::remove(path.c_str());
}
