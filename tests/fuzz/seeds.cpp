// fuzz-seeds DIR: writes a seed corpus for each fuzz target from known-good inputs
// (built packets, a capture, QUIC handshakes, configs, JSON Lines), so fuzzing starts
// from deep inside each parser instead of from random bytes.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "bgp/message.hpp"
#include "net/build.hpp"
#include "pcap/writer.hpp"
#include "quic/synth.hpp"

namespace fs = std::filesystem;
using Buf = std::vector<uint8_t>;

namespace {
void put(const fs::path& dir, const std::string& name, const Buf& b) {
    fs::create_directories(dir);
    std::ofstream(dir / name, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}
void put(const fs::path& dir, const std::string& name, const std::string& s) { put(dir, name, Buf(s.begin(), s.end())); }
edge::net::IpAddr ip(const char* s) { return edge::net::IpAddr::parse(s).value(); }
}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    fs::path dir = argv[1];
    using edge::net::PacketBuilder;
    const edge::net::Mac a{2, 0, 0, 0, 0, 1}, b{2, 0, 0, 0, 0, 2};
    std::vector<Buf> frames{
        PacketBuilder().eth(a, b).ipv4(ip("10.0.0.1"), ip("10.0.0.2")).tcp(1, 443).payload("x").build(),
        PacketBuilder().eth(a, b).vlan(7).ipv4(ip("10.0.0.1"), ip("10.0.0.2")).ipv4_options({1, 1, 1, 0}).udp(5, 53).build(),
        PacketBuilder().eth(a, b).qinq(1, 2).ipv6(ip("2001:db8::1"), ip("2001:db8::2")).hop_by_hop().tcp(1, 2).build(),
        PacketBuilder().eth(a, b).ipv6(ip("2001:db8::1"), ip("2001:db8::2")).fragment(8, true, 3).proto(17).payload("yy").build(),
    };
    auto inner = PacketBuilder().ipv4(ip("10.0.0.2"), ip("10.0.0.1")).udp(53, 5).build();
    frames.push_back(PacketBuilder().eth(a, b).ipv4(ip("10.9.9.9"), ip("10.0.0.2")).icmp_error(3, 4, inner).build());
    for (size_t i = 0; i < frames.size(); i++) {
        Buf s{0};  // link type selector byte: Ethernet
        s.insert(s.end(), frames[i].begin(), frames[i].end());
        put(dir / "fuzz_packet", "frame" + std::to_string(i), s);
    }
    {
        auto p = (dir / "cap.pcap").string();
        fs::create_directories(dir);
        {
            edge::pcap::Writer w(p, 1);
            for (auto& f : frames) w.write(f, 1);
        }
        fs::create_directories(dir / "fuzz_pcap");
        fs::rename(p, dir / "fuzz_pcap" / "cap.pcap");
    }
    {
        // The same frames as pcapng (SHB, IDB with if_tsresol, EPBs, a simple packet block),
        // little-endian, built by hand: the readers' second format.
        Buf ng;
        auto u32 = [&](uint32_t v) {
            for (int i = 0; i < 4; i++) ng.push_back(static_cast<uint8_t>(v >> (8 * i)));
        };
        auto u16 = [&](uint16_t v) {
            ng.push_back(static_cast<uint8_t>(v));
            ng.push_back(static_cast<uint8_t>(v >> 8));
        };
        u32(0x0a0d0d0a), u32(28), u32(0x1a2b3c4d), u16(1), u16(0), u32(0xffffffff), u32(0xffffffff), u32(28);
        u32(1), u32(32), u16(1), u16(0), u32(65535), u16(9), u16(1), ng.push_back(9), ng.push_back(0), ng.push_back(0),
            ng.push_back(0), u16(0), u16(0), u32(32);  // if_tsresol = 9 (nanoseconds), opt_endofopt
        for (size_t i = 0; i < frames.size(); i++) {
            auto& f = frames[i];
            uint32_t pad = static_cast<uint32_t>((4 - f.size() % 4) % 4), len = 32 + static_cast<uint32_t>(f.size()) + pad;
            u32(6), u32(len), u32(0), u32(0), u32(static_cast<uint32_t>(100000000u * (i + 1))), u32(static_cast<uint32_t>(f.size())),
                u32(static_cast<uint32_t>(f.size()));
            ng.insert(ng.end(), f.begin(), f.end());
            ng.insert(ng.end(), pad, 0);
            u32(len);
        }
        auto& f = frames[0];
        uint32_t pad = static_cast<uint32_t>((4 - f.size() % 4) % 4), len = 16 + static_cast<uint32_t>(f.size()) + pad;
        u32(3), u32(len), u32(static_cast<uint32_t>(f.size()));
        ng.insert(ng.end(), f.begin(), f.end());
        ng.insert(ng.end(), pad, 0);
        u32(len);
        put(dir / "fuzz_pcap", "cap.pcapng", ng);
    }
    // QUIC: a client Initial carrying a ClientHello, a server Initial, Retry, VN.
    Buf dcid{0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08}, scid{1, 2, 3, 4};
    auto keys = edge::quic::derive_initial_keys(0x00000001, dcid).value;
    edge::quic::synth::ClientHelloSpec spec;
    Buf ch_payload;
    edge::quic::synth::crypto_frame(ch_payload, 0, edge::quic::synth::client_hello(spec));
    put(dir / "fuzz_quic", "client_initial",
        edge::quic::synth::long_packet(1, edge::quic::LongType::initial, dcid, scid, 0, ch_payload, keys.client, 1200));
    Buf sh_payload;
    edge::quic::synth::crypto_frame(sh_payload, 0, edge::quic::synth::server_hello({}));
    put(dir / "fuzz_quic", "server_initial",
        edge::quic::synth::long_packet(1, edge::quic::LongType::initial, scid, dcid, 0, sh_payload, keys.server));
    put(dir / "fuzz_quic", "retry", edge::quic::synth::retry(1, scid, dcid, Buf{9, 9, 9}, dcid));
    put(dir / "fuzz_quic", "vn", edge::quic::synth::version_negotiation(scid, dcid, {1, 0x6b3343cf}));
    put(dir / "fuzz_quic", "client_hello", edge::quic::synth::client_hello(spec));
    put(dir / "fuzz_text", "flow4", std::string("198.51.100.7:5555-203.0.113.10:443/tcp"));
    put(dir / "fuzz_text", "flow6", std::string("[2001:db8::1]:1-[2001:db8::2]:443/udp"));
    put(dir / "fuzz_text", "prefix", std::string("2001:db8::/32"));
    put(dir / "fuzz_text", "icmp", std::string("10.0.0.1-10.0.0.2/icmp"));
    put(dir / "fuzz_config", "a.toml",
        std::string("json = true\nsize = 65537\n[table]\nbackends = [\"a\", \"b\"]\n[[backend]]\naddr = \"10.0.0.1\"\nweight = 2\n"));
    // Characters beyond ASCII in each kind of string, in comments and in a key (toml++ 3.3
    // classifies them with a table that has a hole: common/CMakeLists.txt).
    put(dir / "fuzz_config", "utf8.toml",
        std::string("# \u00e9 \u00a1\nname = \"\u00e9 \u00fc\"\nlit = '\u00f1'\nml = \"\"\"\\\n  \u00f6\"\"\"\n"
                    "mll = '''\n\u00e7\n'''\n\"\u043a\" = 1\nk\u00e9y = 2\n"));
    put(dir / "fuzz_jsonl", "flows.jsonl",
        std::string("{\"type\":\"flow\",\"flow\":\"198.51.100.7:5555-203.0.113.10:443/tcp\"}\n"
                    "{\"type\":\"flow\",\"src\":\"10.0.0.1\",\"sport\":1,\"dst\":\"10.0.0.2\",\"dport\":80,\"proto\":\"tcp\"}\n"));
    // Numbers at the edges (negative zero once broke minify's round trip).
    put(dir / "fuzz_jsonl", "numbers.json",
        std::string("[-0.0,-0,0e0,1e308,-1e-400,18446744073709551616,-9223372036854775809,1.5E+3]"));
    put(dir / "fuzz_http", "request", std::string("GET /a HTTP/1.1\r\nHost: x\r\nCache-Control: max-age=60, stale-if-error=30\r\n\r\n"));
    put(dir / "fuzz_http", "response", std::string("HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nCache-Control: public, s-maxage=10\r\nTransfer-Encoding: chunked\r\n\r\n"));
    put(dir / "fuzz_http", "range", std::string("bytes=0-99,200-"));
    // BGP: a session's opening and an UPDATE per family; byte 0 selects the context.
    {
        using namespace edge::bgp;
        Open o;
        o.asn = 4200000001;
        o.router_id = 0x0a000001;
        o.multiprotocol = {ipv4_unicast, ipv6_unicast};
        o.route_refresh = true;
        Update u4;
        u4.attrs.origin = origin_igp;
        u4.attrs.as_path = AsPath{AsSegment{as_sequence, {65001, 4200000001}}, AsSegment{as_set, {1, 2}}};
        u4.attrs.next_hop = ip("192.0.2.1");
        u4.attrs.communities = {community_blackhole, community_no_export};
        u4.nlri = {Nlri{edge::net::Prefix::parse("198.51.100.0/24").value()}};
        Update u6;
        u6.attrs.origin = origin_igp;
        u6.attrs.as_path = AsPath{AsSegment{as_sequence, {65001}}};
        u6.mp_reach = MpReach{ipv6_unicast, {ip("2001:db8::1")}, {Nlri{edge::net::Prefix::parse("2001:db8:1::/48").value()}}, {}, {}, {}};
        Buf stream{1};  // 4-octet AS, no ADD-PATH
        for (auto& m : {encode_open(o), encode_keepalive(), encode_update(u4), encode_update(u6),
                        encode_update(Update::end_of_rib(ipv4_unicast)),
                        encode_notification(Notification{6, 2, {}})}) stream.insert(stream.end(), m.begin(), m.end());
        put(dir / "fuzz_bgp", "session", stream);
    }
    put(dir / "fuzz_bgp_commands", "text",
        std::string("announce route 203.0.113.0/24 next-hop self community 65000:100 large-community 65000:1:2\n"
                    "withdraw route 203.0.113.0/24\nannounce blackhole 198.51.100.7\n"
                    "announce flow destination 203.0.113.10/32 protocol tcp destination-port 80 rate-limit 0\n"));
    put(dir / "fuzz_bgp_commands", "json",
        std::string("{\"type\":\"mitigation\",\"action\":\"blackhole\",\"prefix\":\"198.51.100.7/32\"}\n"
                    "{\"announce\":\"203.0.113.0/24\",\"med\":10}\n"));
    // cache-proxy end to end: client bytes, then "\n@@@\n" and one origin response per
    // upstream connection (a miss then a hit, revalidation with 304, ranges, Vary, bodies
    // in both directions, pass-through and stored bodies above the memfd/splice sizes).
    {
        const std::string sep = "\n@@@\n";
        std::string k1(1500, 'a'), k3(3000, 'b');
        auto ok = [](const std::string& headers, const std::string& body) {
            return "HTTP/1.1 200 OK\r\n" + headers + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
        };
        std::string get = "GET /a HTTP/1.1\r\nHost: example.com\r\n\r\n";
        auto cp = [&](const std::string& name, const std::string& s) { put(dir / "fuzz_cache_proxy", name, s); };
        cp("miss-hit", get + get + sep + ok("Cache-Control: max-age=60\r\nETag: \"v1\"\r\n", "hello"));
        cp("memfd-body", get + "GET /a HTTP/1.1\r\nHost: example.com\r\nRange: bytes=10-99,-5\r\n\r\n" + sep +
                             ok("Cache-Control: public, max-age=60\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n", k1));
        cp("splice-pass", "GET /big HTTP/1.1\r\nHost: x\r\n\r\n" + sep + ok("Cache-Control: no-store\r\n", k3));
        cp("chunked", "GET /c HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\nAccept-Encoding: br\r\n\r\n" +
                          sep + "HTTP/1.1 200 OK\r\nCache-Control: max-age=30\r\nVary: Accept-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\n");
        cp("revalidate", get + "GET /a HTTP/1.1\r\nHost: example.com\r\nIf-None-Match: \"v1\"\r\n\r\n" + sep +
                             ok("Cache-Control: max-age=0, must-revalidate\r\nETag: \"v1\"\r\n", "hello") + sep +
                             "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nCache-Control: max-age=60\r\n\r\n");
        cp("swr", get + get + sep + ok("Cache-Control: max-age=0, stale-while-revalidate=60\r\nETag: \"v\"\r\n", "x") + sep +
                      ok("Cache-Control: max-age=60\r\n", "y"));
        cp("post", "POST /a HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhelloGET /a HTTP/1.1\r\nHost: example.com\r\n\r\n" + sep +
                       "HTTP/1.1 201 Created\r\nContent-Length: 2\r\nLocation: /a\r\n\r\nok" + sep + ok("Cache-Control: max-age=9\r\n", "z"));
        cp("chunked-upload", "PUT /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n4\r\nabcd\r\n0\r\n\r\n" +
                                 sep + "HTTP/1.1 204 No Content\r\n\r\n");
        cp("head-absolute", "HEAD http://Example.COM/h?q=1 HTTP/1.1\r\nHost: example.com\r\nCache-Control: no-cache\r\n\r\n" + sep +
                                ok("Cache-Control: s-maxage=5\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nAge: 3\r\n", "body"));
        cp("http10-close", "GET /old HTTP/1.0\r\nPragma: no-cache\r\n\r\n" + sep + "HTTP/1.0 200 OK\r\nExpires: Thu, 01 Dec 2099 16:00:00 GMT\r\n\r\nuntil close");
        cp("bad-origin", "GET /e HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.0.0.1\r\nConnection: keep-alive, x-hop\r\nx-hop: 1\r\n\r\n" + sep +
                             "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Length: 11\r\n\r\n0123456789");
        cp("stale-if-error", get + get + sep + ok("Cache-Control: max-age=0, stale-if-error=60\r\n", "old") + sep +
                                 "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
    }
    return 0;
}
