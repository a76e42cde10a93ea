// quic-probe-replicate-pcap: a big capture made of copies of one recorded QUIC connection,
// for issue 8's benchmark ("a capture of >= 100 k QUIC connections, built from recorded
// handshakes with varied CIDs").
//   quic-probe-replicate-pcap RECORDED KEYLOG OUT --count N [--seed S] [--spacing-us U]
// RECORDED is a capture of real connections (gtlsclient/gtlsserver under tcpdump) and
// KEYLOG their SSLKEYLOGFILE. Copies take the recorded connections in turn; a connection
// that cannot be copied (Retry, Version Negotiation, 0-RTT, no secrets) is skipped with a
// word on stderr. Every packet is opened (Initial keys from the client's first DCID,
// Handshake and 1-RTT keys from the key log) and sealed again for each copy with:
// - a client address and port of its own in 10.0.0.0/8, the server at 203.0.113.10:443;
// - new random connection IDs of the recorded lengths, in the headers and wherever the
//   recorded ones occur in the plaintext (transport parameters, NEW_CONNECTION_ID);
// - a server name of the recorded one's length, unique per copy (in the ClientHello);
// - Initial keys from its own DCID. The Handshake and 1-RTT keys stay the recorded ones:
//   the copies keep the recorded client random, so KEYLOG decrypts every one of them.
// Copies start --spacing-us apart and keep the recorded timing, so they overlap like
// concurrent connections; the capture is written in time order.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "net/build.hpp"
#include "net/flow.hpp"
#include "pcap/reader.hpp"
#include "pcap/scan.hpp"
#include "pcap/writer.hpp"
#include "quic/frames.hpp"
#include "quic/header.hpp"
#include "quic/initial.hpp"
#include "quic/keylog.hpp"
#include "quic/tls.hpp"

using namespace edge;
using namespace edge::quic;
using Buf = std::vector<std::uint8_t>;

namespace {

// rc 2: an input or output that cannot be read or written; 1: nothing to copy in it.
[[noreturn]] void die(const std::string& m, int rc = 1) {
    std::fprintf(stderr, "quic-probe-replicate-pcap: %s\n", m.c_str());
    std::exit(rc);
}

// Where a recorded CID (index into Recording::cids) or the server name sits in a buffer.
struct Spot {
    std::size_t off;
    std::size_t what;  // CID index, or kSni
};
constexpr std::size_t kSni = ~std::size_t{0};

struct Packet {
    bool from_client = false;
    PacketType type = PacketType::initial;
    std::uint32_t version = 0;
    Buf header;  // protection removed, packet number included
    std::size_t pn_offset = 0;
    std::uint64_t pn = 0;
    Buf payload;  // the frames
    std::vector<Spot> header_spots, payload_spots;
    const PacketKeys* keys = nullptr;  // Handshake and 1-RTT: the recorded keys; Initial: per copy
};

struct Recorded {
    bool from_client = false;
    std::int64_t at_us = 0;  // after the connection's first datagram
    std::vector<Packet> packets;
    Buf trailing;  // bytes after the last packet, copied as they are
};

// One recorded connection, opened.
struct Recording {
    std::vector<std::uint32_t> versions;  // of its Initial packets
    std::vector<Buf> cids;                // distinct connection IDs; [0] is the client's first DCID
    std::string sni;
    std::vector<Recorded> datagrams;
    std::vector<std::unique_ptr<PacketKeys>> keys;  // owned Handshake/1-RTT keys
};

std::size_t cid_index(Recording& rec, Bytes cid) {
    for (std::size_t i = 0; i < rec.cids.size(); ++i)
        if (std::equal(cid.begin(), cid.end(), rec.cids[i].begin(), rec.cids[i].end())) return i;
    rec.cids.emplace_back(cid.begin(), cid.end());
    return rec.cids.size() - 1;
}

// Every place in b where one of the needles occurs.
void find_spots(const Buf& b, const std::vector<Buf>& needles, std::size_t first_index, std::vector<Spot>& out) {
    for (std::size_t n = 0; n < needles.size(); ++n) {
        const Buf& x = needles[n];
        if (x.size() < 4) continue;  // too short to tell from other bytes
        for (auto it = std::search(b.begin(), b.end(), x.begin(), x.end()); it != b.end();
             it = std::search(it + 1, b.end(), x.begin(), x.end()))
            out.push_back({static_cast<std::size_t>(it - b.begin()), first_index + n});
    }
}

struct Raw {
    net::Endpoint src, dst;
    std::int64_t ts;
    Buf payload;
};

std::vector<Raw> read_udp(const std::string& path) {
    edge::pcap::Reader reader(path);
    std::vector<Raw> raws;
    edge::pcap::scan(reader, [&](const net::Packet& p, const edge::pcap::Frame& fr) {
        if (p.proto != net::kProtoUdp || !p.has_l4 || p.fragment) return;
        auto pl = fr.data.subspan(p.payload_off, p.payload_len);
        raws.push_back({{p.src, p.sport}, {p.dst, p.dport}, fr.ts_us, Buf(pl.begin(), pl.end())});
    });
    if (reader.truncated()) die(path + ": " + reader.error());
    return raws;
}

// Why a recorded connection cannot be copied.
struct Unusable {
    std::string why;
};

// The connection whose client's first Initial is raws[first]: its datagrams (both ways
// on that address pair) are marked in `taken`. Throws Unusable.
Recording open_connection(const std::vector<Raw>& raws, std::size_t first, const KeyLog& keylog, std::vector<bool>& taken) {
    Recording rec;
    const net::Endpoint client = raws[first].src, server = raws[first].dst;
    for (std::size_t i = first; i < raws.size(); ++i)
        if ((raws[i].src == client && raws[i].dst == server) || (raws[i].src == server && raws[i].dst == client)) taken[i] = true;
    auto h0 = parse_packet_header(raws[first].payload);
    const Buf odcid(h0->dcid.begin(), h0->dcid.end());
    cid_index(rec, odcid);
    std::vector<std::pair<std::uint32_t, InitialKeys>> initial;  // per version
    auto initial_keys = [&](std::uint32_t version) -> const InitialKeys& {
        for (const auto& [v, k] : initial)
            if (v == version) return k;
        auto k = derive_initial_keys(version, odcid);
        if (!k.ok()) throw Unusable{"cannot derive Initial keys for version " + std::to_string(version)};
        rec.versions.push_back(version);
        return initial.emplace_back(version, std::move(*k)).second;
    };

    const TlsSecrets* secrets = nullptr;
    std::size_t cid_len[2] = {0, 0};   // [from_client]: the DCID length of short headers it sends
    std::uint64_t largest[2][3] = {};  // [from_client][space]
    const PacketKeys* space_keys[2][3] = {};
    auto keys_for = [&](const PacketHeader& h, bool from_client, int space, const Buf& packet) -> const PacketKeys* {
        if (space == 0) return from_client ? &initial_keys(h.version).client : &initial_keys(h.version).server;
        if (space_keys[from_client][space]) return space_keys[from_client][space];
        if (!secrets) throw Unusable{"the key log has no secrets for its ClientHello"};
        const auto& secret = space == 1 ? (from_client ? secrets->client_handshake : secrets->server_handshake)
                                        : (from_client ? secrets->client_app : secrets->server_app);
        if (secret.empty()) throw Unusable{std::string("the key log has no ") + (space == 1 ? "handshake" : "traffic") + " secret for it"};
        const std::uint32_t version = rec.versions.empty() ? h.version : rec.versions.back();
        for (Cipher c : {Cipher::aes_128_gcm, Cipher::aes_256_gcm, Cipher::chacha20_poly1305}) {
            auto k = derive_packet_keys(version, c, secret);
            if (k.ok() && open_packet(packet, h.pn_offset, *k, 0).ok()) {
                rec.keys.push_back(std::make_unique<PacketKeys>(*k));
                return space_keys[from_client][space] = rec.keys.back().get();
            }
        }
        throw Unusable{"cannot open its packets with the key log's secrets"};
    };

    for (std::size_t i = first; i < raws.size(); ++i) {
        const Raw& r = raws[i];
        const bool from_client = r.src == client && r.dst == server;
        if (!from_client && !(r.src == server && r.dst == client)) continue;
        Recorded dg;
        dg.from_client = from_client;
        dg.at_us = r.ts - raws[first].ts;
        Bytes rest(r.payload);
        while (!rest.empty()) {
            auto h = parse_packet_header(rest, cid_len[from_client]);
            if (!h.ok()) break;
            if (!h->is_protected() || h->type == PacketType::zero_rtt)
                throw Unusable{"it has a " + std::string(packet_type_name(h->type)) + " packet"};
            if (h->long_header && !h->scid.empty()) cid_len[!from_client] = h->scid.size();
            const int space = h->type == PacketType::initial ? 0 : h->type == PacketType::handshake ? 1 : 2;
            const Buf raw(h->packet.begin(), h->packet.end());
            const PacketKeys* keys = keys_for(*h, from_client, space, raw);
            auto opened = open_packet(raw, h->pn_offset, *keys, largest[from_client][space]);
            if (!opened.ok()) throw Unusable{"a packet of datagram " + std::to_string(i + 1) + " does not open"};
            largest[from_client][space] = std::max(largest[from_client][space], opened->packet_number);
            Packet p;
            p.from_client = from_client;
            p.type = h->type;
            p.version = h->version;
            p.header = std::move(opened->header);
            p.pn_offset = h->pn_offset;
            p.pn = opened->packet_number;
            p.payload = std::move(opened->payload);
            p.keys = space == 0 ? nullptr : keys;
            // The header's CIDs, at their fixed places.
            if (h->long_header) {
                p.header_spots.push_back({6, cid_index(rec, h->dcid)});
                if (!h->scid.empty()) p.header_spots.push_back({7 + h->dcid.size(), cid_index(rec, h->scid)});
            } else if (!h->dcid.empty()) {
                p.header_spots.push_back({1, cid_index(rec, h->dcid)});
            }
            auto frames = parse_frames(p.payload);
            if (!frames.ok()) throw Unusable{"the frames of a packet of datagram " + std::to_string(i + 1) + " do not parse"};
            for (const auto& f : *frames) {
                if (f.type == 0x18 && !f.data.empty()) cid_index(rec, f.data);  // NEW_CONNECTION_ID
                if (f.type == 0x06 && f.crypto_offset == 0 && from_client && space == 0) {
                    auto ch = parse_client_hello(f.data);
                    if (!ch.ok()) throw Unusable{"its ClientHello does not fit the client's first Initial"};
                    rec.sni = ch->sni;
                    secrets = keylog.find(ch->random);
                }
            }
            dg.packets.push_back(std::move(p));
            rest = rest.subspan(h->size);
        }
        if (dg.packets.empty()) continue;
        dg.trailing.assign(rest.begin(), rest.end());
        rec.datagrams.push_back(std::move(dg));
    }
    // Every recorded CID (and the server name, in the client's Initials) wherever it
    // occurs in the plaintext.
    for (auto& dg : rec.datagrams)
        for (auto& p : dg.packets) {
            find_spots(p.payload, rec.cids, 0, p.payload_spots);
            if (p.type == PacketType::initial && p.from_client && !rec.sni.empty())
                find_spots(p.payload, {Buf(rec.sni.begin(), rec.sni.end())}, kSni, p.payload_spots);
        }
    return rec;
}

std::vector<Recording> read_recordings(const std::string& path, const std::string& keylog_path) {
    std::ifstream kf(keylog_path);
    if (!kf) die("cannot read key log " + keylog_path, 2);
    std::stringstream ks;
    ks << kf.rdbuf();
    KeyLog keylog;
    keylog.parse(ks.str());
    const std::vector<Raw> raws = read_udp(path);
    std::vector<bool> taken(raws.size());
    std::vector<Recording> recs;
    std::size_t conns = 0;
    for (std::size_t i = 0; i < raws.size(); ++i) {
        if (taken[i]) continue;
        auto h = parse_packet_header(raws[i].payload);
        if (!h.ok() || h->type != PacketType::initial) continue;  // not a connection's start
        ++conns;
        try {
            recs.push_back(open_connection(raws, i, keylog, taken));
        } catch (const Unusable& u) {
            std::fprintf(stderr, "quic-probe-replicate-pcap: skipping connection %zu (%s): %s\n", conns,
                         net::Endpoint{raws[i].src}.to_string().c_str(), u.why.c_str());
        }
    }
    if (recs.empty()) die(path + ": no connection in it can be copied");
    return recs;
}

// One copy of a recorded connection.
struct Copy {
    const Recording* rec = nullptr;
    net::Endpoint client;
    std::vector<Buf> cids;
    std::string sni;
    std::vector<std::pair<std::uint32_t, InitialKeys>> initial;  // per version, from its own DCID
    std::size_t next = 0;  // the next datagram to write
    std::int64_t start = 0;
    const InitialKeys& initial_keys(std::uint32_t version) const {
        for (const auto& [v, k] : initial)
            if (v == version) return k;
        die("no Initial keys for a version");
    }
};

void put(Buf& b, const std::vector<Spot>& spots, const Copy& c) {
    for (const Spot& s : spots) {
        if (s.what == kSni) std::copy(c.sni.begin(), c.sni.end(), b.begin() + static_cast<std::ptrdiff_t>(s.off));
        else std::copy(c.cids[s.what].begin(), c.cids[s.what].end(), b.begin() + static_cast<std::ptrdiff_t>(s.off));
    }
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app("quic-probe-replicate-pcap: copies of recorded QUIC connections, with new addresses, CIDs and names");
    std::string in, keylog, out;
    std::uint64_t count = 1000, seed = 1;
    std::int64_t spacing = 20;
    app.add_option("recorded", in, "Capture of the connections to copy")->required();
    app.add_option("keylog", keylog, "Their SSLKEYLOGFILE")->required();
    app.add_option("out", out, "Output capture")->required();
    app.add_option("--count", count, "Copies (the recorded connections in turn)");
    app.add_option("--seed", seed, "PRNG seed");
    app.add_option("--spacing-us", spacing, "Microseconds between the starts of two copies")->check(CLI::Range(1, 100000000));
    CLI11_PARSE(app, argc, argv);

    std::vector<Recording> recs;
    try {
        recs = read_recordings(in, keylog);
    } catch (const std::exception& e) {  // the capture cannot be opened or read
        die(e.what(), 2);
    }
    for (const Recording& rec : recs) {
        const std::size_t digits = rec.sni.empty() ? 0 : rec.sni.size() - 1;
        std::uint64_t room = 1;
        for (std::size_t i = 0; i < digits && room < count; ++i) room *= 36;
        if (!rec.sni.empty() && room < count)
            die("the recorded server name " + rec.sni + " is too short to make " + std::to_string(count) + " distinct ones");
    }
    std::mt19937_64 rng(seed);
    const net::Endpoint server{net::IpAddr::parse("203.0.113.10").value(), 443};
    std::set<std::uint32_t> used;
    auto make_copy = [&](std::uint64_t i) {
        auto c = std::make_unique<Copy>();
        c->rec = &recs[i % recs.size()];
        std::uint32_t a;
        do a = 0x0a000000u | static_cast<std::uint32_t>(rng() & 0x00ffffffu);
        while (!used.insert(a).second);
        c->client = {net::IpAddr::v4(a), static_cast<std::uint16_t>(1024 + rng() % 60000)};
        for (const auto& old : c->rec->cids) {
            Buf b(old.size());
            for (auto& x : b) x = static_cast<std::uint8_t>(rng());
            c->cids.push_back(std::move(b));
        }
        if (!c->rec->sni.empty()) {  // "c" and the copy's number in base 36, as long as the recorded name
            c->sni.assign(c->rec->sni.size(), '0');
            c->sni[0] = 'c';
            for (std::uint64_t v = i, k = c->sni.size() - 1; v && k > 0; v /= 36, --k)
                c->sni[k] = "0123456789abcdefghijklmnopqrstuvwxyz"[v % 36];
        }
        for (std::uint32_t v : c->rec->versions) {
            auto ik = derive_initial_keys(v, c->cids[0]);
            if (!ik.ok()) die("cannot derive Initial keys");
            c->initial.emplace_back(v, std::move(*ik));
        }
        c->start = 1700000000LL * 1000000 + static_cast<std::int64_t>(i) * spacing;
        return c;
    };

    std::optional<edge::pcap::Writer> writer;
    try {
        writer.emplace(out, 1 /* DLT_EN10MB */);
    } catch (const std::exception& e) {
        die(e.what(), 2);
    }
    edge::pcap::Writer& w = *writer;
    auto write = [&](Copy& c, const Recorded& dg) {
        Buf udp;
        for (const Packet& p : dg.packets) {
            Buf header = p.header, payload = p.payload;
            put(header, p.header_spots, c);
            put(payload, p.payload_spots, c);
            const PacketKeys& keys = p.keys ? *p.keys : p.from_client ? c.initial_keys(p.version).client : c.initial_keys(p.version).server;
            auto sealed = seal_packet(header, p.pn_offset, p.pn, payload, keys);
            if (!sealed.ok()) die("cannot seal a packet");
            udp.insert(udp.end(), sealed->begin(), sealed->end());
        }
        udp.insert(udp.end(), dg.trailing.begin(), dg.trailing.end());
        const net::Endpoint& src = dg.from_client ? c.client : server;
        const net::Endpoint& dst = dg.from_client ? server : c.client;
        net::PacketBuilder pb;
        pb.eth({2, 0, 0, 0, 0, 1}, {2, 0, 0, 0, 0, 2}).ipv4(src.addr, dst.addr).udp(src.port, dst.port).payload(udp);
        w.write(pb.build(), c.start + dg.at_us);
    };

    // Copies in flight, by the time of their next datagram; the next copy starts when its
    // start comes before everything waiting.
    using Next = std::pair<std::int64_t, std::uint64_t>;
    std::priority_queue<Next, std::vector<Next>, std::greater<>> due;
    std::vector<std::unique_ptr<Copy>> live;
    std::uint64_t started = 0, datagrams = 0;
    while (started < count || !due.empty()) {
        const std::int64_t next_start = 1700000000LL * 1000000 + static_cast<std::int64_t>(started) * spacing;
        if (started < count && (due.empty() || next_start <= due.top().first)) {
            live.push_back(make_copy(started));
            due.push({next_start + live.back()->rec->datagrams[0].at_us, started});
            ++started;
            continue;
        }
        const std::uint64_t id = due.top().second;
        due.pop();
        Copy& c = *live[id];
        write(c, c.rec->datagrams[c.next++]);
        ++datagrams;
        if (c.next < c.rec->datagrams.size()) due.push({c.start + c.rec->datagrams[c.next].at_us, id});
        else live[id].reset();
    }
    w.flush();
    std::string shapes;
    for (const Recording& rec : recs) shapes += (shapes.empty() ? "" : ", ") + std::to_string(rec.datagrams.size());
    std::fprintf(stderr, "quic-probe-replicate-pcap: %llu copies of %zu recorded connections (%s datagrams), %llu datagrams\n",
                 static_cast<unsigned long long>(count), recs.size(), shapes.c_str(), static_cast<unsigned long long>(datagrams));
    return 0;
}
