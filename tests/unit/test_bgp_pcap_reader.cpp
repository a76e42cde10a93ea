// pcap::FileReader, the libpcap-free capture reader `bgp-announce decode --pcap` uses:
// pcapng blocks and options the CLI tests' captures do not have (simple packet blocks,
// binary and decimal if_tsresol, if_tsoffset, sections with another byte order), and the
// errors it must stop at after returning every frame before them.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cli/error.hpp"
#include "pcap/file_reader.hpp"

using edge::pcap::FileReader;
using edge::pcap::Frame;

namespace {
struct Bytes {
    std::vector<uint8_t> b;
    bool be = false;
    Bytes& u8(uint8_t v) {
        b.push_back(v);
        return *this;
    }
    Bytes& u16(uint16_t v) {
        if (be) u8(uint8_t(v >> 8)), u8(uint8_t(v));
        else u8(uint8_t(v)), u8(uint8_t(v >> 8));
        return *this;
    }
    Bytes& u32(uint32_t v) {
        if (be) u16(uint16_t(v >> 16)), u16(uint16_t(v));
        else u16(uint16_t(v)), u16(uint16_t(v >> 16));
        return *this;
    }
    Bytes& u64(uint64_t v) {
        if (be) u32(uint32_t(v >> 32)), u32(uint32_t(v));
        else u32(uint32_t(v)), u32(uint32_t(v >> 32));
        return *this;
    }
    Bytes& raw(const std::vector<uint8_t>& v) {
        b.insert(b.end(), v.begin(), v.end());
        return *this;
    }
    Bytes& pad() {
        while (b.size() % 4) b.push_back(0);
        return *this;
    }
};
// A block: type, length, body (padded), length.
std::vector<uint8_t> block(uint32_t type, Bytes body, bool be = false) {
    body.pad();
    Bytes o;
    o.be = be;
    o.u32(type).u32(uint32_t(body.b.size() + 12)).raw(body.b).u32(uint32_t(body.b.size() + 12));
    return o.b;
}
std::vector<uint8_t> shb(bool be = false) {
    Bytes b;
    b.be = be;
    b.u32(0x1A2B3C4D).u16(1).u16(0).u64(~uint64_t{0});
    return block(0x0A0D0D0A, b, be);
}
// An IDB for raw IP (LINKTYPE 101) with optional if_tsresol / if_tsoffset.
std::vector<uint8_t> idb(int tsresol = -1, int64_t tsoffset = 0, bool be = false, uint16_t linktype = 101) {
    Bytes b;
    b.be = be;
    b.u16(linktype).u16(0).u32(0);
    if (tsresol >= 0) b.u16(9).u16(1).u8(uint8_t(tsresol)).pad();
    if (tsoffset) b.u16(14).u16(8).u64(uint64_t(tsoffset));
    if (tsresol >= 0 || tsoffset) b.u16(0).u16(0);
    return block(1, b, be);
}
std::vector<uint8_t> epb(uint32_t iface, uint64_t ts, std::vector<uint8_t> data, bool be = false) {
    Bytes b;
    b.be = be;
    b.u32(iface).u32(uint32_t(ts >> 32)).u32(uint32_t(ts)).u32(uint32_t(data.size())).u32(uint32_t(data.size())).raw(data);
    return block(6, b, be);
}
std::vector<uint8_t> spb(std::vector<uint8_t> data) {
    Bytes b;
    b.u32(uint32_t(data.size())).raw(data);
    return block(3, b);
}

struct TempFile {
    std::string path;
    explicit TempFile(const std::vector<std::vector<uint8_t>>& parts) {
        char tmpl[] = "/tmp/bgpa-reader-XXXXXX";
        int fd = mkstemp(tmpl);
        REQUIRE(fd >= 0);
        path = tmpl;
        for (auto& p : parts) REQUIRE(write(fd, p.data(), p.size()) == ssize_t(p.size()));
        close(fd);
    }
    ~TempFile() { unlink(path.c_str()); }
};

std::vector<Frame> all(FileReader& r) {
    std::vector<Frame> v;
    Frame f;
    while (r.next(f)) v.push_back(f);
    return v;
}
}  // namespace

TEST_CASE("pcapng: timestamp resolutions, offsets, simple packets, sections with another byte order") {
    const std::vector<uint8_t> p1{1, 2, 3}, p2{4, 5, 6, 7, 8}, p3{9};
    TempFile t({shb(), idb(), idb(9), idb(0x80 | 10, 100), epb(0, 1700000000123456ull, p1),
                epb(1, 1700000000123456789ull, p2), block(5, Bytes{}.u32(0)),  // statistics: skipped
                epb(2, (uint64_t{5} << 10) | 512, p3),                         // 2^-10 s units, +100 s
                spb(p1), shb(true), idb(6, 0, true), epb(0, 42, p2, true)});
    FileReader r(t.path);
    CHECK(r.pcapng());
    CHECK(r.dlt() == 101);
    REQUIRE(r.link());
    auto v = all(r);
    CHECK_FALSE(r.truncated());
    REQUIRE(v.size() == 5);
    CHECK(v[0].ts_us == 1700000000123456);
    CHECK(std::vector<uint8_t>(v[0].data.begin(), v[0].data.end()) == p1);
    CHECK(v[1].ts_us == 1700000000123456);  // nanoseconds, truncated to microseconds
    CHECK(v[1].data.size() == p2.size());
    CHECK(v[2].ts_us == 105500000);  // 5.5 s + if_tsoffset 100 s
    CHECK(v[3].ts_us == 0);          // simple packet block: no time
    CHECK(v[3].wire_len == 3);
    CHECK(v[4].ts_us == 42);  // the big-endian section
    CHECK(std::vector<uint8_t>(v[4].data.begin(), v[4].data.end()) == p2);
}

TEST_CASE("pcapng: errors end the frames with a reason, after the good ones") {
    const std::vector<uint8_t> p{1, 2, 3, 4};
    SUBCASE("a packet on an interface never described") {
        TempFile t({shb(), idb(), epb(0, 1, p), epb(3, 2, p)});
        FileReader r(t.path);
        CHECK(all(r).size() == 1);
        CHECK(r.error().find("no Interface Description Block") != std::string::npos);
    }
    SUBCASE("a second interface of another link type") {
        TempFile t({shb(), idb(), epb(0, 1, p), idb(-1, 0, false, 1), epb(0, 2, p)});
        FileReader r(t.path);
        CHECK(all(r).size() == 1);
        CHECK(r.error().find("different from the type of the first interface") != std::string::npos);
    }
    SUBCASE("the capture length beyond the block") {
        auto bad = epb(0, 2, p);
        bad[20] = 200;  // caplen (little-endian, low byte)
        TempFile t({shb(), idb(), epb(0, 1, p), bad});
        FileReader r(t.path);
        CHECK(all(r).size() == 1);
        CHECK(r.truncated());
    }
    SUBCASE("cut inside a block") {
        auto e = epb(0, 2, p);
        e.resize(e.size() - 3);
        TempFile t({shb(), idb(), epb(0, 1, p), e});
        FileReader r(t.path);
        CHECK(all(r).size() == 1);
        CHECK(r.error().find("truncated pcapng dump file") != std::string::npos);
    }
    SUBCASE("no interface description before the packets: refused at open") {
        TempFile t({shb(), epb(0, 1, p)});
        CHECK_THROWS_AS(FileReader(t.path), edge::UsageError);
    }
    SUBCASE("not a capture at all") {
        TempFile t({{'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '\n'}});
        CHECK_THROWS_AS(FileReader(t.path), edge::UsageError);
    }
}

TEST_CASE("classic pcap: both byte orders and nanoseconds; a record cut short") {
    for (bool be : {false, true})
        for (bool ns : {false, true}) {
            Bytes b;
            b.be = be;
            b.u32(ns ? 0xa1b23c4d : 0xa1b2c3d4).u16(2).u16(4).u32(0).u32(0).u32(65535).u32(101);
            b.u32(1700000000).u32(ns ? 123456789 : 123456).u32(2).u32(60).u8(0x45).u8(0);
            b.u32(1700000001).u32(0).u32(10).u32(10).u8(1);  // says 10 bytes, has 1
            TempFile t({b.b});
            FileReader r(t.path);
            CHECK_FALSE(r.pcapng());
            CHECK(r.dlt() == 101);
            auto v = all(r);
            REQUIRE(v.size() == 1);
            CHECK(v[0].ts_us == 1700000000123456);
            CHECK(v[0].wire_len == 60);
            CHECK(r.error() == "truncated dump file; tried to read 10 captured bytes, only got 1");
        }
}

TEST_CASE("large mapped files (paged in ahead by a helper thread): every frame intact, early destruction") {
    // 12 MiB (the helper pages in all of it) and 56 MiB (it waits 32 MiB ahead of the
    // reader, which gives pages back behind itself): each frame's bytes and time as written.
    for (size_t total : {size_t(12) << 20, size_t(56) << 20}) {
        Bytes b;
        b.u32(0xa1b2c3d4).u16(2).u16(4).u32(0).u32(0).u32(65535).u32(101);
        b.b.reserve(total + 4096);
        uint32_t n = 0;
        while (b.b.size() < total) {
            uint32_t len = 200 + n % 1200;
            b.u32(1700000000 + n / 1000000).u32(n % 1000000).u32(len).u32(len);
            for (uint32_t k = 0; k < len; ++k) b.b.push_back(uint8_t(n * 31 + k));
            ++n;
        }
        TempFile t({b.b});
        {
            FileReader r(t.path);
            Frame f;
            uint32_t i = 0, bad = 0;
            while (r.next(f)) {
                uint32_t len = 200 + i % 1200;
                bool ok = f.data.size() == len && f.ts_us == int64_t(1700000000 + i / 1000000) * 1000000 + i % 1000000;
                for (uint32_t k = 0; ok && k < len; k += 97) ok = f.data[k] == uint8_t(i * 31 + k);
                bad += !ok;
                ++i;
            }
            CHECK(i == n);
            CHECK(bad == 0);
            CHECK_FALSE(r.truncated());
        }
        {  // destroyed after a few frames, while the helper is still at work
            FileReader r(t.path);
            Frame f;
            for (int k = 0; k < 100; ++k) REQUIRE(r.next(f));
        }
    }
}
