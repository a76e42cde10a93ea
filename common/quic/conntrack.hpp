// Groups the UDP datagrams of a capture into QUIC connections, the way an
// observer on the path sees them: by addresses and by connection IDs (the
// server picks its own CIDs in its first Initial, a Retry hands out another,
// and a client that migrates keeps the server's CID). Initial packets are
// decrypted to read the ClientHello (SNI, ALPN, transport parameters) and the
// ServerHello; with a key log (see keylog.hpp) Handshake and 1-RTT packets too.
//
// Nothing here trusts the input: garbage is counted, never fatal.
#pragma once

#include <algorithm>
#include <array>
#include <iterator>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <new>
#include <span>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "net/addr.hpp"
#include "quic/arena.hpp"
#include "quic/frames.hpp"
#include "quic/header.hpp"
#include "quic/initial.hpp"
#include "quic/keylog.hpp"
#include "quic/tls.hpp"

namespace edge::quic {

// A connection ID, in 24 bytes. Up to 22 bytes (all of QUIC v1 and v2's, at most 20) it
// is kept inline: a connection's CIDs and CID lists cost no allocation each. Longer ones
// (a long header of an unknown version may carry up to 255 bytes) go to the heap.
class Cid {
public:
    Cid() noexcept { raw_[kSize] = 0; raw_[kHeap] = 0; }
    template <typename It>
    Cid(It first, It last) : Cid() {
        assign(first, last);
    }
    Cid(const std::vector<std::uint8_t>& v) : Cid() { assign(v.begin(), v.end()); }  // NOLINT: implicit, like the vector it was
    Cid(const Cid& o) : Cid() { assign(o.begin(), o.end()); }
    Cid(Cid&& o) noexcept : Cid() { *this = std::move(o); }
    Cid& operator=(const Cid& o) {
        if (this != &o) assign(o.begin(), o.end());
        return *this;
    }
    Cid& operator=(Cid&& o) noexcept {
        if (this == &o) return *this;
        free_heap();
        std::memcpy(raw_, o.raw_, sizeof raw_);  // inline bytes, or the heap block's pointer and size
        o.raw_[kSize] = 0;
        o.raw_[kHeap] = 0;
        return *this;
    }
    ~Cid() { free_heap(); }
    template <typename It>
    void assign(It first, It last) {
        const auto n = static_cast<std::size_t>(std::distance(first, last));
        if (n <= kInline) {
            // Copied out first: the source may be this Cid's own heap bytes.
            std::uint8_t tmp[kInline];
            std::copy(first, last, tmp);
            free_heap();
            std::memcpy(raw_, tmp, n);
            raw_[kSize] = static_cast<std::uint8_t>(n);
            raw_[kHeap] = 0;
            return;
        }
        auto* to = new std::uint8_t[n];
        std::copy(first, last, to);
        free_heap();
        std::memcpy(raw_, &to, sizeof to);
        std::memcpy(raw_ + sizeof to, &n, sizeof n);
        raw_[kSize] = 0;
        raw_[kHeap] = 1;
    }
    const std::uint8_t* data() const noexcept { return raw_[kHeap] ? heap_ptr() : raw_; }
    const std::uint8_t* begin() const noexcept { return data(); }
    const std::uint8_t* end() const noexcept { return data() + size(); }
    std::size_t size() const noexcept {
        if (!raw_[kHeap]) return raw_[kSize];
        std::size_t n;
        std::memcpy(&n, raw_ + sizeof(std::uint8_t*), sizeof n);
        return n;
    }
    bool empty() const noexcept { return size() == 0; }
    std::uint8_t operator[](std::size_t i) const noexcept { return data()[i]; }
    friend bool operator==(const Cid& a, const Cid& b) noexcept {
        return std::equal(a.begin(), a.end(), b.begin(), b.end());
    }
    friend bool operator==(const Cid& a, const std::vector<std::uint8_t>& b) noexcept {
        return std::equal(a.begin(), a.end(), b.begin(), b.end());
    }

private:
    static constexpr std::size_t kInline = 22, kSize = 22, kHeap = 23;
    std::uint8_t* heap_ptr() const noexcept {
        std::uint8_t* p;
        std::memcpy(&p, raw_, sizeof p);
        return p;
    }
    void free_heap() noexcept {
        if (raw_[kHeap]) delete[] heap_ptr();
        raw_[kHeap] = 0;
        raw_[kSize] = 0;
    }
    // Inline: the bytes, their count at [kSize], 0 at [kHeap]. On the heap: the block's
    // pointer and size_t length at the front, 1 at [kHeap].
    alignas(8) std::uint8_t raw_[24];
};
static_assert(sizeof(Cid) == 24);

// A vector of up to N elements kept inline (no allocation), on the heap beyond: for a
// connection's short lists (its versions, its CIDs), which nearly always stay short.
template <typename T, std::size_t N>
class SmallVec {
public:
    using value_type = T;
    using iterator = T*;
    using const_iterator = const T*;
    SmallVec() noexcept = default;
    SmallVec(std::initializer_list<T> il) { assign(il.begin(), il.end()); }
    SmallVec(const SmallVec& o) { assign(o.begin(), o.end()); }
    SmallVec(SmallVec&& o) noexcept { take(o); }
    SmallVec& operator=(const SmallVec& o) {
        if (this != &o) assign(o.begin(), o.end());
        return *this;
    }
    SmallVec& operator=(SmallVec&& o) noexcept {
        if (this != &o) {
            clear();
            release();
            take(o);
        }
        return *this;
    }
    ~SmallVec() {
        clear();
        release();
    }
    template <typename It>
    void assign(It first, It last) {
        clear();
        reserve(static_cast<std::size_t>(std::distance(first, last)));
        for (; first != last; ++first) push_back(*first);
    }
    T* data() noexcept { return heap_ ? heap_ : reinterpret_cast<T*>(buf_); }
    const T* data() const noexcept { return heap_ ? heap_ : reinterpret_cast<const T*>(buf_); }
    T* begin() noexcept { return data(); }
    T* end() noexcept { return data() + size_; }
    const T* begin() const noexcept { return data(); }
    const T* end() const noexcept { return data() + size_; }
    std::size_t size() const noexcept { return size_; }
    std::size_t capacity() const noexcept { return cap_; }
    bool empty() const noexcept { return size_ == 0; }
    T& operator[](std::size_t i) noexcept { return data()[i]; }
    const T& operator[](std::size_t i) const noexcept { return data()[i]; }
    T& front() noexcept { return data()[0]; }
    const T& front() const noexcept { return data()[0]; }
    T& back() noexcept { return data()[size_ - 1]; }
    const T& back() const noexcept { return data()[size_ - 1]; }
    operator std::span<const T>() const noexcept { return {data(), size_}; }  // NOLINT: implicit, like a vector's
    void reserve(std::size_t n) {
        if (n <= cap_) return;
        T* to = std::allocator<T>().allocate(n);
        T* from = data();
        for (std::size_t i = 0; i < size_; ++i) {
            new (to + i) T(std::move(from[i]));
            from[i].~T();
        }
        release();
        heap_ = to;
        cap_ = n;
    }
    template <typename... A>
    T& emplace_back(A&&... a) {
        if (size_ == cap_) {
            // An argument may live in this vector: build the element before moving them.
            T v(std::forward<A>(a)...);
            reserve(cap_ * 2);
            return *new (data() + size_++) T(std::move(v));
        }
        return *new (data() + size_++) T(std::forward<A>(a)...);
    }
    void push_back(const T& v) { emplace_back(v); }
    void push_back(T&& v) { emplace_back(std::move(v)); }
    void clear() noexcept {
        T* d = data();
        for (std::size_t i = 0; i < size_; ++i) d[i].~T();
        size_ = 0;
    }
    friend bool operator==(const SmallVec& a, const SmallVec& b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }
    friend bool operator==(const SmallVec& a, const std::vector<T>& b) {
        return std::equal(a.begin(), a.end(), b.begin(), b.end());
    }

private:
    void release() noexcept {
        if (heap_) std::allocator<T>().deallocate(heap_, cap_);
        heap_ = nullptr;
        cap_ = N;
    }
    // Moves o's elements (or its heap block) here; o is left empty.
    void take(SmallVec& o) noexcept {
        if (o.heap_) {
            heap_ = o.heap_;
            cap_ = o.cap_;
            size_ = o.size_;
            o.heap_ = nullptr;
            o.cap_ = N;
            o.size_ = 0;
            return;
        }
        T* d = reinterpret_cast<T*>(buf_);
        T* s = reinterpret_cast<T*>(o.buf_);
        for (std::size_t i = 0; i < o.size_; ++i) {
            new (d + i) T(std::move(s[i]));
            s[i].~T();
        }
        size_ = o.size_;
        o.size_ = 0;
    }
    T* heap_ = nullptr;
    std::uint32_t size_ = 0;
    std::uint32_t cap_ = N;
    alignas(T) unsigned char buf_[N * sizeof(T)];
};

inline constexpr std::int64_t kNoTime = std::numeric_limits<std::int64_t>::min();

enum class Dir : std::uint8_t { to_server, to_client };

struct DirCounts {
    std::uint64_t datagrams = 0;
    std::uint64_t packets = 0;  // QUIC packets (several may share a datagram)
    std::uint64_t bytes = 0;    // UDP payload bytes
};

struct ConnectionClose {
    bool seen = false;
    bool by_client = false;
    bool application = false;  // CONNECTION_CLOSE 0x1d
    std::uint64_t error_code = 0;
    std::string reason;
    std::int64_t ts_us = kNoTime;
};

// A list of strings kept in a connection tracker's arena (a connection's ALPN list): no
// allocation of its own, nothing to free. Empty by default.
class ArenaStrings {
public:
    std::size_t size() const noexcept { return n_; }
    bool empty() const noexcept { return n_ == 0; }
    std::string_view operator[](std::size_t i) const noexcept { return items_[i]; }
    const std::string_view* begin() const noexcept { return items_; }
    const std::string_view* end() const noexcept { return items_ + n_; }
    friend bool operator==(const ArenaStrings& a, const ArenaStrings& b) noexcept {
        return std::equal(a.begin(), a.end(), b.begin(), b.end());
    }
    friend bool operator==(const ArenaStrings& a, const std::vector<std::string>& b) noexcept {
        return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](std::string_view x, const std::string& y) { return x == y; });
    }

private:
    friend class ConnectionTracker;
    const std::string_view* items_ = nullptr;  // n_ views, and their bytes, in the arena
    std::size_t n_ = 0;
};

// The Initial keys of one version, client's and server's.
struct ConnectionInitialSet {
    std::uint32_t version = 0;
    bool has_server = true;  // false: only the client's keys were derived
    KeyMaterial client, server;
};

// What few connections (or only a full decode) need: Version Negotiation, Retry, the
// close, the whole ClientHello, the ServerHello, key-log state, CRYPTO reassembly.
// Allocated on first use (Connection::detail(), ConnectionTracker::detail()): a
// `--fields` decode of plain handshakes (without a key log) never makes one, and keeps
// 576 bytes per connection instead of the 1,448 of one structure holding everything.
struct ConnectionDetail {
    std::vector<std::uint32_t> vn_versions;  // offered by the server
    std::size_t retry_token_bytes = 0;
    int retry_tag_ok = -1;  // -1 unknown, 0 bad, 1 good
    // Absolute timestamps (us), kNoTime when not seen (the handshake's phases are in Connection).
    std::int64_t t_vn = kNoTime, t_retry = kNoTime;
    // The parsed ClientHello but its SNI and ALPN (in Connection): views into ch_bytes_.
    // Empty with TrackerOptions::client_hello_only.
    ClientHello client_hello;
    bool has_server_hello = false;
    bool hello_retry_request = false;
    ServerHello server_hello;
    // From EncryptedExtensions (needs the key log).
    bool has_encrypted_extensions = false;
    std::string alpn_selected;
    std::vector<TransportParam> server_transport_params;  // views into ee_bytes_
    bool keylog_found = false;
    ConnectionClose close;
    std::uint64_t zero_rtt_packets = 0;

    // --- tracker state, not for output ---
    // What Initial keys derive from after a Retry (its SCID); before: the original DCID.
    bool has_retry_dcid_ = false;
    Cid retry_dcid_;
    // Per version, derived once (but the keys of a connection's first datagram, while
    // the tracker feeds it: ConnectionTracker::fresh_keys_).
    std::vector<ConnectionInitialSet> initial_keys_;
    // Packet numbers of the Handshake and 1-RTT spaces [Dir][space - 1] (Initial's: in Connection).
    std::uint64_t largest_pn_[2][2] = {};
    bool any_pn_[2][2] = {};
    struct Keys {
        bool have = false;
        std::uint32_t version = 0;
        PacketKeys keys;
        KeyMaterial material;              // `keys` in fixed storage, for the key cache
        std::vector<std::uint8_t> secret;  // 1-RTT only: for key updates
    };
    struct TlsKeys {
        Keys hs[2], app[2];  // [Dir]
    };
    std::unique_ptr<TlsKeys> tls_keys_;  // only with a key log: most connections never need it
    const TlsSecrets* secrets_ = nullptr;
    bool secrets_looked_up_ = false;
    std::unique_ptr<CryptoReassembler> crypto_[2][2];  // [Dir][0 Initial, 1 Handshake]
    std::size_t crypto_consumed_[2][2] = {};
    std::vector<std::uint8_t> ch_bytes_, sh_bytes_, ee_bytes_;
};

// A connection's detail lives in its tracker's arena: its owner runs only the destructor.
struct ConnectionDetailDestroy {
    void operator()(ConnectionDetail* d) const noexcept { d->~ConnectionDetail(); }
};

struct Connection {
    std::size_t id = 0;  // 1-based, in order of first packet
    net::Endpoint client, server;
    bool roles_known = false;     // a client Initial decrypted; else roles guessed from ports
    bool handshake_seen = false;  // the client's first Initial is in the capture
    bool version_negotiation = false;
    bool retry = false;
    bool has_client_hello = false;
    // Until the client proves its address (its first Handshake or 1-RTT packet),
    // RFC 9000 8.1 limits the server to 3x what it received.
    bool address_validated = false;
    std::int64_t first_us = 0, last_us = 0;

    SmallVec<std::uint32_t, 2> versions;  // long-header versions in order of first use
    Cid original_dcid;      // DCID of the client's first Initial
    using CidList = SmallVec<Cid, 2>;          // most lists hold one or two
    using IssuedList = SmallVec<Cid, 1>;       // most hold one
    CidList dcids, scids;                      // every DCID/SCID seen in a header, first-seen order
    IssuedList client_cids, server_cids;       // CIDs each side issued (SCIDs, Retry, NEW_CONNECTION_ID)

    DirCounts from_client, from_server;
    std::uint64_t client_bytes_unvalidated = 0, server_bytes_unvalidated = 0;

    // Absolute timestamps (us), kNoTime when not seen (Version Negotiation and Retry: detail()).
    std::int64_t t_client_initial = kNoTime, t_server_initial = kNoTime, t_server_handshake = kNoTime,
                 t_client_handshake = kNoTime, t_client_1rtt = kNoTime, t_server_1rtt = kNoTime,
                 t_handshake_done = kNoTime;

    // From the ClientHello (has_client_hello); the rest of it: detail().client_hello.
    // Both in the tracker's arena.
    std::string_view sni;  // empty if absent
    ArenaStrings alpn;

    std::uint64_t decrypted[3] = {0, 0, 0};  // Initial, Handshake, 1-RTT packets opened
    std::uint64_t decrypt_failed = 0;         // had keys, AEAD or header protection failed
    std::uint64_t no_keys = 0;                // protected packets we had no keys for
    std::uint64_t path_changes = 0;           // packets from a new address for a known CID

    // Everything else (Version Negotiation, Retry, ServerHello, close...): default values
    // when the connection never needed any of it.
    const ConnectionDetail& detail() const noexcept { return detail_ ? *detail_ : no_detail(); }
    bool has_detail() const noexcept { return detail_ != nullptr; }

    // --- tracker state, not for output ---
    using InitialSet = ConnectionInitialSet;
    bool has_initial_dcid_ = false;
    bool any_initial_pn_[2] = {};  // [Dir]; the other spaces' in detail
    std::int16_t client_cid_len_ = -1, server_cid_len_ = -1;  // the CID length each side issued; -1: not known yet
    // The index entries of the CID each side's long headers indexed last (see add_cid)
    // and of the original DCID: a long header to one of them needs no index lookup.
    std::uint32_t client_cid_ref_ = 0, server_cid_ref_ = 0, original_dcid_ref_ = 0;
    std::uint64_t largest_initial_pn_[2] = {};
    std::unique_ptr<ConnectionDetail, ConnectionDetailDestroy> detail_;  // in the tracker's arena
    // What Initial keys derive from (has_initial_dcid_): the Retry's SCID after a Retry.
    const Cid& initial_dcid() const noexcept { return detail_ && detail_->has_retry_dcid_ ? detail_->retry_dcid_ : original_dcid; }

private:
    static const ConnectionDetail& no_detail() noexcept;
};

// A tracker's connections live in its arena: their owner runs only the destructor.
struct ConnectionDestroy {
    void operator()(Connection* c) const noexcept { c->~Connection(); }
};
using ConnectionPtr = std::unique_ptr<Connection, ConnectionDestroy>;

// One QUIC packet, for per-packet output.
struct PacketRecord {
    std::size_t conn = 0;
    Dir dir = Dir::to_server;
    std::size_t index = 0;  // position in its datagram (coalesced packets)
    PacketType type = PacketType::unknown_long;
    std::uint32_t version = 0;
    Cid dcid, scid;
    std::size_t token_bytes = 0;
    std::size_t size = 0;
    bool decrypted = false;
    std::uint64_t packet_number = 0;
    std::vector<std::uint64_t> frames;  // frame types in order (runs of one type once)
    std::string note;                   // why not decrypted, protocol oddities
};

struct TrackerOptions {
    std::vector<std::uint16_t> ports{443, 4433};  // UDP ports taken as QUIC
    // Also take as QUIC any datagram starting with a long header of a known version.
    bool heuristics = true;
    const KeyLog* keylog = nullptr;
    // Decrypt only what the ClientHello needs: a connection's client Initials until its
    // ClientHello is complete. Server Initials and later client Initials are counted and
    // their headers read (CIDs, versions, timing) but not decrypted, so server_hello,
    // close (from Initials), decrypted[0] and decrypt_failed stay incomplete. For callers
    // that want only header fields, SNI and ALPN (quic-probe decode --fields): of the
    // ClientHello only sni and alpn are kept (and, with a key log, its random).
    bool client_hello_only = false;
};

struct TrackerStats {
    std::uint64_t datagrams = 0;       // UDP datagrams fed
    std::uint64_t quic_datagrams = 0;
    std::uint64_t quic_packets = 0;
    std::uint64_t coalesced = 0;       // datagrams with more than one packet
    std::uint64_t not_quic = 0;        // other ports, no QUIC look
    std::uint64_t garbage = 0;         // on a QUIC port (or a QUIC flow) but not parsable as QUIC
    std::uint64_t trailing_bytes = 0;  // datagrams with bytes after the last packet
    std::uint64_t client_hellos = 0;   // connections with a ClientHello (has_client_hello)
    std::uint64_t decrypt_failed = 0;  // the connections' decrypt_failed and no_keys, summed
    std::uint64_t no_keys = 0;
};

enum class FeedResult { quic, not_quic, garbage };

// Byte strings of up to 40 bytes (CIDs, address pairs) -> connection index: open
// addressing, no per-lookup allocation, never shrinks (the tracker never forgets).
// The probed table holds 8 bytes per slot (a 32-bit hash tag and where the entry is), so
// it stays mostly in cache and a lookup that misses touches nothing else; keys and values
// live in entries appended in insertion order, each as long as its key needs (16 to 48
// bytes; 24 for an IPv4 address pair or a CID of 12 to 19 bytes), in chunks that never
// move: growing the table rehashes only the slots.
class ByteKeyIndex {
public:
    ByteKeyIndex();
    const std::uint32_t* find(Bytes key) const noexcept;
    // Brings the key's first slot into the cache (a lookup's one miss, nearly always).
    void prefetch(Bytes key) const noexcept {
        if (key.size() <= kMaxKey) __builtin_prefetch(&slots_[hash(key) & (nslots_ - 1)]);
    }
    // Returns the entry's reference for holds(), or 0 when the key was not indexed (longer
    // than kMaxKey, or the index is full).
    std::uint32_t set(Bytes key, std::uint32_t value);
    // True if entry `ref` (from set(); entries never move) still maps `key` to `value`.
    bool holds(std::uint32_t ref, Bytes key, std::uint32_t value) const noexcept;
    // Room for n keys without growing (growing rehashes everything).
    void reserve(std::size_t n);
    std::size_t size() const noexcept { return used_; }
    // f(key) for every key, in the order they were first set.
    template <typename F>
    void each(F&& f) const {
        walk([&](std::uint32_t, Bytes key) { f(key); });
    }
    static constexpr std::size_t kMaxKey = 40;

private:
    // An entry: the value (4 bytes), the key's length (1) and the key, padded to 8 bytes.
    // Named by its place: chunk number << kUnitBits | offset in the chunk / 8.
    static constexpr std::size_t kChunkBits = 18;  // 256 KiB per chunk (from arena_)
    static constexpr std::size_t kChunk = std::size_t{1} << kChunkBits;
    static constexpr std::size_t kUnitBits = kChunkBits - 3;
    static constexpr std::size_t kMaxChunks = (std::size_t{1} << (32 - kUnitBits)) - 1;  // names + 1 fit 32 bits
    static constexpr std::size_t entry_size(std::size_t key_len) noexcept { return (5 + key_len + 7) & ~std::size_t{7}; }
    static constexpr std::uint8_t kGap = 0x80;  // in place of a key length: padding, not an entry
    std::uint8_t* entry(std::uint32_t ref) const noexcept {
        return chunks_[ref >> kUnitBits] + (std::size_t{ref & ((std::uint32_t{1} << kUnitBits) - 1)} << 3);
    }
    std::uint64_t hash(Bytes key) const noexcept;
    // f(entry name, key) for every entry in order, stepping over the gaps.
    template <typename F>
    void walk(F&& f) const {
        for (std::size_t c = 0; c < chunks_.size(); ++c) {
            const std::uint8_t* p = chunks_[c];
            for (std::size_t off = 0; off < chunk_used_[c];) {
                const std::uint8_t len = p[off + 4];
                if (len & kGap) {
                    off += std::size_t{len & 0x7fu} * 8;
                    continue;
                }
                f(static_cast<std::uint32_t>(c << kUnitBits | off >> 3), Bytes(p + off + 5, len));
                off += entry_size(len);
            }
        }
    }
    void place(std::uint64_t h, std::uint32_t ref) noexcept;
    void resize(std::size_t slots);
    // 0: empty; else (hash >> 32) << 32 | (entry name + 1).
    ZeroedPages slots_mem_;
    std::uint64_t* slots_ = nullptr;  // in slots_mem_
    std::size_t nslots_ = 0;
    Arena arena_;
    std::vector<std::uint8_t*> chunks_;
    std::vector<std::uint32_t> chunk_used_;  // bytes of entries in each chunk
    std::size_t used_ = 0;
    std::uint64_t seed_;
};

class ConnectionTracker;

// True when the logs of trackers that each saw disjoint address pairs prove that one
// tracker fed all their datagrams would have made the same connections: no CID indexed
// by two of them, no CID lookup that missed in one but is indexed by another, no
// short-header probe that starts with another's CID.
bool cross_shard_free(const std::vector<const ConnectionTracker*>& shards);

class ConnectionTracker {
public:
    explicit ConnectionTracker(TrackerOptions opts = {});

    // One UDP datagram. `udp_bytes` is its real payload length when the capture
    // cut it short (0: payload.size()). Per-packet records go to `packets` if given.
    FeedResult feed(std::int64_t ts_us, const net::Endpoint& src, const net::Endpoint& dst, Bytes payload,
                    std::size_t udp_bytes = 0, std::vector<PacketRecord>* packets = nullptr);

    // A hint, for a datagram about to be fed: the index slots its lookups (address pair,
    // a long header's DCID and SCID) will read are fetched meanwhile.
    void prefetch(const net::Endpoint& src, const net::Endpoint& dst, Bytes payload) const noexcept;

    const std::vector<ConnectionPtr>& connections() const noexcept { return conns_; }
    // Each connection's set_sequence() when it was made, in connections() order (sharded
    // decoding merges shards by it; kept apart from the connections, which are cold by then).
    const std::vector<std::uint64_t>& first_seqs() const noexcept { return first_seqs_; }
    const TrackerStats& stats() const noexcept { return stats_; }
    bool is_quic_port(std::uint16_t port) const noexcept;

    // Sharded decoding: several trackers, each fed the datagrams of its own address pairs
    // (in capture order), give the same connections as one tracker fed everything,
    // unless a connection ID links address pairs of different shards (migration, NAT
    // rebinding, a CID reused elsewhere). With the log on, a tracker records what a
    // caller needs to rule that out afterwards (see cross_shard_free()):
    //   missed: every long-header CID lookup that found nothing;  probes: the bytes after
    //   a short header's first byte (up to 20) for every short-header packet looked up by
    //   CID;  overflow: a CID too long for the index. (The CIDs it indexed are its CID
    //   index's keys.)
    struct ShardLog {
        // A run of entries: one length byte, then that many bytes, in blocks that are never
        // moved: a vector grown by doubling copied each log again and again into fresh
        // pages (a third of a big decode's page faults).
        class List {
        public:
            void add(Bytes b) {
                if (kBlock - used_ < 1 + b.size()) {
                    if (used_ != kBlock) blocks_.back().second = used_;
                    blocks_.emplace_back(static_cast<std::uint8_t*>(arena_->allocate(kBlock, 8)), 0);
                    used_ = 0;
                }
                std::uint8_t* to = blocks_.back().first + used_;
                to[0] = static_cast<std::uint8_t>(b.size());
                if (!b.empty()) std::memcpy(to + 1, b.data(), b.size());
                used_ += 1 + b.size();
            }
            template <typename F>
            void each(F&& f) const {
                for (std::size_t k = 0; k < blocks_.size(); ++k) {
                    const std::uint8_t* p = blocks_[k].first;
                    const std::size_t n = k + 1 == blocks_.size() ? used_ : blocks_[k].second;
                    for (std::size_t i = 0; i < n; i += 1 + p[i]) f(Bytes(p + i + 1, p[i]));
                }
            }
            explicit List(Arena& a) : arena_(&a) {}

        private:
            static constexpr std::size_t kBlock = std::size_t{64} << 10;  // > 1 + 255: any entry fits
            Arena* arena_;
            std::vector<std::pair<std::uint8_t*, std::size_t>> blocks_;  // start, bytes used (but the last's)
            std::size_t used_ = kBlock;                                   // in the last block
        };
        Arena arena;  // the lists' blocks (declared first: it outlives them)
        List missed{arena}, probes{arena};
        bool overflow = false;  // a CID too long to check: no proof possible
    };
    void enable_shard_log() { shard_log_ = std::make_unique<ShardLog>(); }
    const ShardLog* shard_log() const noexcept { return shard_log_.get(); }
    // Room for about n connections (and their usual three CIDs) without growing the
    // indexes: a hint, e.g. from the capture's size; more still fit.
    void reserve(std::size_t n);
    // Stamped on connections created from the next feed() (first_seqs()).
    void set_sequence(std::uint64_t seq) noexcept { seq_ = seq; }

private:
    friend bool cross_shard_free(const std::vector<const ConnectionTracker*>& shards);
    Connection* find_tuple(const net::Endpoint& src, const net::Endpoint& dst) const;
    Connection* find_cid(Bytes cid) const;
    Connection* create(std::int64_t ts, const net::Endpoint& src, const net::Endpoint& dst, const PacketHeader& h0);
    std::uint32_t index_cid(Connection& c, Bytes cid);  // by_cid_'s entry reference
    // True if the CID index maps `dcid` to c through an entry c keeps (what find_cid would
    // return, without the lookup's cache misses). src: the packet's sender.
    bool indexed_here(const Connection& c, const net::Endpoint& src, Bytes dcid) const noexcept;
    void index_tuple(Connection& c, const net::Endpoint& a, const net::Endpoint& b);
    template <typename List>
    void add_cid(Connection& c, List& list, Bytes cid, bool index);
    void process(Connection& c, Dir d, std::int64_t ts, const PacketHeader& h, PacketRecord* rec);
    void handle_frames(Connection& c, Dir d, int space, std::int64_t ts, Bytes payload, PacketRecord* rec);
    // A complete ClientHello message for c: parsed and kept; false if malformed.
    bool take_client_hello(Connection& c, Bytes msg);
    const KeyMaterial* initial_keys(Connection& c, std::uint32_t version, Dir d);
    // c's detail, made (in arena_) on first use.
    ConnectionDetail& detail(Connection& c);
    // Copies in arena_, for as long as the connections.
    std::string_view keep(std::string_view s);
    ArenaStrings keep(const std::vector<std::string>& v);
    // Moves fresh_keys_ to its connection's initial_keys_ if that still needs them.
    void settle_fresh_keys();
    const PreparedKeys* prepared(const KeyMaterial& k);
    bool ensure_secrets(Connection& c);
    ConnectionDetail::Keys* tls_keys(Connection& c, Dir d, int space, std::uint32_t version);

    TrackerOptions opts_;
    TrackerStats stats_;
    Arena arena_;  // the connections (declared first: they go before their memory)
    std::vector<ConnectionPtr> conns_;
    std::vector<std::uint64_t> first_seqs_;
    ByteKeyIndex by_cid_;                   // CID bytes -> index in conns_
    ByteKeyIndex by_tuple_;                 // src+dst -> index in conns_
    std::vector<std::size_t> cid_lengths_;  // distinct non-zero CID lengths issued
    // Scratch reused for every packet: decrypted bytes and parsed frames.
    std::vector<std::uint8_t> open_buf_;
    Datagram dg_;  // the datagram being fed, split into packets
    // Keys ready to open packets (AEAD context, HP key schedule) for the connections
    // seen last: a few KB in all, instead of ~2 KB per connection kept for the run.
    struct CachedKeys {
        KeyMaterial material;
        PreparedKeys keys;
    };
    std::array<CachedKeys, 16> key_cache_;
    std::vector<Frame> frames_;
    ClientHello ch_scratch_;  // client_hello_only: each ClientHello is parsed here
    // The Initial keys create() derived for the connection it made (fresh_owner_), until
    // the end of that feed(): most connections need them for that one datagram only
    // (client_hello_only, a ClientHello in one packet), and then never cost an allocation.
    Connection* fresh_owner_ = nullptr;
    Connection::InitialSet fresh_keys_;
    // create() decrypts a connection's first client Initial to learn the roles; process()
    // reuses that result (in open_buf_) instead of decrypting the packet again.
    const std::uint8_t* first_open_packet_ = nullptr;
    OpenedView first_open_;
    std::unique_ptr<ShardLog> shard_log_;
    std::uint64_t seq_ = 0;
};

}  // namespace edge::quic
