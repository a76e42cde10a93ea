// quic-probe-gen-pcap: synthetic QUIC captures for quic-probe's tests and benchmarks.
//   quic-probe-gen-pcap OUT [--scenario NAME]... [--count N] [--keylog FILE] [--seed S]
// Every connection is protected with the real packet protection of common/quic:
// Initials with the keys of their version, Handshake and 1-RTT packets with keys
// from made-up TLS secrets that --keylog writes in SSLKEYLOGFILE format.
// Scenarios (default: all but "greasebit", "rebind" and "many"): rfc, basic, split, retry, vn, v2, v2draft,
// v6, garbage, port8443, greasebit (a 1-RTT packet with the fixed bit greased to 0 and a
// protected first byte of 0x00, coalesced after a Handshake packet), rebind (8
// connections that each send one packet from a new port), many (--count connections,
// Initials only).
#include <cstdio>
#include <random>
#include <set>
#include <string>

#include <CLI/CLI.hpp>

#include "net/build.hpp"
#include "pcap/writer.hpp"
#include "quic/initial.hpp"
#include "quic/synth.hpp"
#include "quic/version.hpp"

using namespace edge;
using namespace edge::quic;
using synth::Buf;

namespace {

Buf unhex(std::string_view s) {
    Buf out;
    int hi = -1;
    for (char c : s) {
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0) continue;
        if (hi < 0) {
            hi = v;
        } else {
            out.push_back(static_cast<std::uint8_t>(hi << 4 | v));
            hi = -1;
        }
    }
    return out;
}

// RFC 9001 A.2 client Initial and A.3 server Initial, as printed in the RFC.
constexpr std::string_view kRfcClientInitial =
    "c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11d242b123dc9bd8bab936b47d92ec356c"
    "0bab7df5976d27cd449f63300099f3991c260ec4c60d17b31f8429157bb35a1282a643a8d2262cad67500cadb8e7378c"
    "8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace01e6005f80fcb7df621230c83711b39343fa028cea7f7fb5ff89"
    "eac2308249a02252155e2347b63d58c5457afd84d05dfffdb20392844ae812154682e9cf012f9021a6f0be17ddd0c208"
    "4dce25ff9b06cde535d0f920a2db1bf362c23e596d11a4f5a6cf3948838a3aec4e15daf8500a6ef69ec4e3feb6b1d98e"
    "610ac8b7ec3faf6ad760b7bad1db4ba3485e8a94dc250ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db"
    "059ae0648db2f64264ed5e39be2e20d82df566da8dd5998ccabdae053060ae6c7b4378e846d29f37ed7b4ea9ec5d82e7"
    "961b7f25a9323851f681d582363aa5f89937f5a67258bf63ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556"
    "be52afe3f565636ad1b17d508b73d8743eeb524be22b3dcbc2c7468d54119c7468449a13d8e3b95811a198f3491de3e7"
    "fe942b330407abf82a4ed7c1b311663ac69890f4157015853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00"
    "f064c99e3dd97911d39fe9c5d0b23a229a234cb36186c4819e8b9c5927726632291d6a418211cc2962e20fe47feb3edf"
    "330f2c603a9d48c0fcb5699dbfe5896425c5bac4aee82e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2c25e50fd"
    "14de71e6c418559302f939b0e1abd576f279c4b2e0feb85c1f28ff18f58891ffef132eef2fa09346aee33c28eb130ff2"
    "8f5b766953334113211996d20011a198e3fc433f9f2541010ae17c1bf202580f6047472fb36857fe843b19f5984009dd"
    "c324044e847a4f4a0ab34f719595de37252d6235365e9b84392b061085349d73203a4a13e96f5432ec0fd4a1ee65accd"
    "d5e3904df54c1da510b0ff20dcc0c77fcb2c0e0eb605cb0504db87632cf3d8b4dae6e705769d1de354270123cb11450e"
    "fc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d069fc33bd801b03adea2e1fbc5aa463d08ca19896d2bf59a07"
    "1b851e6c239052172f296bfb5e72404790a2181014f3b94a4e97d117b438130368cc39dbb2d198065ae3986547926cd2"
    "162f40a29f0c3c8745c0f50fba3852e566d44575c29d39a03f0cda721984b6f440591f355e12d439ff150aab7613499d"
    "bd49adabc8676eef023b15b65bfc5ca06948109f23f350db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e"
    "8f2e6ff5800175f113253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0be79e2fb8f5d5fbbe2e30ecadd220723"
    "c8c0aea8078cdfcb3868263ff8f0940054da48781893a7e49ad5aff4af300cd804a6b6279ab3ff3afb64491c85194aab"
    "760d58a606654f9f4400e8b38591356fbf6425aca26dc85244259ff2b19c41b9f96f3ca9ec1dde434da7d2d392b905dd"
    "f3d1f9af93d1af5950bd493f5aa731b4056df31bd267b6b90a079831aaf579be0a39013137aac6d404f518cfd4684064"
    "7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241e221af44860018ab0856972e194cd934";
constexpr std::string_view kRfcServerInitial =
    "cf000000010008f067a5502a4262b5004075c0d95a482cd0991cd25b0aac406a5816b6394100f37a1c69797554780bb3"
    "8cc5a99f5ede4cf73c3ec2493a1839b3dbcba3f6ea46c5b7684df3548e7ddeb9c3bf9c73cc3f3bded74b562bfb19fb84"
    "022f8ef4cdd93795d77d06edbb7aaf2f58891850abbdca3d20398c276456cbc42158407dd074ee";

struct Gen {
    std::mt19937_64 rng;
    edge::pcap::Writer& w;
    std::FILE* keylog;
    std::int64_t ts = 1700000000LL * 1000000;

    Buf random_bytes(std::size_t n) {
        Buf b(n);
        for (auto& x : b) x = static_cast<std::uint8_t>(rng());
        return b;
    }

    void udp(const net::Endpoint& src, const net::Endpoint& dst, Bytes payload, std::int64_t at) {
        net::PacketBuilder pb;
        pb.eth({2, 0, 0, 0, 0, 1}, {2, 0, 0, 0, 0, 2});
        if (src.addr.is_v4()) pb.ipv4(src.addr, dst.addr);
        else pb.ipv6(src.addr, dst.addr);
        pb.udp(src.port, dst.port).payload(payload);
        w.write(pb.build(), at);
    }

    static Buf cat(Buf a, const Buf& b) {
        a.insert(a.end(), b.begin(), b.end());
        return a;
    }

    void log_secret(const char* label, const std::array<std::uint8_t, 32>& random, const Buf& secret) {
        if (!keylog) return;
        std::fprintf(keylog, "%s ", label);
        for (auto x : random) std::fprintf(keylog, "%02x", x);
        std::fputc(' ', keylog);
        for (auto x : secret) std::fprintf(keylog, "%02x", x);
        std::fputc('\n', keylog);
    }

    struct Options {
        std::uint32_t version = kVersion1;         // the client's first version
        std::uint32_t server_version = 0;          // compatible negotiation to this version (0: same)
        std::string sni = "basic.example";
        std::vector<std::string> alpn{"h3", "h3-29"};
        std::size_t ch_padding = 0;                // > ~1000 splits the ClientHello over two Initials
        bool retry = false;
        std::uint32_t vn_from = 0;                 // first try this (unknown) version and get a VN
        bool full = true;                          // Handshake + 1-RTT after the Initials
        // The client's first 1-RTT packet coalesced after a Handshake packet, its fixed bit
        // greased to 0 and its protected first byte 0x00 (looks like padding).
        bool grease_zero_byte = false;
        // NAT rebinding: after the handshake the client sends one 1-RTT packet (to the
        // server's first CID) from this port instead.
        std::uint16_t rebind_port = 0;
    };

    // One QUIC connection from `client` to `server`, start to close.
    void connection(const net::Endpoint& client, const net::Endpoint& server, const Options& o) {
        std::int64_t t = ts;
        ts += 10000;
        Buf odcid = random_bytes(8 + rng() % 13), cscid = random_bytes(8), sscid = random_bytes(16);
        std::uint64_t cpn = 0, spn = 0;
        const std::uint32_t sv = o.server_version ? o.server_version : o.version;

        synth::ClientHelloSpec spec;
        auto rb = random_bytes(32);
        std::copy(rb.begin(), rb.end(), spec.random.begin());
        spec.sni = o.sni;
        spec.alpn = o.alpn;
        spec.initial_scid = cscid;
        spec.padding_bytes = o.ch_padding;
        const Buf ch = synth::client_hello(spec);

        if (o.vn_from) {
            // An Initial of a version the server does not speak (payload opaque to it), then VN.
            Buf p{0xc0};
            for (int s = 24; s >= 0; s -= 8) p.push_back(static_cast<std::uint8_t>(o.vn_from >> s));
            p.push_back(static_cast<std::uint8_t>(odcid.size()));
            p.insert(p.end(), odcid.begin(), odcid.end());
            p.push_back(static_cast<std::uint8_t>(cscid.size()));
            p.insert(p.end(), cscid.begin(), cscid.end());
            Buf rest = random_bytes(1200 - p.size());
            p.insert(p.end(), rest.begin(), rest.end());
            udp(client, server, p, t);
            udp(server, client, synth::version_negotiation(cscid, odcid, {0x3a4a5a6a, kVersion1, kVersion2}), t + 200);
            t += 400;
            odcid = random_bytes(8);  // a new attempt with a new DCID
        }

        Buf keys_dcid = odcid;
        auto ik = derive_initial_keys(o.version, keys_dcid);
        auto client_initials = [&](std::int64_t at, Bytes dcid, Bytes token) {
            // The ClientHello, split into pieces of at most 1100 bytes, one Initial per datagram.
            std::size_t off = 0;
            while (off < ch.size()) {
                std::size_t n = std::min<std::size_t>(1100, ch.size() - off);
                Buf f;
                synth::crypto_frame(f, off, Bytes(ch).subspan(off, n));
                udp(client, server, synth::long_packet(o.version, LongType::initial, dcid, cscid, cpn++, f, ik->client, 1200, token), at);
                off += n;
                at += 20;
            }
        };
        client_initials(t, odcid, {});
        t += 300;
        if (o.retry) {
            const Buf rscid = random_bytes(12), token = random_bytes(48);
            udp(server, client, synth::retry(o.version, cscid, rscid, token, odcid), t);
            keys_dcid = rscid;
            ik = derive_initial_keys(o.version, keys_dcid);
            t += 300;
            client_initials(t, rscid, token);
            t += 300;
        }
        // Server: Initial (ACK + ServerHello) + Handshake (EncryptedExtensions), coalesced.
        auto sk = derive_initial_keys(sv, keys_dcid);
        const auto srandom = random_bytes(32);
        std::array<std::uint8_t, 32> sr{};
        std::copy(srandom.begin(), srandom.end(), sr.begin());
        Buf sf;
        synth::ack_frame(sf, cpn - 1);
        synth::crypto_frame(sf, 0, synth::server_hello(sr));
        Buf sinit = synth::long_packet(sv, LongType::initial, cscid, sscid, spn++, sf, sk->server);
        if (!o.full) {
            udp(server, client, synth::long_packet(sv, LongType::initial, cscid, sscid, 0, sf, sk->server, 1200), t);
            return;
        }
        const Buf chs = random_bytes(32), shs = random_bytes(32), cap = random_bytes(32), sap = random_bytes(32);
        log_secret("CLIENT_HANDSHAKE_TRAFFIC_SECRET", spec.random, chs);
        log_secret("SERVER_HANDSHAKE_TRAFFIC_SECRET", spec.random, shs);
        log_secret("CLIENT_TRAFFIC_SECRET_0", spec.random, cap);
        log_secret("SERVER_TRAFFIC_SECRET_0", spec.random, sap);
        auto hk_c = derive_packet_keys(sv, Cipher::aes_128_gcm, chs), hk_s = derive_packet_keys(sv, Cipher::aes_128_gcm, shs);
        auto ak_c = derive_packet_keys(sv, Cipher::aes_128_gcm, cap), ak_s = derive_packet_keys(sv, Cipher::aes_128_gcm, sap);
        Buf hf;
        synth::crypto_frame(hf, 0, synth::encrypted_extensions(o.alpn.empty() ? "" : o.alpn.front(), odcid, sscid));
        Buf shand = synth::long_packet(sv, LongType::handshake, cscid, sscid, 0, hf, *hk_s);
        Buf sdg = cat(sinit, shand);
        if (sdg.size() < 1200) sdg = cat(synth::long_packet(sv, LongType::initial, cscid, sscid, 0, sf, sk->server, 1200 - shand.size()), shand);
        udp(server, client, sdg, t);
        t += 500;
        // Client: Initial ACK + Handshake (Finished stand-in), coalesced and padded.
        auto ck2 = derive_initial_keys(sv, keys_dcid);
        Buf ca;
        synth::ack_frame(ca, 0);
        Buf cfin;
        synth::crypto_frame(cfin, 0, Buf{20, 0, 0, 4, 1, 2, 3, 4});
        Buf chand = synth::long_packet(sv, LongType::handshake, sscid, cscid, 0, cfin, *hk_c);
        udp(client, server, cat(synth::long_packet(sv, LongType::initial, sscid, cscid, cpn++, ca, ck2->client, 1200 - chand.size()), chand), t);
        t += 50;
        Buf stream{0x0b, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o'};  // STREAM id 0, LEN
        if (o.grease_zero_byte) {
            Buf ack;
            synth::ack_frame(ack, 0);
            Buf dg = synth::long_packet(sv, LongType::handshake, sscid, cscid, 1, ack, *hk_c);
            Buf one;
            for (std::uint64_t pn = 2;; pn++)  // 1 in 32 packet numbers masks the first byte to 0
                if ((one = synth::short_packet(sscid, pn, stream, *ak_c, false))[0] == 0x00) break;
            udp(client, server, cat(dg, one), t);
        } else {
            udp(client, server, synth::short_packet(sscid, 0, stream, *ak_c), t);
        }
        t += 400;
        const Buf ncid = random_bytes(16);
        Buf s1;
        s1.push_back(0x1e);  // HANDSHAKE_DONE
        synth::new_connection_id(s1, 1, ncid);
        udp(server, client, synth::short_packet(cscid, 0, s1, *ak_s), t);
        t += 300;
        if (o.rebind_port) {
            Buf ping{0x01};
            synth::ack_frame(ping, 0);
            udp({client.addr, o.rebind_port}, server, synth::short_packet(sscid, 2, ping, *ak_c), t);
            t += 100;
        }
        Buf c2;
        synth::ack_frame(c2, 0);
        synth::connection_close(c2, 0x100, "bye", true);
        udp(client, server, synth::short_packet(ncid, 1, c2, *ak_c), t);  // to the new CID
    }
};

}  // namespace

int main(int argc, char** argv) {
    CLI::App app("quic-probe-gen-pcap: synthetic QUIC captures for tests and benchmarks");
    std::string out, keylog_path;
    std::vector<std::string> scenarios;
    std::uint64_t count = 100, seed = 1;
    app.add_option("out", out, "Output capture ('-' for stdout)")->required();
    app.add_option("--scenario", scenarios, "rfc basic split retry vn v2 v2draft v6 garbage port8443 greasebit rebind many (default: all but greasebit, rebind, many)");
    app.add_option("--count", count, "Connections for the 'many' scenario");
    app.add_option("--keylog", keylog_path, "Write the TLS secrets here (SSLKEYLOGFILE format)");
    app.add_option("--seed", seed, "PRNG seed");
    CLI11_PARSE(app, argc, argv);
    if (scenarios.empty()) scenarios = {"rfc", "basic", "split", "retry", "vn", "v2", "v2draft", "v6", "garbage", "port8443"};

    edge::pcap::Writer w(out, 1 /* DLT_EN10MB */);
    std::FILE* kl = keylog_path.empty() ? nullptr : std::fopen(keylog_path.c_str(), "w");
    Gen g{std::mt19937_64(seed), w, kl};
    auto ep = [](const char* a, std::uint16_t port) { return net::Endpoint{net::IpAddr::parse(a).value(), port}; };
    const auto vip = ep("203.0.113.10", 443);
    for (const auto& s : scenarios) {
        if (s == "rfc") {
            g.udp(ep("192.0.2.2", 40002), vip, unhex(kRfcClientInitial), g.ts);
            g.udp(vip, ep("192.0.2.2", 40002), unhex(kRfcServerInitial), g.ts + 250);
            g.ts += 10000;
        } else if (s == "basic") {
            g.connection(ep("192.0.2.1", 40001), vip, {});
        } else if (s == "split") {
            Gen::Options o;
            o.sni = "split.example";
            o.ch_padding = 1500;
            g.connection(ep("192.0.2.3", 40003), vip, o);
        } else if (s == "retry") {
            Gen::Options o;
            o.sni = "retry.example";
            o.retry = true;
            g.connection(ep("192.0.2.4", 40004), vip, o);
        } else if (s == "vn") {
            Gen::Options o;
            o.sni = "vn.example";
            o.vn_from = 0x1a2a3a4a;
            g.connection(ep("192.0.2.5", 40005), vip, o);
        } else if (s == "v2") {
            Gen::Options o;
            o.sni = "v2.example";
            o.version = kVersion2;
            g.connection(ep("192.0.2.6", 40006), vip, o);
        } else if (s == "v2draft") {
            Gen::Options o;
            o.sni = "v2draft.example";
            o.server_version = kVersion2Draft;
            g.connection(ep("192.0.2.7", 40007), vip, o);
        } else if (s == "v6") {
            Gen::Options o;
            o.sni = "v6.example";
            g.connection(ep("2001:db8::1", 40009), ep("2001:db8::10", 443), o);
        } else if (s == "port8443") {
            Gen::Options o;
            o.sni = "port8443.example";
            g.connection(ep("192.0.2.10", 40010), ep("203.0.113.10", 8443), o);
        } else if (s == "greasebit") {
            Gen::Options o;
            o.sni = "greasebit.example";
            o.grease_zero_byte = true;
            g.connection(ep("192.0.2.11", 40011), vip, o);
        } else if (s == "rebind") {
            for (std::uint16_t i = 0; i < 8; i++) {
                Gen::Options o;
                o.sni = "rebind" + std::to_string(i) + ".example";
                o.rebind_port = static_cast<std::uint16_t>(41000 + i);
                g.connection(ep("192.0.2.12", static_cast<std::uint16_t>(40100 + i)), vip, o);
            }
        } else if (s == "garbage") {
            const std::string dns = "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00";
            g.udp(ep("192.0.2.8", 5353), ep("203.0.113.53", 53), Buf(dns.begin(), dns.end()), g.ts);
            g.udp(ep("192.0.2.8", 40020), vip, Buf{0x00, 0x01, 0x02, 0x03}, g.ts + 10);           // no fixed bit
            g.udp(ep("192.0.2.8", 40021), vip, Buf{0xc0, 0x00, 0x00, 0x00, 0x01, 0x08, 0x01}, g.ts + 20);  // cut long header
            g.udp(ep("192.0.2.8", 40022), vip, Buf{}, g.ts + 30);                                    // empty
            // A client Initial with one flipped ciphertext byte: QUIC, but it does not decrypt.
            Buf bad = unhex(kRfcClientInitial);
            bad[600] ^= 0x01;
            g.udp(ep("192.0.2.8", 40023), vip, bad, g.ts + 40);
            g.ts += 10000;
        } else if (s == "many") {
            std::set<std::uint32_t> used;
            for (std::uint64_t i = 0; i < count; i++) {
                std::uint32_t a;
                do a = static_cast<std::uint32_t>(0x0a000000u | (g.rng() & 0x00ffffffu));
                while (!used.insert(a).second);
                Gen::Options o;
                o.sni = "host" + std::to_string(i) + ".example";
                o.full = false;
                g.connection({net::IpAddr::v4(a), static_cast<std::uint16_t>(1024 + g.rng() % 60000)}, vip, o);
            }
        } else {
            std::fprintf(stderr, "quic-probe-gen-pcap: unknown scenario '%s'\n", s.c_str());
            return 2;
        }
    }
    w.flush();
    if (kl) std::fclose(kl);
    return 0;
}
