// Tests for the QUIC connection tracker (common/quic/conntrack) and the key log
// reader: grouping datagrams into connections by addresses and connection IDs,
// Retry, Version Negotiation, compatible version negotiation, migration, split
// and coalesced packets, decryption with a key log, and garbage of every kind.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "quic/conntrack.hpp"
#include "quic/keylog.hpp"
#include "quic/synth.hpp"
#include "quic/version.hpp"

using namespace edge;
using namespace edge::quic;
using synth::Buf;

namespace {

net::Endpoint ep(const char* addr, std::uint16_t port) { return {net::IpAddr::parse(addr).value(), port}; }

Buf bytes(std::initializer_list<int> v) {
    Buf b;
    for (int x : v) b.push_back(static_cast<std::uint8_t>(x));
    return b;
}

std::string hexs(const Buf& b) {
    std::string s;
    for (auto x : b) s += "0123456789abcdef"[x >> 4], s += "0123456789abcdef"[x & 15];
    return s;
}

Buf cat(Buf a, const Buf& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// A small scripted connection: the client's ClientHello in Initials, the server's
// Initial (+ coalesced Handshake), the client's Handshake, then 1-RTT.
struct Script {
    std::uint32_t version = kVersion1;
    Buf odcid = bytes({1, 2, 3, 4, 5, 6, 7, 8});
    Buf cscid = bytes({0xc1, 0xc2, 0xc3, 0xc4});
    Buf sscid = bytes({0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59});
    std::string sni = "test.example";
    std::array<std::uint8_t, 32> random{};
    Buf chs = Buf(32, 0x11), shs = Buf(32, 0x22), cap = Buf(32, 0x33), sap = Buf(32, 0x44);

    Buf client_hello(std::size_t padding = 0) const {
        synth::ClientHelloSpec s;
        s.random = random;
        s.sni = sni;
        s.initial_scid = cscid;
        s.padding_bytes = padding;
        return synth::client_hello(s);
    }
    Buf client_initial(std::uint64_t pn, std::uint64_t off, Bytes data, Bytes dcid, Bytes keys_dcid,
                       Bytes token = {}) const {
        Buf f;
        synth::crypto_frame(f, off, data);
        auto k = derive_initial_keys(version, keys_dcid);
        return synth::long_packet(version, LongType::initial, dcid, cscid, pn, f, k->client, 1200, token);
    }
    Buf server_initial(Bytes keys_dcid, std::uint32_t v = 0) const {
        Buf f;
        synth::ack_frame(f, 0);
        std::array<std::uint8_t, 32> sr{};
        sr[0] = 9;
        synth::crypto_frame(f, 0, synth::server_hello(sr));
        auto k = derive_initial_keys(v ? v : version, keys_dcid);
        return synth::long_packet(v ? v : version, LongType::initial, cscid, sscid, 0, f, k->server);
    }
    Buf server_handshake(std::uint32_t v = 0) const {
        Buf f;
        synth::crypto_frame(f, 0, synth::encrypted_extensions("h3", odcid, sscid));
        auto k = derive_packet_keys(v ? v : version, Cipher::aes_128_gcm, shs);
        return synth::long_packet(v ? v : version, LongType::handshake, cscid, sscid, 0, f, *k);
    }
    Buf client_handshake(std::uint32_t v = 0) const {
        Buf f;
        synth::crypto_frame(f, 0, bytes({20, 0, 0, 1, 0}));
        auto k = derive_packet_keys(v ? v : version, Cipher::aes_128_gcm, chs);
        return synth::long_packet(v ? v : version, LongType::handshake, sscid, cscid, 0, f, *k);
    }
    Buf client_1rtt(Bytes dcid, std::uint64_t pn, Buf frames) const {
        auto k = derive_packet_keys(version, Cipher::aes_128_gcm, cap);
        return synth::short_packet(dcid, pn, frames, *k);
    }
    Buf server_1rtt(std::uint64_t pn, Buf frames) const {
        auto k = derive_packet_keys(version, Cipher::aes_128_gcm, sap);
        return synth::short_packet(cscid, pn, frames, *k);
    }
    std::string keylog() const {
        auto line = [&](const char* label, const Buf& s) {
            return std::string(label) + " " + hexs(Buf(random.begin(), random.end())) + " " + hexs(s) + "\n";
        };
        return "# a comment\n" + line("CLIENT_HANDSHAKE_TRAFFIC_SECRET", chs) + line("SERVER_HANDSHAKE_TRAFFIC_SECRET", shs) +
               line("CLIENT_TRAFFIC_SECRET_0", cap) + line("SERVER_TRAFFIC_SECRET_0", sap);
    }
};

const net::Endpoint kClient = ep("192.0.2.1", 50000), kServer = ep("203.0.113.10", 443);

// Feeds a whole handshake; returns the tracker's only connection.
void handshake(ConnectionTracker& t, const Script& s, const net::Endpoint& client = kClient,
               const net::Endpoint& server = kServer, std::int64_t t0 = 1000) {
    const Buf ch = s.client_hello();
    REQUIRE(t.feed(t0, client, server, s.client_initial(0, 0, ch, s.odcid, s.odcid)) == FeedResult::quic);
    REQUIRE(t.feed(t0 + 100, server, client, cat(s.server_initial(s.odcid), s.server_handshake())) == FeedResult::quic);
    REQUIRE(t.feed(t0 + 200, client, server, s.client_handshake()) == FeedResult::quic);
    REQUIRE(t.feed(t0 + 210, client, server, s.client_1rtt(s.sscid, 0, bytes({0x01, 0, 0, 0}))) == FeedResult::quic);
}

}  // namespace

TEST_CASE("one handshake: roles, CIDs the server picks, timing, ClientHello, ServerHello") {
    ConnectionTracker t;
    Script s;
    handshake(t, s);
    REQUIRE(t.connections().size() == 1);
    const Connection& c = *t.connections()[0];
    CHECK(c.roles_known);
    CHECK(c.handshake_seen);
    CHECK(c.client == kClient);
    CHECK(c.server == kServer);
    CHECK(c.original_dcid == s.odcid);
    CHECK(c.client_cids == std::vector<Cid>{s.cscid});
    CHECK(c.server_cids == std::vector<Cid>{s.sscid});
    CHECK(c.dcids == std::vector<Cid>{s.odcid, s.cscid, s.sscid});
    CHECK(c.versions == std::vector<std::uint32_t>{kVersion1});
    REQUIRE(c.has_client_hello);
    CHECK(c.sni == "test.example");
    CHECK(c.alpn == std::vector<std::string>{"h3"});
    REQUIRE(c.detail().has_server_hello);
    CHECK(c.detail().server_hello.cipher_suite == 0x1301);
    CHECK(c.from_client.datagrams == 3);
    CHECK(c.from_client.packets == 3);
    CHECK(c.from_server.datagrams == 1);
    CHECK(c.from_server.packets == 2);  // Initial + Handshake coalesced
    CHECK(c.t_server_initial - c.t_client_initial == 100);
    CHECK(c.t_client_handshake - c.t_client_initial == 200);
    CHECK(c.t_client_1rtt - c.t_client_initial == 210);
    CHECK(c.decrypted[0] == 2);
    CHECK(c.no_keys == 3);  // Handshake x2 and 1-RTT without a key log
    CHECK(c.address_validated);
    CHECK(c.client_bytes_unvalidated == 1200);
    CHECK(t.stats().coalesced == 1);
}

TEST_CASE("connections apart: by tuple and CIDs; same ports reused after a handshake is a new connection") {
    ConnectionTracker t;
    Script a, b;
    b.odcid = bytes({9, 9, 9, 9, 9, 9, 9, 9});
    b.cscid = bytes({0xd1, 0xd2, 0xd3, 0xd4});
    b.sscid = bytes({0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68});
    b.sni = "other.example";
    handshake(t, a);
    handshake(t, b, ep("192.0.2.2", 50001));
    REQUIRE(t.connections().size() == 2);
    CHECK(t.connections()[1]->sni == "other.example");
    // The same client ports again with a fresh DCID: a new connection.
    Script c = b;
    c.odcid = bytes({7, 7, 7, 7, 7, 7, 7, 7});
    handshake(t, c, ep("192.0.2.2", 50001), kServer, 5000);
    REQUIRE(t.connections().size() == 3);
    CHECK(t.connections()[2]->original_dcid == c.odcid);
    CHECK(t.connections()[1]->from_client.datagrams == 3);
}

TEST_CASE("migration: a known server CID from a new client address stays in its connection") {
    ConnectionTracker t;
    Script s;
    handshake(t, s);
    const auto moved = ep("198.51.100.77", 60000);
    CHECK(t.feed(3000, moved, kServer, s.client_1rtt(s.sscid, 1, bytes({0x01, 0, 0, 0}))) == FeedResult::quic);
    REQUIRE(t.connections().size() == 1);
    const Connection& c = *t.connections()[0];
    CHECK(c.path_changes == 1);
    CHECK(c.from_client.datagrams == 4);
    // The server's answer on the new path is found by address.
    CHECK(t.feed(3100, kServer, moved, s.server_1rtt(1, bytes({0x01, 0, 0, 0}))) == FeedResult::quic);
    CHECK(t.connections().size() == 1);
    CHECK(c.from_server.datagrams == 2);
}

TEST_CASE("Retry: tag checked, token counted, keys switch to the Retry's SCID") {
    ConnectionTracker t;
    Script s;
    const Buf rscid = bytes({0xaa, 0xbb, 0xcc, 0xdd, 0xee});
    const Buf token(40, 0x77);
    const Buf ch = s.client_hello();
    t.feed(1000, kClient, kServer, s.client_initial(0, 0, ch, s.odcid, s.odcid));
    t.feed(1100, kServer, kClient, synth::retry(kVersion1, s.cscid, rscid, token, s.odcid));
    t.feed(1200, kClient, kServer, s.client_initial(1, 0, ch, rscid, rscid, token));
    t.feed(1300, kServer, kClient, s.server_initial(rscid));
    REQUIRE(t.connections().size() == 1);
    const Connection& c = *t.connections()[0];
    CHECK(c.retry);
    CHECK(c.detail().retry_tag_ok == 1);
    CHECK(c.detail().retry_token_bytes == 40);
    CHECK(c.detail().t_retry - c.t_client_initial == 100);
    CHECK(c.decrypted[0] == 3);
    CHECK(c.decrypt_failed == 0);
    CHECK(c.detail().has_server_hello);
    CHECK(c.server_cids == std::vector<Cid>{rscid, s.sscid});

    // A Retry whose tag is for another ODCID is reported as bad.
    ConnectionTracker t2;
    t2.feed(1000, kClient, kServer, s.client_initial(0, 0, ch, s.odcid, s.odcid));
    t2.feed(1100, kServer, kClient, synth::retry(kVersion1, s.cscid, rscid, token, bytes({1})));
    CHECK(t2.connections()[0]->detail().retry_tag_ok == 0);
}

TEST_CASE("Version Negotiation continues the same connection; compatible negotiation to v2-draft") {
    ConnectionTracker t;
    Script s;
    // The client tries version 0x1a2a3a4a (padded to 1200, as clients do).
    Buf p = bytes({0xc0, 0x1a, 0x2a, 0x3a, 0x4a, 8});
    p.insert(p.end(), s.odcid.begin(), s.odcid.end());
    p.push_back(static_cast<std::uint8_t>(s.cscid.size()));
    p.insert(p.end(), s.cscid.begin(), s.cscid.end());
    p.resize(1200, 0x5a);
    CHECK(t.feed(1000, kClient, kServer, p) == FeedResult::quic);
    CHECK(t.feed(1100, kServer, kClient, synth::version_negotiation(s.cscid, s.odcid, {kVersion1, kVersion2})) ==
          FeedResult::quic);
    Script s2 = s;
    s2.odcid = bytes({4, 4, 4, 4, 4, 4, 4, 4});
    t.feed(1200, kClient, kServer, s2.client_initial(0, 0, s2.client_hello(), s2.odcid, s2.odcid));
    // The server answers in v2-draft (RFC 9368 compatible negotiation): Initial keys from the same DCID.
    t.feed(1300, kServer, kClient, s2.server_initial(s2.odcid, kVersion2Draft));
    REQUIRE(t.connections().size() == 1);
    const Connection& c = *t.connections()[0];
    CHECK(c.version_negotiation);
    CHECK(c.detail().vn_versions == std::vector<std::uint32_t>{kVersion1, kVersion2});
    CHECK(c.versions == std::vector<std::uint32_t>{0x1a2a3a4a, kVersion1, kVersion2Draft});
    CHECK(c.detail().t_vn - c.first_us == 100);
    CHECK(c.has_client_hello);
    CHECK(c.detail().has_server_hello);  // decrypted with v2-draft keys
    CHECK(c.decrypt_failed == 0);
}

TEST_CASE("a ClientHello split over two Initials, delivered out of order") {
    ConnectionTracker t;
    Script s;
    const Buf ch = s.client_hello(1500);
    REQUIRE(ch.size() > 1500);
    t.feed(1000, kClient, kServer, s.client_initial(1, 1000, Bytes(ch).subspan(1000), s.odcid, s.odcid));
    CHECK_FALSE(t.connections()[0]->has_client_hello);
    t.feed(1010, kClient, kServer, s.client_initial(0, 0, Bytes(ch).first(1000), s.odcid, s.odcid));
    REQUIRE(t.connections().size() == 1);
    CHECK(t.connections()[0]->has_client_hello);
    CHECK(t.connections()[0]->sni == "test.example");
}

TEST_CASE("key log: Handshake and 1-RTT decrypted, ALPN chosen, HANDSHAKE_DONE, NEW_CONNECTION_ID, close") {
    Script s;
    s.random[0] = 0x42;
    KeyLog kl;
    CHECK(kl.parse(s.keylog() + "CLIENT_RANDOM zz 00\nCLIENT_HANDSHAKE_TRAFFIC_SECRET 00 11\n") == 2);
    CHECK(kl.first_bad_line() == 6);
    CHECK(kl.size() == 1);
    TrackerOptions o;
    o.keylog = &kl;
    ConnectionTracker t(o);
    handshake(t, s);
    const Buf ncid = bytes({0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8});
    Buf f{0x1e};
    synth::new_connection_id(f, 1, ncid);
    t.feed(2000, kServer, kClient, s.server_1rtt(0, f));
    Buf close;
    synth::connection_close(close, 0x100, "done", true);
    std::vector<PacketRecord> recs;
    t.feed(2100, ep("198.51.100.1", 1234), kServer, s.client_1rtt(ncid, 1, close), 0, &recs);  // new CID, new path
    REQUIRE(t.connections().size() == 1);
    const Connection& c = *t.connections()[0];
    CHECK(c.detail().keylog_found);
    CHECK(c.decrypted[1] == 2);
    CHECK(c.decrypted[2] == 3);
    CHECK(c.no_keys == 0);
    CHECK(c.detail().alpn_selected == "h3");
    CHECK(c.detail().has_encrypted_extensions);
    CHECK(c.t_handshake_done - c.t_client_initial == 1000);
    CHECK(c.server_cids == std::vector<Cid>{s.sscid, ncid});
    CHECK(c.detail().close.seen);
    CHECK(c.detail().close.by_client);
    CHECK(c.detail().close.reason == "done");
    CHECK(c.path_changes == 1);
    REQUIRE(recs.size() == 1);
    CHECK(recs[0].decrypted);
    CHECK(recs[0].packet_number == 1);
    CHECK(recs[0].dcid == ncid);
}

TEST_CASE("key update: the next 1-RTT key generation is tried") {
    Script s;
    KeyLog kl;
    kl.parse(s.keylog());
    TrackerOptions o;
    o.keylog = &kl;
    ConnectionTracker t(o);
    handshake(t, s);
    auto next = next_traffic_secret(kVersion1, Cipher::aes_128_gcm, s.cap);
    REQUIRE(next);
    auto k0 = derive_packet_keys(kVersion1, Cipher::aes_128_gcm, s.cap);
    auto k1 = derive_packet_keys(kVersion1, Cipher::aes_128_gcm, *next);
    k1->hp = k0->hp;
    Buf h{0x40 | 0x04 | 0x03};  // key phase 1
    h.insert(h.end(), s.sscid.begin(), s.sscid.end());
    const std::size_t pn_off = h.size();
    for (int i = 0; i < 3; i++) h.push_back(0);
    h.push_back(5);
    auto pkt = seal_packet(h, pn_off, 5, bytes({0x01, 0, 0, 0, 0, 0}), *k1);
    REQUIRE(pkt);
    t.feed(3000, kClient, kServer, *pkt);
    CHECK(t.connections()[0]->decrypted[2] == 2);
    CHECK(t.connections()[0]->decrypt_failed == 0);
}

TEST_CASE("ports and heuristics decide what is QUIC; garbage is counted") {
    Script s;
    const Buf ch = s.client_hello();
    const Buf initial = s.client_initial(0, 0, ch, s.odcid, s.odcid);
    const auto odd = ep("203.0.113.10", 8443);
    {
        ConnectionTracker t;  // heuristics: a v1 long header on any port
        CHECK(t.feed(1, kClient, odd, initial) == FeedResult::quic);
        CHECK(t.feed(2, odd, kClient, s.server_initial(s.odcid)) == FeedResult::quic);  // known tuple
        CHECK(t.feed(3, kClient, ep("203.0.113.10", 53), bytes({0x12, 0x34, 1, 0})) == FeedResult::not_quic);
    }
    {
        TrackerOptions o;
        o.heuristics = false;
        ConnectionTracker t(o);
        CHECK(t.feed(1, kClient, odd, initial) == FeedResult::not_quic);
        o.ports.push_back(8443);
        ConnectionTracker t2(o);
        CHECK(t2.feed(1, kClient, odd, initial) == FeedResult::quic);
        CHECK(t2.connections()[0]->server == odd);
    }
    ConnectionTracker t;
    CHECK(t.feed(1, kClient, kServer, {}) == FeedResult::garbage);
    CHECK(t.feed(2, kClient, kServer, bytes({0x00, 0x01, 0x02})) == FeedResult::garbage);        // no fixed bit
    CHECK(t.feed(3, kClient, kServer, bytes({0xc0, 0, 0, 0, 1, 8, 1})) == FeedResult::garbage);  // cut header
    CHECK(t.feed(4, kClient, kServer, bytes({0x41, 1, 2})) == FeedResult::garbage);              // too short
    CHECK(t.stats().garbage == 4);
    CHECK(t.connections().empty());
    // A corrupt Initial is QUIC that does not decrypt: counted on its connection.
    Buf bad = initial;
    bad[700] ^= 1;
    CHECK(t.feed(5, kClient, kServer, bad) == FeedResult::quic);
    REQUIRE(t.connections().size() == 1);
    CHECK(t.connections()[0]->decrypt_failed == 1);
    CHECK_FALSE(t.connections()[0]->roles_known);
    CHECK(t.connections()[0]->client == kClient);  // guessed from the port
}

TEST_CASE("random and mutated datagrams never crash the tracker") {
    std::mt19937_64 rng(7);
    Script s;
    KeyLog kl;
    kl.parse(s.keylog());
    TrackerOptions o;
    o.keylog = &kl;
    ConnectionTracker t(o);
    std::vector<Buf> seeds = {s.client_initial(0, 0, s.client_hello(), s.odcid, s.odcid),
                              cat(s.server_initial(s.odcid), s.server_handshake()), s.client_handshake(),
                              s.client_1rtt(s.sscid, 0, bytes({1, 0, 0, 0})),
                              synth::retry(kVersion1, s.cscid, s.sscid, Buf(20, 1), s.odcid),
                              synth::version_negotiation(s.cscid, s.odcid, {1})};
    std::vector<PacketRecord> recs;
    for (int i = 0; i < 20000; i++) {
        Buf d = seeds[rng() % seeds.size()];
        switch (rng() % 4) {
            case 0: d.resize(rng() % (d.size() + 1)); break;
            case 1:
                for (int k = 0; k < 3; k++) d[rng() % d.size()] ^= static_cast<std::uint8_t>(1 + rng() % 255);
                break;
            case 2:
                d.resize(rng() % 64);
                for (auto& x : d) x = static_cast<std::uint8_t>(rng());
                break;
            default: break;
        }
        const bool up = rng() % 2;
        const auto cl = ep("192.0.2.1", static_cast<std::uint16_t>(50000 + rng() % 4));
        recs.clear();
        t.feed(i, up ? cl : kServer, up ? kServer : cl, d, 0, &recs);
    }
    CHECK(t.stats().datagrams == 20000);
    CHECK(t.stats().quic_datagrams + t.stats().garbage + t.stats().not_quic == 20000);
}

TEST_CASE("Cid: inline up to 22 bytes, on the heap beyond; copies, moves and comparisons") {
    static_assert(sizeof(Cid) == 24);
    for (std::size_t n : {0u, 1u, 8u, 20u, 21u, 22u, 23u, 40u, 255u, 300u}) {
        Buf b(n);
        for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(i * 7 + n);
        Cid c(b.begin(), b.end());
        CHECK(c.size() == n);
        CHECK(c.empty() == (n == 0));
        CHECK(c == b);
        CHECK(Bytes(c).size() == n);
        Cid copy = c;
        CHECK(copy == c);
        if (n) CHECK(copy.data() != c.data());
        Cid moved = std::move(copy);
        CHECK(moved == c);
        Cid other(Buf{9, 9});
        other = c;  // a short one takes a long one's bytes and back
        CHECK(other == c);
        other = Cid(Buf{1, 2, 3});
        CHECK(other == Buf{1, 2, 3});
        other.assign(b.begin(), b.end());
        CHECK(other == c);
        other.assign(other.begin(), other.end());  // from its own bytes (inline or heap)
        CHECK(other == c);
        other.assign(other.begin(), other.begin() + static_cast<std::ptrdiff_t>(n / 2));  // shrinking into itself
        CHECK(other == Buf(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n / 2)));
        Cid target(Buf(30, 5));
        target = std::move(moved);  // a heap one replaced by a move
        CHECK(target == c);
        CHECK(moved.empty());
        if (n) {
            Buf changed = b;
            changed.back() ^= 1;
            CHECK_FALSE(Cid(changed) == c);
            CHECK_FALSE(Cid(Buf(b.begin(), b.end() - 1)) == c);
        }
    }
    std::vector<Cid> v{Buf{1}, Buf(30, 2)};
    v.emplace_back(Buf(20, 3));
    v.erase(v.begin());  // moves the elements after it
    CHECK(v == std::vector<Cid>{Buf(30, 2), Buf(20, 3)});
}

TEST_CASE("SmallVec: the same as std::vector under random pushes, copies, moves and clears") {
    std::mt19937_64 rng(5);
    auto cid = [&] { return Cid(Buf(rng() % 30, static_cast<std::uint8_t>(rng()))); };
    SmallVec<Cid, 2> a, b;
    std::vector<Cid> ra, rb;
    for (int step = 0; step < 20000; ++step) {
        switch (rng() % 10) {
            case 0: case 1: case 2: case 3: {
                Cid x = cid();
                a.push_back(x);
                ra.push_back(x);
                break;
            }
            case 4:
                if (!a.empty()) {  // an element of its own, pushed while the storage may move
                    const std::size_t i = rng() % a.size();
                    a.push_back(a[i]);
                    ra.push_back(ra[i]);
                }
                break;
            case 5: b = a; rb = ra; break;
            case 6: { SmallVec<Cid, 2> m(std::move(a)); a = std::move(b); b = std::move(m); std::swap(ra, rb); break; }
            case 7: if (rng() % 8 == 0) { a.clear(); ra.clear(); } break;
            case 8: { SmallVec<Cid, 2> c(a); CHECK(c == a); a = c; break; }
            case 9: a.reserve(a.size() + rng() % 5); break;
        }
        REQUIRE(a.size() == ra.size());
        REQUIRE(a == ra);
        REQUIRE(b == rb);
        if (!a.empty()) REQUIRE(a.back() == ra.back());
        if (a.size() > 8) { a.clear(); ra.clear(); }
    }
    SmallVec<std::uint32_t, 2> v{1, 2, 3};
    CHECK(v == std::vector<std::uint32_t>{1, 2, 3});
    CHECK(std::span<const std::uint32_t>(v).size() == 3);
    CHECK_FALSE(v == std::vector<std::uint32_t>{1, 2});
}

TEST_CASE("Arena: aligned, disjoint, writable memory of any size; ZeroedPages: zeros") {
    std::mt19937_64 rng(3);
    Arena a;
    a.reserve(1000);
    std::vector<std::pair<std::uint8_t*, std::size_t>> got;
    for (int i = 0; i < 3000; ++i) {
        const std::size_t n = i % 500 == 0 ? (std::size_t{3} << 20) : rng() % 3000;  // a few bigger than a block
        const std::size_t align = std::size_t{1} << (rng() % 7);
        auto* p = static_cast<std::uint8_t*>(a.allocate(n, align));
        REQUIRE(reinterpret_cast<std::uintptr_t>(p) % align == 0);
        std::memset(p, i & 0xff, n);
        got.emplace_back(p, n);
    }
    std::sort(got.begin(), got.end());
    for (std::size_t i = 1; i < got.size(); ++i) REQUIRE(got[i - 1].first + got[i - 1].second <= got[i].first);
    CHECK(a.blocks() >= 2);
    Arena b(std::move(a));
    CHECK(a.blocks() == 0);
    CHECK(b.mapped_bytes() >= 3 * (std::size_t{3} << 20));
    for (std::size_t bytes : {std::size_t{1}, std::size_t{5000}, std::size_t{3} << 20, ZeroedPages::kHugeFrom + 1}) {
        ZeroedPages z(bytes);
        REQUIRE(z.size() >= bytes);
        const auto* p = static_cast<const std::uint8_t*>(z.data());
        CHECK(std::all_of(p, p + z.size(), [](std::uint8_t x) { return x == 0; }));
        ZeroedPages m(std::move(z));
        CHECK(m.data() == p);
        CHECK(z.data() == nullptr);
        m.populate();  // faulted in for writing: still zeros, and writable
        CHECK(std::all_of(p, p + m.size(), [](std::uint8_t x) { return x == 0; }));
        static_cast<std::uint8_t*>(m.data())[m.size() - 1] = 1;
    }
    ZeroedPages().populate();  // nothing mapped: nothing to do
}

TEST_CASE("ShardLog lists: entries of 0-255 bytes across many blocks come back in order") {
    ConnectionTracker::ShardLog log;
    std::mt19937_64 rng(9);
    std::vector<std::vector<std::uint8_t>> want;
    std::size_t bytes = 0;
    while (bytes < (std::size_t{300} << 10)) {  // several 64 KiB blocks, some ends left unused
        std::vector<std::uint8_t> e(rng() % 4 == 0 ? 255 : rng() % 21);
        for (auto& b : e) b = static_cast<std::uint8_t>(rng());
        log.missed.add(e);
        want.push_back(std::move(e));
        bytes += 1 + want.back().size();
    }
    std::size_t i = 0;
    bool same = true;
    log.missed.each([&](Bytes b) {
        same = same && i < want.size() && std::equal(b.begin(), b.end(), want[i].begin(), want[i].end());
        ++i;
    });
    CHECK(same);
    CHECK(i == want.size());

}

TEST_CASE("ByteKeyIndex: keys of every length, overwrites, growth and reserve keep every entry") {
    std::mt19937_64 rng(11);
    for (std::size_t reserve : {0u, 50000u}) {
        ByteKeyIndex idx;
        if (reserve) idx.reserve(reserve);
        std::map<Buf, std::uint32_t> ref;
        std::vector<Buf> order;  // keys in the order first set
        for (std::uint32_t i = 0; i < 60000; ++i) {
            Buf k(rng() % (ByteKeyIndex::kMaxKey + 6));
            // Few distinct short keys: many overwrites; long ones are ignored.
            for (auto& x : k) x = static_cast<std::uint8_t>(k.size() < 3 ? rng() % 4 : rng());
            const std::uint32_t ref_got = idx.set(k, i);
            CHECK((ref_got != 0) == (k.size() <= ByteKeyIndex::kMaxKey));
            CHECK(idx.holds(ref_got, k, i) == (ref_got != 0));
            CHECK(!idx.holds(ref_got, k, i + 1));
            if (k.size() <= ByteKeyIndex::kMaxKey) {
                if (!ref.count(k)) order.push_back(k);
                ref[k] = i;
            }
            if (i % 4999 == 0) {  // lookups in the middle of growing
                std::size_t bad = 0;
                for (const auto& [key, v] : ref) {
                    const std::uint32_t* got = idx.find(key);
                    bad += !got || *got != v;
                }
                CHECK(bad == 0);
            }
        }
        CHECK(idx.size() == ref.size());
        // each(): every key once, in the order first set (across the gaps entries leave
        // to stay within a cache line, and across chunks).
        std::size_t at = 0, out_of_order = 0;
        idx.each([&](Bytes key) {
            out_of_order += at >= order.size() || !std::equal(key.begin(), key.end(), order[at].begin(), order[at].end());
            ++at;
        });
        CHECK(at == order.size());
        CHECK(out_of_order == 0);
        std::size_t wrong = 0;
        for (const auto& [key, v] : ref) {
            const std::uint32_t* got = idx.find(key);
            wrong += !got || *got != v;
        }
        CHECK(wrong == 0);
        CHECK(idx.find(Buf(ByteKeyIndex::kMaxKey + 1, 1)) == nullptr);
        std::size_t phantom = 0;
        for (int i = 0; i < 20000; ++i) {
            Buf k(4 + rng() % 30);
            for (auto& x : k) x = static_cast<std::uint8_t>(rng());
            phantom += !ref.count(k) && idx.find(k);
        }
        CHECK(phantom == 0);
    }
}

TEST_CASE("client_hello_only: a whole handshake without a key log needs no connection detail; same fields") {
    Script s;
    TrackerOptions o;
    o.client_hello_only = true;
    ConnectionTracker fields(o), full;
    handshake(fields, s);
    handshake(full, s);
    REQUIRE(fields.connections().size() == 1);
    REQUIRE(full.connections().size() == 1);
    const Connection& a = *fields.connections()[0];
    const Connection& b = *full.connections()[0];
    // Handshake and 1-RTT packets without keys, the server's Initial left encrypted: nothing
    // rare happened, so the connection never made its detail.
    CHECK_FALSE(a.has_detail());
    CHECK(b.has_detail());  // the whole ClientHello, the ServerHello
    CHECK(a.sni == b.sni);
    CHECK(a.alpn == b.alpn);
    CHECK(a.original_dcid == b.original_dcid);
    CHECK(a.dcids == b.dcids);
    CHECK(a.scids == b.scids);
    CHECK(a.client_cids == b.client_cids);
    CHECK(a.server_cids == b.server_cids);
    CHECK(a.t_server_initial == b.t_server_initial);
    CHECK(a.t_server_handshake == b.t_server_handshake);
    CHECK(a.t_client_handshake == b.t_client_handshake);
    CHECK(a.t_client_1rtt == b.t_client_1rtt);
    CHECK(a.no_keys == b.no_keys);
    CHECK(a.no_keys == 3);  // server Handshake, client Handshake, client 1-RTT
    CHECK(a.decrypted[0] == 1);  // the client's Initial only
    CHECK(b.decrypted[0] == 2);
    // Defaults for everything the detail holds.
    CHECK(a.detail().retry_tag_ok == -1);
    CHECK(a.detail().t_retry == kNoTime);
    CHECK_FALSE(a.detail().close.seen);
    CHECK_FALSE(a.detail().has_server_hello);

    // A Retry is rare: it makes the detail, and the client's next Initial derives its keys
    // from the Retry's SCID (initial_dcid()), in both modes alike.
    const Buf rscid = bytes({0xa1, 0xa2, 0xa3, 0xa4, 0xa5});
    const Buf token(40, 0x77);
    for (TrackerOptions opts : {o, TrackerOptions{}}) {
        ConnectionTracker t(opts);
        const Buf ch = s.client_hello();
        REQUIRE(t.feed(1000, kClient, kServer, s.client_initial(0, 0, ch, s.odcid, s.odcid)) == FeedResult::quic);
        REQUIRE(t.feed(1100, kServer, kClient, synth::retry(s.version, s.cscid, rscid, token, s.odcid)) ==
                FeedResult::quic);
        REQUIRE(t.connections().size() == 1);
        const Connection& c = *t.connections()[0];
        REQUIRE(c.has_detail());
        CHECK(c.detail().retry_tag_ok == 1);
        CHECK(c.initial_dcid() == rscid);
        CHECK(c.original_dcid == s.odcid);
        REQUIRE(t.feed(1200, kClient, kServer, s.client_initial(1, 0, ch, rscid, rscid, token)) == FeedResult::quic);
        CHECK(c.decrypt_failed == 0);
        CHECK(c.decrypted[0] == (opts.client_hello_only ? 1u : 2u));  // the ClientHello was already complete
    }
}

TEST_CASE("a ClientHello whole in one CRYPTO frame, or in several of one packet, or malformed: same results") {
    Script s;
    const Buf ch = s.client_hello();
    auto initial = [&](const Buf& frames) {
        auto k = derive_initial_keys(s.version, s.odcid);
        return synth::long_packet(s.version, LongType::initial, s.odcid, s.cscid, 0, frames, k->client, 1200);
    };
    Buf whole, split, reversed;
    synth::crypto_frame(whole, 0, ch);
    synth::crypto_frame(split, 0, Bytes(ch).first(40));
    synth::crypto_frame(split, 40, Bytes(ch).subspan(40));
    synth::crypto_frame(reversed, 40, Bytes(ch).subspan(40));
    synth::crypto_frame(reversed, 0, Bytes(ch).first(40));
    for (bool hello_only : {false, true}) {
        TrackerOptions o;
        o.client_hello_only = hello_only;
        std::vector<const Connection*> got;
        std::vector<std::unique_ptr<ConnectionTracker>> ts;
        for (const Buf* f : {&whole, &split, &reversed}) {
            ts.push_back(std::make_unique<ConnectionTracker>(o));
            REQUIRE(ts.back()->feed(1000, kClient, kServer, initial(*f)) == FeedResult::quic);
            REQUIRE(ts.back()->connections().size() == 1);
            got.push_back(ts.back()->connections()[0].get());
        }
        for (const Connection* c : got) {
            CAPTURE(hello_only);
            REQUIRE(c->has_client_hello);
            CHECK(c->sni == s.sni);
            CHECK(c->alpn == std::vector<std::string>{"h3"});
            CHECK(c->alpn == got[0]->alpn);
            // Only the full decode keeps the rest of the ClientHello (the random is for key logs).
            if (!hello_only) CHECK(c->detail().client_hello.random == s.random);
            CHECK(c->detail().client_hello.cipher_suites == got[0]->detail().client_hello.cipher_suites);
            CHECK(c->detail().client_hello.transport_params.size() == got[0]->detail().client_hello.transport_params.size());
            CHECK(c->decrypted[0] == 1);
        }
        if (!hello_only) CHECK_FALSE(got[0]->detail().client_hello.transport_params.empty());
        // client_hello_only, the whole ClientHello in one frame: the connection never needed
        // its detail (no reassembly, nothing but the SNI and ALPN kept).
        CHECK(got[0]->has_detail() == !hello_only);
        CHECK(got[0]->detail().client_hello.cipher_suites.empty() == hello_only);

        // A malformed ClientHello (its message complete in one frame) is said once.
        Buf bad_frames;
        const Buf bad = bytes({1, 0, 0, 6, 3, 3, 0xde, 0xad, 0xbe, 0xef});
        synth::crypto_frame(bad_frames, 0, bad);
        ConnectionTracker t(o);
        std::vector<PacketRecord> recs;
        REQUIRE(t.feed(1000, kClient, kServer, initial(bad_frames), 0, &recs) == FeedResult::quic);
        REQUIRE(recs.size() == 1);
        CHECK(recs[0].note == "malformed ClientHello");
        CHECK_FALSE(t.connections()[0]->has_client_hello);
    }
}
