#include "quic/conntrack.hpp"

#include <algorithm>
#include <cstring>
#include <new>
#include <optional>
#include <random>
#include <thread>

namespace edge::quic {

namespace {

constexpr int kInitial = 0, kHandshake = 1, kApp = 2;

// src+dst as index key bytes: family, address, port, address, port (at most 37 bytes).
struct TupleKey {
    std::uint8_t b[ByteKeyIndex::kMaxKey];
    std::size_t n = 0;
    // Both directions give the same key (the smaller endpoint first): one index entry per
    // address pair instead of two.
    TupleKey(const net::Endpoint& src, const net::Endpoint& dst) {
        b[n++] = static_cast<std::uint8_t>(src.addr.family());
        const auto sa = src.addr.bytes(), da = dst.addr.bytes();
        const int cmp = sa.size() == da.size() ? std::memcmp(da.data(), sa.data(), sa.size()) : 0;
        const bool swap = cmp < 0 || (cmp == 0 && dst.port < src.port);
        put(swap ? dst : src);
        put(swap ? src : dst);
    }
    void put(const net::Endpoint& e) {
        const auto a = e.addr.bytes();
        std::memcpy(b + n, a.data(), a.size());
        n += a.size();
        b[n++] = static_cast<std::uint8_t>(e.port >> 8);
        b[n++] = static_cast<std::uint8_t>(e.port);
    }
    Bytes bytes() const noexcept { return Bytes(b, n); }
};

// A word at a time with fixed-size loads (the last 8 bytes overlap the words before; the
// length goes in with the seed): keys are CIDs and address pairs of 0-40 bytes, hashed for
// every lookup, so no byte loop and no copy through the stack (its 8-byte load waited for
// the byte stores: a CID's hash once stalled there half its time).
std::uint64_t key_hash(Bytes key, std::uint64_t seed) noexcept {
    const std::uint8_t* p = key.data();
    const std::size_t n = key.size();
    auto u64 = [](const std::uint8_t* q) {
        std::uint64_t w;
        std::memcpy(&w, q, 8);
        return w;
    };
    auto u32 = [](const std::uint8_t* q) {
        std::uint32_t w;
        std::memcpy(&w, q, 4);
        return std::uint64_t{w};
    };
    std::uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ULL), tail = 0;
    if (n >= 8) {
        for (std::size_t i = 0; i + 8 < n; i += 8) {
            h = (h ^ u64(p + i)) * 0xbf58476d1ce4e5b9ULL;
            h ^= h >> 31;
        }
        tail = u64(p + n - 8);
    } else if (n >= 4) {
        tail = u32(p) | u32(p + n - 4) << 32;
    } else if (n > 0) {
        tail = p[0] | std::uint64_t{p[n / 2]} << 8 | std::uint64_t{p[n - 1]} << 16;
    }
    h = (h ^ tail) * 0x94d049bb133111ebULL;
    h ^= h >> 29;
    h *= 0xff51afd7ed558ccdULL;
    return h ^ (h >> 32);
}

bool contains(std::span<const Cid> list, Bytes cid) {
    return std::any_of(list.begin(), list.end(),
                       [&](const Cid& c) { return std::equal(c.begin(), c.end(), cid.begin(), cid.end()); });
}

void note(PacketRecord* rec, std::string_view what) {
    if (!rec) return;
    if (!rec->note.empty()) rec->note += "; ";
    rec->note += what;
}

void set_time(std::int64_t& slot, std::int64_t ts) {
    if (slot == kNoTime) slot = ts;
}

// EncryptedExtensions (RFC 8446 4.3.1): the server's ALPN choice and transport parameters.
void parse_encrypted_extensions(ConnectionDetail& c, Bytes msg) {
    auto m = next_handshake_message(msg);
    if (!m || m->type != 8) return;
    Reader r(m->body);
    Bytes exts;
    if (!r.vec16(exts)) return;
    Reader er(exts);
    while (!er.empty()) {
        std::uint16_t type = 0;
        Bytes body;
        if (!er.u16(type) || !er.vec16(body)) return;
        if (type == tls::kExtAlpn) {
            Reader ar(body);
            Bytes list, proto;
            if (ar.vec16(list)) {
                Reader pr(list);
                if (pr.vec8(proto)) c.alpn_selected.assign(proto.begin(), proto.end());
            }
        } else if (type == tls::kExtQuicTransportParams || type == tls::kExtQuicTransportParamsDraft) {
            if (auto tp = parse_transport_params(body)) c.server_transport_params = std::move(tp.value);
        }
    }
    c.has_encrypted_extensions = true;
}

}  // namespace

ByteKeyIndex::ByteKeyIndex() {
    // Keys come from the capture: a per-process seed keeps crafted CIDs from colliding.
    std::random_device rd;
    seed_ = (std::uint64_t{rd()} << 32) ^ rd();
    resize(1024);
}

void ByteKeyIndex::resize(std::size_t slots) {
    ZeroedPages mem(slots * sizeof(std::uint64_t));  // all slots empty (0)
    mem.populate();  // lookups read slots before inserts write them
    slots_mem_ = std::move(mem);
    slots_ = static_cast<std::uint64_t*>(slots_mem_.data());
    nslots_ = slots;
    walk([&](std::uint32_t ref, Bytes key) { place(hash(key), ref); });
}

std::uint64_t ByteKeyIndex::hash(Bytes key) const noexcept { return key_hash(key, seed_); }

const std::uint32_t* ByteKeyIndex::find(Bytes key) const noexcept {
    if (key.size() > kMaxKey) return nullptr;
    const std::uint64_t h = hash(key);
    const std::uint64_t tag = h >> 32;
    const std::size_t mask = nslots_ - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
        const std::uint64_t s = slots_[i];
        if (s == 0) return nullptr;
        if ((s >> 32) != tag) continue;
        const std::uint8_t* e = entry(static_cast<std::uint32_t>(s) - 1u);
        if (e[4] == key.size() && (key.empty() || std::memcmp(e + 5, key.data(), key.size()) == 0))
            return reinterpret_cast<const std::uint32_t*>(e);
    }
}

void ByteKeyIndex::place(std::uint64_t h, std::uint32_t ref) noexcept {
    const std::size_t mask = nslots_ - 1;
    std::size_t i = h & mask;
    while (slots_[i] != 0) i = (i + 1) & mask;
    slots_[i] = ((h >> 32) << 32) | (std::uint64_t{ref} + 1);
}

std::uint32_t ByteKeyIndex::set(Bytes key, std::uint32_t value) {
    if (key.size() > kMaxKey) return 0;
    const std::uint64_t h = hash(key);
    const std::uint64_t tag = h >> 32;
    const std::size_t mask = nslots_ - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
        const std::uint64_t s = slots_[i];
        if (s == 0) break;
        if ((s >> 32) != tag) continue;
        std::uint8_t* e = entry(static_cast<std::uint32_t>(s) - 1u);
        if (e[4] == key.size() && (key.empty() || std::memcmp(e + 5, key.data(), key.size()) == 0)) {
            std::memcpy(e, &value, sizeof value);
            return static_cast<std::uint32_t>(s);
        }
    }
    const std::size_t need = entry_size(key.size());
    // An entry within one cache line where it fits in one (a lookup is then one miss):
    // the gap before it is marked as such (kGap | its 8-byte units, where a key length goes).
    if (!chunks_.empty() && need <= 64) {
        const std::size_t off = chunk_used_.back(), gap = (64 - off % 64) % 64;
        if (gap && gap < need && off + gap < kChunk) {
            chunks_.back()[off + 4] = static_cast<std::uint8_t>(kGap | gap / 8);
            chunk_used_.back() = static_cast<std::uint32_t>(off + gap);
        }
    }
    if (chunks_.empty() || kChunk - chunk_used_.back() < need) {
        if (chunks_.size() >= kMaxChunks) return 0;  // entry names are 32-bit
        chunks_.reserve(chunks_.size() + 1);
        chunk_used_.reserve(chunks_.size() + 1);
        chunks_.push_back(static_cast<std::uint8_t*>(arena_.allocate(kChunk, 8)));
        chunk_used_.push_back(0);
    }
    if ((used_ + 1) * 4 > nslots_ * 3) resize(nslots_ * 2);
    const std::size_t c = chunks_.size() - 1, off = chunk_used_.back();
    std::uint8_t* e = chunks_[c] + off;
    std::memcpy(e, &value, sizeof value);
    e[4] = static_cast<std::uint8_t>(key.size());
    if (!key.empty()) std::memcpy(e + 5, key.data(), key.size());
    chunk_used_.back() = static_cast<std::uint32_t>(off + need);
    const auto ref = static_cast<std::uint32_t>(c << kUnitBits | off >> 3);
    place(h, ref);
    used_++;
    return ref + 1;
}

bool ByteKeyIndex::holds(std::uint32_t ref, Bytes key, std::uint32_t value) const noexcept {
    if (ref == 0) return false;
    const std::uint8_t* e = entry(ref - 1);
    std::uint32_t v;
    std::memcpy(&v, e, sizeof v);
    return v == value && e[4] == key.size() && (key.empty() || std::memcmp(e + 5, key.data(), key.size()) == 0);
}

void ByteKeyIndex::reserve(std::size_t n) {
    std::size_t want = nslots_;
    while (n * 4 > want * 3) want *= 2;
    if (want != nslots_) resize(want);
    if (n > used_) arena_.reserve((n - used_) * 24 + kChunk);  // 24 bytes: most CIDs and address pairs
}

const ConnectionDetail& Connection::no_detail() noexcept {
    static const ConnectionDetail none;
    return none;
}

ConnectionTracker::ConnectionTracker(TrackerOptions opts) : opts_(std::move(opts)) {}

std::string_view ConnectionTracker::keep(std::string_view s) {
    if (s.empty()) return {};
    char* p = static_cast<char*>(arena_.allocate(s.size(), 1));
    std::memcpy(p, s.data(), s.size());
    return {p, s.size()};
}

ArenaStrings ConnectionTracker::keep(const std::vector<std::string>& v) {
    ArenaStrings a;
    if (v.empty()) return a;
    std::size_t bytes = 0;
    for (const auto& x : v) bytes += x.size();
    auto* items = static_cast<std::string_view*>(
        arena_.allocate(v.size() * sizeof(std::string_view) + bytes, alignof(std::string_view)));
    char* p = reinterpret_cast<char*>(items + v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (!v[i].empty()) std::memcpy(p, v[i].data(), v[i].size());
        new (items + i) std::string_view(p, v[i].size());
        p += v[i].size();
    }
    a.items_ = items;
    a.n_ = v.size();
    return a;
}

void ConnectionTracker::settle_fresh_keys() {
    if (!fresh_owner_) return;
    Connection& c = *fresh_owner_;
    fresh_owner_ = nullptr;
    if (opts_.client_hello_only && c.has_client_hello) return;  // no Initial of c gets opened again
    auto& keys = detail(c).initial_keys_;
    keys.insert(keys.begin(), std::move(fresh_keys_));
}

ConnectionDetail& ConnectionTracker::detail(Connection& c) {
    if (!c.detail_)
        c.detail_.reset(new (arena_.allocate(sizeof(ConnectionDetail), alignof(ConnectionDetail))) ConnectionDetail);
    return *c.detail_;
}

void ConnectionTracker::reserve(std::size_t n) {
    conns_.reserve(n);
    first_seqs_.reserve(n);
    arena_.reserve(n * sizeof(Connection));
    by_tuple_.reserve(n);
    by_cid_.reserve(3 * n);
}

bool ConnectionTracker::is_quic_port(std::uint16_t port) const noexcept {
    return std::find(opts_.ports.begin(), opts_.ports.end(), port) != opts_.ports.end();
}

void ConnectionTracker::prefetch(const net::Endpoint& src, const net::Endpoint& dst, Bytes payload) const noexcept {
    by_tuple_.prefetch(TupleKey(src, dst).bytes());
    // A long header: first byte, version (4), DCID length and DCID, SCID length and SCID.
    if (payload.size() < 7 || !(payload[0] & 0x80)) return;
    const std::size_t dl = payload[5];
    if (6 + dl >= payload.size()) return;
    if (dl) by_cid_.prefetch(payload.subspan(6, dl));
    const std::size_t sl = payload[6 + dl];
    if (sl && 7 + dl + sl <= payload.size()) by_cid_.prefetch(payload.subspan(7 + dl, sl));
}

Connection* ConnectionTracker::find_tuple(const net::Endpoint& src, const net::Endpoint& dst) const {
    const std::uint32_t* i = by_tuple_.find(TupleKey(src, dst).bytes());
    return i ? conns_[*i].get() : nullptr;
}

bool ConnectionTracker::indexed_here(const Connection& c, const net::Endpoint& src, Bytes dcid) const noexcept {
    const auto id = static_cast<std::uint32_t>(c.id - 1);
    if (src == c.client)
        return by_cid_.holds(c.server_cid_ref_, dcid, id) || by_cid_.holds(c.original_dcid_ref_, dcid, id);
    return by_cid_.holds(c.client_cid_ref_, dcid, id);
}

Connection* ConnectionTracker::find_cid(Bytes cid) const {
    if (cid.empty()) return nullptr;
    const std::uint32_t* i = by_cid_.find(cid);
    if (!i && shard_log_ && cid.size() <= 255) shard_log_->missed.add(cid);
    return i ? conns_[*i].get() : nullptr;
}

bool cross_shard_free(const std::vector<const ConnectionTracker*>& shards) {
    using Log = ConnectionTracker::ShardLog;
    for (const auto* t : shards)
        if (!t->shard_log() || t->shard_log()->overflow) return false;
    // A shard's CID index holds exactly the CIDs it indexed (none longer than kMaxKey:
    // those set overflow), so each shard's keys and log are checked against the other
    // shards' indexes, read-only, one thread per shard.
    // Lookups in another shard's index are cache misses, and nearly all of them miss: a
    // filter of each shard's CIDs (16 bits per CID, ~200 KB for 100 k CIDs: stays in
    // cache) skips most of them. Three bits of one 64-bit word per CID, so a probe reads
    // one word: ~0.5% of absent CIDs pass (one bit in 8 per CID let 12% through, and
    // their lookups were most of the check's time).
    // The same hash in every shard (each index hashes with a seed of its own).
    auto fhash = [](Bytes b) { return key_hash(b, 0xcbf29ce484222325ULL); };
    auto bits = [](std::uint64_t h) {
        return std::uint64_t{1} << (h & 63) | std::uint64_t{1} << (h >> 6 & 63) | std::uint64_t{1} << (h >> 12 & 63);
    };
    std::vector<std::vector<std::uint64_t>> filters(shards.size());
    auto build = [&](std::size_t t) {
        std::size_t words = 64;
        while (words * 64 < 16 * shards[t]->by_cid_.size()) words *= 2;
        auto& f = filters[t];
        f.assign(words, 0);
        shards[t]->by_cid_.each([&](Bytes cid) {
            const std::uint64_t h = fhash(cid);
            f[(h >> 32) & (words - 1)] |= bits(h);
        });
    };
    auto in_shard = [&](std::size_t t, Bytes cid) {
        const auto& f = filters[t];
        const std::uint64_t h = fhash(cid), b = bits(h);
        return (f[(h >> 32) & (f.size() - 1)] & b) == b && shards[t]->by_cid_.find(cid);
    };
    auto others_have = [&](std::size_t s, Bytes cid) {
        for (std::size_t t = 0; t < shards.size(); ++t)
            if (t != s && in_shard(t, cid)) return true;
        return false;
    };
    auto check = [&](std::size_t s) {
        const Log& log = *shards[s]->shard_log();
        bool ok = true;
        // One CID indexed by two shards; a CID lookup that missed here but another shard has.
        shards[s]->by_cid_.each([&](Bytes cid) { ok = ok && !others_have(s, cid); });
        log.missed.each([&](Bytes cid) { ok = ok && !others_have(s, cid); });
        // A short header here that starts with a CID another shard indexed.
        log.probes.each([&](Bytes probe) {
            for (std::size_t t = 0; t < shards.size() && ok; ++t) {
                if (t == s) continue;
                for (std::size_t len : shards[t]->cid_lengths_)
                    if (len <= probe.size() && in_shard(t, probe.first(len))) ok = false;
            }
        });
        return ok;
    };
    // Each step on one thread per shard: every filter is built before any is read.
    auto each_shard = [&](auto&& step) {
        std::vector<std::thread> pool;
        for (std::size_t s = 1; s < shards.size(); ++s) pool.emplace_back([&, s] { step(s); });
        if (!shards.empty()) step(0);
        for (auto& th : pool) th.join();
    };
    each_shard(build);
    std::vector<char> ok(shards.size(), 1);
    each_shard([&](std::size_t s) { ok[s] = check(s); });
    return std::all_of(ok.begin(), ok.end(), [](char x) { return x != 0; });
}

std::uint32_t ConnectionTracker::index_cid(Connection& c, Bytes cid) {
    if (cid.empty()) return 0;  // zero-length CIDs route by address only
    if (shard_log_ && cid.size() > ByteKeyIndex::kMaxKey) shard_log_->overflow = true;
    const std::uint32_t ref = by_cid_.set(cid, static_cast<std::uint32_t>(c.id - 1));
    if (std::find(cid_lengths_.begin(), cid_lengths_.end(), cid.size()) == cid_lengths_.end())
        cid_lengths_.push_back(cid.size());
    return ref;
}

void ConnectionTracker::index_tuple(Connection& c, const net::Endpoint& a, const net::Endpoint& b) {
    by_tuple_.set(TupleKey(a, b).bytes(), static_cast<std::uint32_t>(c.id - 1));  // both directions
}

template <typename List>
void ConnectionTracker::add_cid(Connection& c, List& list, Bytes cid, bool index) {
    if (index) {
        // Every long header indexes its SCID again (the CID goes to the connection that
        // used it last). Nearly always it is the one this side indexed last, still this
        // connection's: its entry says so without a lookup, and it is in the shard log.
        std::uint32_t& last = static_cast<const void*>(&list) == &c.client_cids ? c.client_cid_ref_ : c.server_cid_ref_;
        if (!by_cid_.holds(last, cid, static_cast<std::uint32_t>(c.id - 1))) last = index_cid(c, cid);
    }
    if (contains(list, cid)) return;
    list.emplace_back(cid.begin(), cid.end());
}

Connection* ConnectionTracker::create(std::int64_t ts, const net::Endpoint& src, const net::Endpoint& dst,
                                      const PacketHeader& h0) {
    // Default-initialised, not value-initialised: every member has an initialiser, and
    // `Connection()` would first clear all 1.4 KB (a third of this function's time).
    ConnectionPtr c(new (arena_.allocate(sizeof(Connection), alignof(Connection))) Connection);
    c->id = conns_.size() + 1;
    c->first_us = c->last_us = ts;
    bool src_is_client = false;
    first_open_packet_ = nullptr;
    settle_fresh_keys();
    if (h0.type == PacketType::initial) {
        // A client Initial opens with keys from its own DCID; a server Initial does not.
        // Keep the keys (fresh_keys_, until this feed() ends) and the plaintext: process()
        // needs both for this very packet.
        Connection::InitialSet& set = fresh_keys_;
        set.version = h0.version;
        const PreparedKeys* pk = nullptr;
        set.has_server = !opts_.client_hello_only;
        if (derive_initial_key_material(h0.version, h0.dcid, set.client, set.has_server ? &set.server : nullptr) ==
                Error::ok &&
            (pk = prepared(set.client)) && pk->open(h0.packet, h0.pn_offset, 0, open_buf_, first_open_) == Error::ok) {
            src_is_client = true;
            c->roles_known = true;
            fresh_owner_ = c.get();
            first_open_packet_ = h0.packet.data();
        }
    }
    if (!c->roles_known) {
        if (h0.type == PacketType::zero_rtt) {
            src_is_client = true;
        } else {
            const bool sq = is_quic_port(src.port), dq = is_quic_port(dst.port);
            src_is_client = sq != dq ? dq : src.port >= dst.port;  // else: servers use the lower port
        }
    }
    c->client = src_is_client ? src : dst;
    c->server = src_is_client ? dst : src;
    conns_.push_back(std::move(c));
    first_seqs_.push_back(seq_);
    Connection* p = conns_.back().get();
    index_tuple(*p, src, dst);
    return p;
}

FeedResult ConnectionTracker::feed(std::int64_t ts, const net::Endpoint& src, const net::Endpoint& dst,
                                   Bytes payload, std::size_t udp_bytes, std::vector<PacketRecord>* packets) {
    stats_.datagrams++;
    const bool port_match = is_quic_port(src.port) || is_quic_port(dst.port);
    Connection* by_tuple = find_tuple(src, dst);
    auto reject = [&] {
        if (port_match || by_tuple) {
            stats_.garbage++;
            return FeedResult::garbage;
        }
        stats_.not_quic++;
        return FeedResult::not_quic;
    };
    if (payload.empty()) return reject();
    Datagram* const dg = &dg_;
    // A short header on a known address pair: parsed with the DCID length the receiver
    // issued right away (else once without a DCID, then again in the loop below).
    std::size_t short_len = 0;
    if (by_tuple && !(payload[0] & 0x80)) {
        const int len = src == by_tuple->client   ? by_tuple->server_cid_len_
                        : src == by_tuple->server ? by_tuple->client_cid_len_
                                                  : -1;
        if (len > 0 && payload.size() >= 1 + static_cast<std::size_t>(len)) short_len = static_cast<std::size_t>(len);
    }
    if (split_datagram(payload, short_len, *dg) != Error::ok) return reject();
    const PacketHeader& h0 = dg->packets.front();

    // Is this QUIC at all?
    bool plausible;
    if (h0.type == PacketType::unknown_long)
        plausible = h0.dcid.size() <= kMaxCidLenV1 && h0.scid.size() <= kMaxCidLenV1 &&
                    (payload.size() >= 1200 || by_tuple);  // unknown versions: only padded client Initials
    else if (h0.type == PacketType::version_negotiation)
        plausible = !h0.supported_versions.empty();
    else if (h0.long_header)
        plausible = h0.fixed_bit || by_tuple;
    else
        plausible = (h0.fixed_bit || by_tuple) && payload.size() >= 1 + 1 + kHpSampleLen + 4;
    // Heuristics: a long header of a version we know, or a greased version in a padded
    // datagram (a client provoking Version Negotiation).
    const bool known_version = h0.long_header && (is_supported_version(h0.version) ||
                                                  (is_grease_version(h0.version) && payload.size() >= 1200));
    if (!port_match && !by_tuple && !(opts_.heuristics && known_version)) {
        stats_.not_quic++;
        return FeedResult::not_quic;
    }
    if (!plausible) return reject();

    // Which connection? Connection IDs first (they survive address changes), then addresses.
    Connection* c = nullptr;
    if (h0.long_header) {
        c = by_tuple && indexed_here(*by_tuple, src, h0.dcid) ? by_tuple : find_cid(h0.dcid);
        if (!c && h0.type == PacketType::version_negotiation) c = find_cid(h0.scid);
        if (c && c != by_tuple) {
            const bool same_path = (src == c->client && dst == c->server) || (src == c->server && dst == c->client);
            // Client Initials do not migrate: the same DCID from elsewhere is another connection.
            if (!same_path && h0.type == PacketType::initial) c = nullptr;
        }
        if (!c && by_tuple) {
            c = by_tuple;
            // A client's fresh Initial with a DCID never seen on a tuple whose connection got
            // past its first flight is a new connection reusing the ports; after a Version
            // Negotiation (no server Initial yet) it is the same attempt, continued.
            if (h0.type == PacketType::initial && src == c->client && !contains(c->dcids, h0.dcid) &&
                (c->t_server_initial != kNoTime || c->t_server_handshake != kNoTime ||
                 c->detail().t_retry != kNoTime ||
                 (c->t_client_initial != kNoTime && !c->version_negotiation)))
                c = nullptr;
        }
    } else {
        c = by_tuple;
        if (!c && shard_log_)
            shard_log_->probes.add(payload.subspan(1, std::min<std::size_t>(payload.size() - 1, kMaxCidLenV1)));
        if (!c)
            for (std::size_t len : cid_lengths_)
                if (payload.size() > len)
                    if ((c = find_cid(payload.subspan(1, len)))) break;
    }
    if (!c) c = create(ts, src, dst, h0);

    Dir d;
    if (src == c->client) {
        d = Dir::to_server;
    } else if (src == c->server) {
        d = Dir::to_client;
    } else {
        // A new path for a known CID (migration, NAT rebinding): the DCID says whose it is.
        Bytes dcid = h0.long_header ? h0.dcid : payload.subspan(1, std::min<std::size_t>(payload.size() - 1, 20));
        bool to_server = false;
        for (const auto& sc : c->server_cids)
            if (dcid.size() >= sc.size() && std::equal(sc.begin(), sc.end(), dcid.begin())) to_server = true;
        if (!to_server && !c->original_dcid.empty() && dcid.size() >= c->original_dcid.size() &&
            std::equal(c->original_dcid.begin(), c->original_dcid.end(), dcid.begin()))
            to_server = true;
        d = to_server ? Dir::to_server : Dir::to_client;
        c->path_changes++;
        index_tuple(*c, src, dst);
    }

    // split_datagram() takes a short header without the fixed bit after a packet for
    // padding, but RFC 9287 lets peers that negotiated grease_quic_bit clear it (ngtcp2
    // does). Padding is all zeros: anything else there is a 1-RTT packet. Its first
    // byte alone does not tell: with the fixed bit clear it is 0x00 one time in 32 or 64
    // (spin bit and the header-protected bits all zero), which once made a coalesced
    // Handshake + 1-RTT datagram count as one packet (the live test's old flake).
    if (dg->trailing_bytes) {
        const std::size_t off = payload.size() - dg->trailing_bytes;
        const Bytes rest = payload.subspan(off);
        if (!(payload[off] & 0x80) && std::any_of(rest.begin(), rest.end(), [](std::uint8_t b) { return b != 0; }))
            if (auto sh = parse_packet_header(payload.subspan(off), 0)) {
                dg->packets.push_back(sh.value);
                dg->trailing_bytes = 0;
            }
    }
    stats_.quic_datagrams++;
    if (dg->packets.size() > 1) stats_.coalesced++;
    if (dg->trailing_bytes) stats_.trailing_bytes++;
    const std::uint64_t bytes = udp_bytes ? udp_bytes : payload.size();
    DirCounts& dc = d == Dir::to_server ? c->from_client : c->from_server;
    dc.datagrams++;
    dc.bytes += bytes;
    c->last_us = std::max(c->last_us, ts);
    if (ts < c->first_us) c->first_us = ts;

    for (std::size_t i = 0; i < dg->packets.size(); ++i) {
        // The split's header, read in place (a copy each was ~1% of a decode); a short
        // header is parsed again, into `reparsed`.
        const PacketHeader* hp = &dg->packets[i];
        std::optional<PacketHeader> reparsed;
        if (!hp->long_header) {
            // Short headers carry no DCID length: it is the length the receiver issued.
            const int len = d == Dir::to_server ? c->server_cid_len_ : c->client_cid_len_;
            if (len > 0 && hp->dcid.size() != static_cast<std::size_t>(len))
                if (auto re = parse_packet_header(hp->packet, static_cast<std::size_t>(len))) {
                    hp = &reparsed.emplace(std::move(re.value));
                }
        }
        const PacketHeader& h = *hp;
        stats_.quic_packets++;
        dc.packets++;
        PacketRecord rec;
        PacketRecord* rp = packets ? &rec : nullptr;
        if (rp) {
            rec.conn = c->id;
            rec.dir = d;
            rec.index = i;
            rec.type = h.type;
            rec.version = h.version;
            rec.dcid.assign(h.dcid.begin(), h.dcid.end());
            rec.scid.assign(h.scid.begin(), h.scid.end());
            rec.token_bytes = h.token.size();
            rec.size = h.size;
        }
        process(*c, d, ts, h, rp);
        if (packets) packets->push_back(std::move(rec));
    }
    // Bytes each way before the server could trust the client's address.
    if (!c->address_validated) (d == Dir::to_server ? c->client_bytes_unvalidated : c->server_bytes_unvalidated) += bytes;
    first_open_packet_ = nullptr;
    settle_fresh_keys();
    return FeedResult::quic;
}

const KeyMaterial* ConnectionTracker::initial_keys(Connection& c, std::uint32_t version, Dir d) {
    if (!c.has_initial_dcid_) return nullptr;
    auto from = [&](Connection::InitialSet& k) -> const KeyMaterial* {
        if (d == Dir::to_client && !k.has_server) {
            if (derive_initial_key_material(version, c.initial_dcid(), k.client, &k.server) != Error::ok) return nullptr;
            k.has_server = true;
        }
        return d == Dir::to_server ? &k.client : &k.server;
    };
    if (fresh_owner_ == &c && fresh_keys_.version == version) return from(fresh_keys_);
    if (c.detail_)
        for (auto& k : c.detail_->initial_keys_)
            if (k.version == version) return from(k);
    Connection::InitialSet set;
    set.version = version;
    if (derive_initial_key_material(version, c.initial_dcid(), set.client, set.server) != Error::ok) return nullptr;
    auto& keys = detail(c).initial_keys_;
    keys.push_back(set);
    auto& k = keys.back();
    return d == Dir::to_server ? &k.client : &k.server;
}

const PreparedKeys* ConnectionTracker::prepared(const KeyMaterial& k) {
    std::uint64_t h;
    std::memcpy(&h, k.key, sizeof h);
    CachedKeys& e = key_cache_[(h ^ (h >> 29)) % key_cache_.size()];
    if (e.keys.ready() && e.material == k) return &e.keys;
    e.material = k;
    if (e.keys.init(k) != Error::ok) return nullptr;
    return &e.keys;
}

bool ConnectionTracker::ensure_secrets(Connection& c) {
    if (!opts_.keylog || !c.has_client_hello) return false;
    ConnectionDetail& dt = detail(c);
    if (!dt.secrets_looked_up_) {
        dt.secrets_looked_up_ = true;
        dt.secrets_ = opts_.keylog->find(dt.client_hello.random);
        dt.keylog_found = dt.secrets_ != nullptr;
    }
    return dt.secrets_ != nullptr;
}

ConnectionDetail::Keys* ConnectionTracker::tls_keys(Connection& conn, Dir d, int space, std::uint32_t version) {
    if (!ensure_secrets(conn)) return nullptr;
    ConnectionDetail& c = detail(conn);
    if (!c.has_server_hello) return nullptr;
    Cipher cipher;
    if (!cipher_for_suite(c.server_hello.cipher_suite, cipher)) return nullptr;
    if (!c.tls_keys_) c.tls_keys_ = std::make_unique<ConnectionDetail::TlsKeys>();
    auto& slot = (space == kHandshake ? c.tls_keys_->hs : c.tls_keys_->app)[static_cast<int>(d)];
    if (slot.have && slot.version == version) return &slot;
    const auto& secret = space == kHandshake
                             ? (d == Dir::to_server ? c.secrets_->client_handshake : c.secrets_->server_handshake)
                             : (d == Dir::to_server ? c.secrets_->client_app : c.secrets_->server_app);
    if (secret.empty()) return nullptr;
    auto k = derive_packet_keys(version, cipher, secret);
    if (!k) return nullptr;
    auto m = KeyMaterial::from(k.value);
    if (!m) return nullptr;
    slot.material = m.value;
    slot.have = true;
    slot.version = version;
    slot.keys = std::move(k.value);
    slot.secret = secret;
    return &slot;
}

void ConnectionTracker::process(Connection& c, Dir d, std::int64_t ts, const PacketHeader& h, PacketRecord* rec) {
    const bool cs = d == Dir::to_server;
    if (h.long_header && h.type != PacketType::version_negotiation) {
        if (std::find(c.versions.begin(), c.versions.end(), h.version) == c.versions.end())
            c.versions.push_back(h.version);
        add_cid(c, c.dcids, h.dcid, false);
        add_cid(c, c.scids, h.scid, false);
        // The SCID of a long header is a CID its sender issued.
        if (h.type != PacketType::retry) {
            add_cid(c, cs ? c.client_cids : c.server_cids, h.scid, true);
            std::int16_t& len = cs ? c.client_cid_len_ : c.server_cid_len_;
            if (len < 0) len = static_cast<std::int16_t>(h.scid.size());
        }
    } else if (!h.long_header && !h.dcid.empty()) {
        add_cid(c, c.dcids, h.dcid, false);
    }

    int space = -1;
    const KeyMaterial* keys = nullptr;
    switch (h.type) {
        case PacketType::initial:
            space = kInitial;
            if (cs) {
                if (c.t_client_initial == kNoTime) {
                    c.t_client_initial = ts;
                    c.handshake_seen = true;
                }
                if (!c.has_initial_dcid_) {
                    c.has_initial_dcid_ = true;
                    c.original_dcid.assign(h.dcid.begin(), h.dcid.end());  // and so initial_dcid()
                    c.original_dcid_ref_ = index_cid(c, h.dcid);
                }
            } else {
                set_time(c.t_server_initial, ts);
            }
            // Keys exist (no_keys stays exact), but nothing more is wanted from this packet.
            if (opts_.client_hello_only && (!cs || c.has_client_hello) && c.has_initial_dcid_) return;
            keys = initial_keys(c, h.version, d);
            break;
        case PacketType::handshake:
            space = kHandshake;
            if (cs) {
                set_time(c.t_client_handshake, ts);
                c.address_validated = true;  // RFC 9000 8.1: a Handshake packet proves the address
            } else {
                set_time(c.t_server_handshake, ts);
            }
            if (auto* k = tls_keys(c, d, kHandshake, h.version)) keys = &k->material;
            break;
        case PacketType::one_rtt: {
            space = kApp;
            if (cs) {
                set_time(c.t_client_1rtt, ts);
                c.address_validated = true;
            } else {
                set_time(c.t_server_1rtt, ts);
            }
            std::uint32_t v = c.versions.empty() ? kVersion1 : c.versions.back();
            if (auto* k = tls_keys(c, d, kApp, v)) keys = &k->material;
            break;
        }
        case PacketType::zero_rtt:
            detail(c).zero_rtt_packets++;
            note(rec, "0-RTT not decrypted");
            return;
        case PacketType::retry: {
            ConnectionDetail& dt = detail(c);
            c.retry = true;
            set_time(dt.t_retry, ts);
            dt.retry_token_bytes = h.token.size();
            if (c.has_initial_dcid_) {
                dt.retry_tag_ok = verify_retry(h, c.initial_dcid()) ? 1 : 0;
                if (!dt.retry_tag_ok) note(rec, "Retry integrity tag does not match");
            }
            add_cid(c, c.server_cids, h.scid, true);
            // The client's next Initials use keys from the Retry's SCID, and start a new CRYPTO stream.
            c.has_initial_dcid_ = true;
            dt.retry_dcid_.assign(h.scid.begin(), h.scid.end());
            dt.has_retry_dcid_ = true;
            dt.initial_keys_.clear();
            if (fresh_owner_ == &c) fresh_owner_ = nullptr;
            c.any_initial_pn_[1] = false;
            c.largest_initial_pn_[1] = 0;
            if (!c.has_client_hello) dt.crypto_[0][0].reset();
            dt.crypto_consumed_[0][0] = 0;
            return;
        }
        case PacketType::version_negotiation:
            c.version_negotiation = true;
            set_time(detail(c).t_vn, ts);
            detail(c).vn_versions = h.supported_versions;
            return;
        case PacketType::unknown_long: {
            // Some clients protect such an Initial like a version they know (ngtcp2, asked
            // for an unknown version to provoke Version Negotiation, uses v1's layout and
            // draft-29's salt). Try v1's layout with v1 and draft-29 keys: the AEAD tag
            // says whether a guess was right.
            if (!cs || ((h.first_byte >> 4) & 0x03) != 0) {
                note(rec, "unknown version");
                return;
            }
            std::vector<std::uint8_t> copy(h.packet.begin(), h.packet.end());
            copy[1] = copy[2] = copy[3] = 0;
            copy[4] = 1;
            auto v1 = parse_packet_header(copy);
            Result<OpenedPacket> opened = Error::invalid;
            std::uint32_t as = 0;
            for (std::uint32_t guess : {kVersion1, kVersionDraft29}) {
                if (!v1) break;
                auto k = derive_initial_keys(guess, v1->dcid);
                if (k && (opened = open_packet(h.packet.first(v1->size), v1->pn_offset, k->client))) {
                    as = guess;
                    break;
                }
            }
            if (!opened) {
                note(rec, "unknown version");
                return;
            }
            note(rec, "unknown version, protected like " + version_name(as));
            if (c.t_client_initial == kNoTime) {
                c.t_client_initial = ts;
                c.handshake_seen = true;
                c.original_dcid.assign(v1->dcid.begin(), v1->dcid.end());
            }
            if (rec) {
                rec->decrypted = true;
                rec->packet_number = opened->packet_number;
            }
            handle_frames(c, d, kInitial, ts, opened->payload, rec);
            return;
        }
    }
    if (!keys) {
        c.no_keys++;
        stats_.no_keys++;
        note(rec, space == kInitial ? "no Initial keys (client's first Initial not seen)" : "no keys");
        return;
    }
    const int di = static_cast<int>(d);
    // This space's packet-number state (Handshake and 1-RTT keys came from the detail).
    std::uint64_t& largest_pn = space == kInitial ? c.largest_initial_pn_[di] : c.detail_->largest_pn_[di][space - 1];
    bool& any_pn = space == kInitial ? c.any_initial_pn_[di] : c.detail_->any_pn_[di][space - 1];
    OpenedView opened;
    Error e;
    if (first_open_packet_ && first_open_packet_ == h.packet.data() && space == kInitial && !any_pn &&
        fresh_owner_ == &c && keys == &fresh_keys_.client) {
        // create() already opened this packet with these keys (largest_pn 0 then too).
        opened = first_open_;
        e = Error::ok;
    } else {
        const PreparedKeys* pk = prepared(*keys);
        e = pk ? pk->open(h.packet, h.pn_offset, largest_pn, open_buf_, opened) : Error::crypto;
    }
    first_open_packet_ = nullptr;
    if (e != Error::ok && space == kApp) {
        // Maybe a key update (RFC 9001 6): the next generation keeps the header protection key.
        auto& slot = c.detail_->tls_keys_->app[di];  // tls_keys() made it: keys came from there
        Cipher cipher = slot.keys.cipher;
        if (auto next = next_traffic_secret(slot.version, cipher, slot.secret)) {
            if (auto k = derive_packet_keys(slot.version, cipher, *next)) {
                k->hp = slot.keys.hp;
                auto m = KeyMaterial::from(k.value);
                const PreparedKeys* pk = m ? prepared(m.value) : nullptr;
                if (pk && pk->open(h.packet, h.pn_offset, largest_pn, open_buf_, opened) == Error::ok) {
                    slot.keys = std::move(k.value);
                    slot.material = m.value;
                    slot.secret = std::move(next.value);
                    e = Error::ok;
                }
            }
        }
    }
    if (e != Error::ok) {
        c.decrypt_failed++;
        stats_.decrypt_failed++;
        note(rec, e == Error::truncated ? "truncated packet" : "decryption failed");
        return;
    }
    c.decrypted[space]++;
    if (!any_pn || opened.packet_number > largest_pn) largest_pn = opened.packet_number;
    any_pn = true;
    if (rec) {
        rec->decrypted = true;
        rec->packet_number = opened.packet_number;
    }
    if (!opened.reserved_bits_zero) note(rec, "reserved bits set");
    handle_frames(c, d, space, ts, opened.payload, rec);
}

bool ConnectionTracker::take_client_hello(Connection& c, Bytes msg) {
    if (opts_.client_hello_only) {
        // Nothing but the SNI and ALPN is read in this mode: parsed in place into scratch
        // storage (no copy of the message, no per-connection lists), and the Initial keys
        // freed (no more Initials get opened) so later connections reuse the memory.
        if (parse_client_hello(msg, ch_scratch_) != Error::ok) return false;
        c.sni = keep(ch_scratch_.sni);
        c.alpn = keep(ch_scratch_.alpn);
        if (opts_.keylog) detail(c).client_hello.random = ch_scratch_.random;  // what the key log is looked up by
        stats_.client_hellos += !c.has_client_hello;
        c.has_client_hello = true;
        if (c.detail_) std::vector<Connection::InitialSet>().swap(c.detail_->initial_keys_);
        if (fresh_owner_ == &c) fresh_owner_ = nullptr;
        return true;
    }
    ConnectionDetail& dt = detail(c);
    dt.ch_bytes_.assign(msg.begin(), msg.end());
    auto ch = parse_client_hello(dt.ch_bytes_);
    if (!ch) return false;
    dt.client_hello = std::move(ch.value);
    c.sni = keep(dt.client_hello.sni);
    c.alpn = keep(dt.client_hello.alpn);
    dt.client_hello.sni = {};
    dt.client_hello.alpn = {};
    stats_.client_hellos += !c.has_client_hello;
    c.has_client_hello = true;
    return true;
}

void ConnectionTracker::handle_frames(Connection& c, Dir d, int space, std::int64_t ts, Bytes payload,
                                      PacketRecord* rec) {
    const bool cs = d == Dir::to_server;
    std::vector<Frame>& frames = frames_;
    frames.clear();
    Error e = parse_frames_partial(payload, frames);
    if (e != Error::ok) note(rec, std::string("frames: ") + std::string(error_name(e)));
    const int di = static_cast<int>(d);
    bool crypto_added = false;
    for (const auto& f : frames) {
        if (rec && (rec->frames.empty() || rec->frames.back() != f.type)) rec->frames.push_back(f.type);
        switch (f.type) {
            case frame_type::crypto:
                // Only the ClientHello, ServerHello and EncryptedExtensions are read.
                if (space == kApp || (space == kHandshake && cs)) break;
                if (space == kInitial && (cs ? c.has_client_hello : c.detail().has_server_hello)) break;
                if (space == kHandshake && c.detail().has_encrypted_extensions) break;
                // The usual client Initial: the whole ClientHello in one CRYPTO frame at
                // offset 0. Read from the frame itself, with no reassembly buffer (what the
                // walk below would do with the same bytes). Anything else, or a ClientHello
                // that does not parse, takes the general path.
                if (space == kInitial && cs && !c.detail().crypto_[di][space] && f.crypto_offset == 0 &&
                    f.data.size() <= CryptoReassembler().cap()) {
                    auto m = next_handshake_message(f.data);
                    if (m && m->type == tls::kClientHello && take_client_hello(c, f.data.first(m->size))) break;
                }
                {
                    auto& rs = detail(c).crypto_[di][space];
                    if (!rs) rs = std::make_unique<CryptoReassembler>();
                    if (rs->add(f.crypto_offset, f.data) == Error::ok) crypto_added = true;
                }
                break;
            case frame_type::connection_close:
            case frame_type::connection_close_app:
                if (!c.detail().close.seen) {
                    ConnectionClose& cl = detail(c).close;
                    cl.seen = true;
                    cl.by_client = cs;
                    cl.application = f.type == frame_type::connection_close_app;
                    cl.error_code = f.error_code;
                    cl.reason.assign(f.data.begin(), f.data.end());
                    cl.ts_us = ts;
                }
                break;
            case frame_type::handshake_done:
                if (!cs) set_time(c.t_handshake_done, ts);
                break;
            case 0x18:  // NEW_CONNECTION_ID: another CID the sender will answer to
                add_cid(c, cs ? c.client_cids : c.server_cids, f.data, true);
                break;
            default: break;
        }
    }
    if (!crypto_added || space == kApp) return;

    // Walk the complete handshake messages of this CRYPTO stream that are new.
    ConnectionDetail& dt = detail(c);
    auto& rs = dt.crypto_[di][space];
    std::size_t& consumed = dt.crypto_consumed_[di][space];
    while (true) {
        Bytes stream = rs->contiguous();
        if (consumed >= stream.size()) break;
        auto m = next_handshake_message(stream.subspan(consumed));
        if (!m) break;  // wait for more
        Bytes whole = stream.subspan(consumed, m->size);
        consumed += m->size;
        if (space == kInitial && cs && m->type == tls::kClientHello && !c.has_client_hello) {
            if (!take_client_hello(c, whole)) note(rec, "malformed ClientHello");
        } else if (space == kInitial && !cs && m->type == tls::kServerHello && !dt.has_server_hello) {
            std::vector<std::uint8_t> bytes(whole.begin(), whole.end());
            if (auto sh = parse_server_hello(bytes)) {
                if (sh->hello_retry_request) {
                    dt.hello_retry_request = true;
                } else {
                    dt.sh_bytes_ = std::move(bytes);  // a moved vector keeps its buffer: the views stay valid
                    dt.server_hello = std::move(sh.value);
                    dt.has_server_hello = true;
                }
            } else {
                note(rec, "malformed ServerHello");
            }
        } else if (space == kHandshake && !cs && m->type == 8 && !dt.has_encrypted_extensions) {
            dt.ee_bytes_.assign(whole.begin(), whole.end());
            parse_encrypted_extensions(dt, dt.ee_bytes_);
        }
    }
    // The ClientHello (ServerHello) is all we need from the client's (server's) Initial
    // stream: free it.
    if (space == kInitial && (cs ? c.has_client_hello : dt.has_server_hello)) {
        rs.reset();
        consumed = 0;
    }
}

}  // namespace edge::quic
