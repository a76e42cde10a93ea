// SYN-flood detection over packets (offline captures, or any packet source):
// per destination and per source SYN rates by second, SYN / SYN-ACK / handshake
// completion ratios, half-open flows, spoofing signs (distinct sources, TTL spread),
// and the mitigation a router should apply (RTBH or FlowSpec, for bgp-announce).
//
//   SynFloodDetector d(params);
//   for each packet: d.add(packet, ts_us, wire_len);
//   SynReport r = d.finish();
//
// A destination is flooded in a second when its SYN rate reaches
//   threshold = max(floor_pps, factor * baseline)
// where baseline is the median of its per-second SYN rate over the capture (or a
// given value), AND fewer than max_completion of its SYN flows complete the handshake
// (a flash crowd completes its handshakes, a flood does not).
#pragma once
#include <array>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "edge/flow.h"
#include "net/addr.hpp"
#include "net/packet.hpp"

namespace edge::detect {

// HyperLogLog (2^12 registers, ~1.6% error) over addresses: distinct sources.
class DistinctCounter {
public:
    void add(const net::IpAddr& a) noexcept;
    void add_hash(uint64_t h) noexcept {  // h = addr_hash(address)
        const size_t idx = h >> 52;        // 12 bits
        const uint64_t rest = (h << 12) | (1ULL << 11);
        const auto rank = static_cast<uint8_t>(__builtin_clzll(rest) + 1);
        if (rank > reg_[idx]) reg_[idx] = rank;
    }
    double estimate() const noexcept;

private:
    std::array<uint8_t, 4096> reg_{};
};

struct SynFloodParams {
    double floor_pps = 1000;      // fixed floor: SYN/s to one destination
    double factor = 8;            // threshold = max(floor, factor * baseline)
    double baseline_pps = -1;     // < 0: the destination's median SYN/s over the capture
    double src_floor_pps = 1000;  // one source's SYN/s that is a flood on its own
    double max_completion = 0.5;  // floods complete fewer handshakes than this share
    int prefix4 = 24, prefix6 = 48;  // source prefixes in top_prefixes
    size_t top = 5;
    double rtbh_bps = 1e9;        // auto: blackhole the victim at or above this attack rate
    std::string action = "auto";  // auto | rtbh | flowspec
};

struct Count {
    std::string key;  // address or prefix
    uint64_t syn = 0;
};

struct Flood {
    std::string kind;  // "destination" (the victim is dst) or "source" (one source floods)
    net::IpAddr dst;   // victim (for a source flood: its main target)
    net::IpAddr src;   // source floods only
    std::vector<uint16_t> dst_ports;  // ports with >= 1/10 of the busiest port's SYNs, busiest first
    int64_t start_us = 0, end_us = 0;  // first and last flooded second (absolute)
    double start_s = 0, duration_s = 0;  // relative to the capture's first packet
    uint64_t syn = 0;            // SYNs (in the whole capture, to dst / from src)
    uint64_t syn_flows = 0;      // distinct SYN flows
    uint64_t syn_ack = 0;        // SYN-ACKs back
    uint64_t completed = 0;      // handshakes completed (client ACK after the SYN)
    uint64_t half_open = 0;      // syn_flows - completed
    double peak_syn_pps = 0, mean_syn_pps = 0, peak_bps = 0;
    double baseline_pps = 0, threshold_pps = 0;
    double syn_ack_ratio = 0, completion_ratio = 0;
    uint64_t distinct_sources = 0;
    double sources_per_syn = 0;
    uint32_t ttl_distinct = 0;  // distinct TTL / hop-limit values of the SYNs
    double ttl_stdev = 0;
    bool spoofed = false;
    std::vector<std::string> spoofing_signs;
    double top_source_share = 0;  // share of SYNs from the top source
    std::vector<Count> top_sources, top_prefixes;
};

struct Mitigation {
    std::string action;        // "rtbh" | "flowspec"
    net::Prefix prefix;        // destination prefix (the victim /32 or /128)
    std::optional<net::Prefix> source;  // flowspec: one source prefix
    std::vector<uint16_t> dst_ports;    // flowspec
    std::string reason;        // "syn_flood" | "syn_flood_source"
    size_t flood = 0;  // index in SynReport::floods
};

struct SecondRow {
    net::IpAddr dst;
    uint32_t second = 0;
    uint64_t syn = 0, syn_ack = 0, syn_bytes = 0;
};

struct SynReport {
    uint64_t packets = 0, bytes = 0, tcp = 0, syn = 0, syn_ack = 0, rst = 0, completed = 0;
    uint64_t destinations = 0, sources = 0, syn_flows = 0;
    double flow_sample_rate = 1;  // < 1: syn_flows / completed estimated from sampled flows
    double seconds = 0;
    std::vector<Flood> floods;  // destinations first, by peak rate
    std::vector<Mitigation> mitigations;
    std::vector<SecondRow> series;  // per second for every flooded destination
};

// Open addressing over addresses, for millions of (spoofed) sources: 8-byte slots
// (32-bit hash tag + index) over a dense vector of entries. No per-entry allocation.
template <typename V>
class AddrTable {
public:
    struct Entry {
        net::IpAddr addr;
        V value{};
    };
    explicit AddrTable(size_t initial = 64) { reset(initial); }
    // The entry of `a` (hash h, which must be addr_hash(a): growing and the filter
    // below rehash with it), inserted when missing unless the table holds `cap`
    // entries already (then nullptr).
    V* get(const net::IpAddr& a, uint64_t h, size_t cap = SIZE_MAX) {
        return get_if(h, cap, [&](const net::IpAddr& e) { return same(e, a); }, [&] { return a; });
    }
    V* find(const net::IpAddr& a, uint64_t h) {
        return find_if(h, [&](const net::IpAddr& e) { return same(e, a); });
    }
    // The same for an IPv4 address given as its 4 wire-order bytes loaded into a
    // uint32_t (memcpy), without building an IpAddr unless it is inserted.
    V* get_v4(uint32_t wire, uint64_t h, size_t cap = SIZE_MAX) {
        return get_if(h, cap, [&](const net::IpAddr& e) { return same_v4(e, wire); }, [&] { return v4_addr(wire); });
    }
    V* find_v4(uint32_t wire, uint64_t h) {
        return find_if(h, [&](const net::IpAddr& e) { return same_v4(e, wire); });
    }
    void prefetch(uint64_t h) const noexcept {
        __builtin_prefetch(&slots_[h & mask_]);
        if (!bits_.empty()) __builtin_prefetch(&bits_[bit_of(h) >> 6]);
    }
    size_t size() const noexcept { return items_.size(); }
    const std::vector<Entry>& entries() const noexcept { return items_; }
    std::vector<Entry>& entries() noexcept { return items_; }

    static net::IpAddr v4_addr(uint32_t wire) {
        uint8_t b[4];
        std::memcpy(b, &wire, 4);
        return net::IpAddr::v4(std::array<uint8_t, 4>{b[0], b[1], b[2], b[3]});
    }
    // IpAddr's operator== (family and all 16 bytes), without a memcmp call.
    static bool same(const net::IpAddr& x, const net::IpAddr& y) noexcept {
        uint64_t a[2], b[2];
        std::memcpy(a, x.raw().data(), 16);
        std::memcpy(b, y.raw().data(), 16);
        return x.family() == y.family() && ((a[0] ^ b[0]) | (a[1] ^ b[1])) == 0;
    }
    // An IPv4 IpAddr keeps its last 12 bytes zero: the first 4 decide.
    static bool same_v4(const net::IpAddr& x, uint32_t wire) noexcept {
        uint32_t a;
        std::memcpy(&a, x.raw().data(), 4);
        return x.is_v4() && a == wire;
    }

private:
    template <typename Eq, typename Make>
    V* get_if(uint64_t h, size_t cap, Eq&& eq, Make&& make) {
        if (!bits_.empty() && !has_bit(h) && items_.size() >= cap) return nullptr;  // absent, and full
        size_t i = h & mask_;
        const uint32_t tag = static_cast<uint32_t>(h >> 32);
        while (uint64_t s = slots_[i]) {
            if (static_cast<uint32_t>(s >> 32) == tag) {
                Entry& e = items_[static_cast<uint32_t>(s) - 1];
                if (eq(e.addr)) return &e.value;
            }
            i = (i + 1) & mask_;
        }
        if (items_.size() >= cap) {
            if (bits_.empty()) build_bits();
            return nullptr;
        }
        items_.push_back(Entry{make(), V{}});
        slots_[i] = uint64_t{tag} << 32 | items_.size();
        if (!bits_.empty()) set_bit(h);
        if (items_.size() * 2 > slots_.size()) grow();
        return &items_.back().value;
    }
    template <typename Eq>
    V* find_if(uint64_t h, Eq&& eq) {
        if (!bits_.empty() && !has_bit(h)) return nullptr;
        size_t i = h & mask_;
        const uint32_t tag = static_cast<uint32_t>(h >> 32);
        while (uint64_t s = slots_[i]) {
            if (static_cast<uint32_t>(s >> 32) == tag) {
                Entry& e = items_[static_cast<uint32_t>(s) - 1];
                if (eq(e.addr)) return &e.value;
            }
            i = (i + 1) & mask_;
        }
        return nullptr;
    }
    void reset(size_t cap) {
        size_t c = 16;
        while (c < cap * 2) c <<= 1;
        slots_.assign(c, 0);
        mask_ = c - 1;
    }
    void grow();
    // A table at its cap still answers every lookup, and under a spoofed flood most
    // ask for addresses it does not hold: probing to an empty slot each time costs
    // cache misses and mispredicted branches. From the first refused insert on, one
    // bit per hash (16 bits per entry, ~6% false positives) says "certainly absent".
    void build_bits();
    size_t bit_of(uint64_t h) const noexcept { return (h >> 12) & bits_mask_; }
    bool has_bit(uint64_t h) const noexcept { return bits_[bit_of(h) >> 6] >> (bit_of(h) & 63) & 1; }
    void set_bit(uint64_t h) noexcept { bits_[bit_of(h) >> 6] |= uint64_t{1} << (bit_of(h) & 63); }
    std::vector<uint64_t> bits_;
    size_t bits_mask_ = 0;
    std::vector<uint64_t> slots_;
    std::vector<Entry> items_;
    size_t mask_ = 0;
};

// The hash AddrTable and DistinctCounter use (a 64-bit mix of family and address).
uint64_t addr_hash(const net::IpAddr& a) noexcept;

// The fields of a packet the detector reads (named as in net::Packet).
struct SynPacket {
    uint8_t ip_version = 0, proto = 0, ttl = 0, tcp_flags = 0;
    bool has_l4 = false;
    uint16_t dport = 0;
    net::IpAddr src, dst;
    edge_flow_key key{};
};

// A lean parser for the common frame of a capture: Ethernet (no VLAN) or raw IP,
// IPv4 without options, not a fragment, a complete TCP header. Fills p exactly as
// net::parse_packet would (status ok) and returns true; false for every other frame
// (then the caller uses net::parse_packet).
bool parse_tcp4_fast(std::span<const uint8_t> d, net::LinkType link, SynPacket& p) noexcept;

class SynFloodDetector {
public:
    explicit SynFloodDetector(SynFloodParams p = {});
    ~SynFloodDetector();
    void add(const net::Packet& p, int64_t ts_us, uint32_t wire_len);
    void add(const SynPacket& p, int64_t ts_us, uint32_t wire_len);
    // The lean path for the common frame, parsing and counting in one step: for every
    // frame parse_tcp4_fast accepts, the same as parse_tcp4_fast + add(SynPacket), and
    // true. False for every other frame, which is then not counted: parse it with
    // net::parse_packet and call add(Packet).
    bool add_frame(std::span<const uint8_t> d, net::LinkType link, int64_t ts_us, uint32_t wire_len);
    // A hint, no effect on results: a frame that add_frame will see a few frames from
    // now has the table slots it will touch fetched into the cache meanwhile.
    void prefetch_frame(std::span<const uint8_t> d, net::LinkType link) const noexcept;
    SynReport finish();

private:
    struct Dst;
    struct Src {
        uint32_t syn = 0, syn_flows = 0, completed = 0;
        uint32_t cur_sec = 0, cur = 0, peak = 0;
        uint32_t first_sec = 0, last_sec = 0;
        uint32_t last_dst = 0;  // index in dst_list_
    };
    // Flows seen with a SYN: 64-bit fingerprints of the flow key (the low two bits
    // hold the state: 1 SYN seen, 2 handshake completed); 0 = empty slot. Exact up
    // to kMaxFlows flows; beyond, flows are sampled (a flow is kept when the top
    // `level` bits of its fingerprint are 0, half of them per level) and counts made
    // from kept flows weigh 2^level, so the table stays cache-sized under a flood.
    class FlowSet {
    public:
        static constexpr size_t kMaxFlows = size_t{1} << 16;
        FlowSet() { slots_.assign(4096, 0); }
        // nullptr: not sampled at the current level (or absent and !insert).
        uint64_t* get(uint64_t fp, bool insert);
        void prefetch(uint64_t fp) const noexcept { __builtin_prefetch(&slots_[(fp >> 2) & (slots_.size() - 1)]); }
        size_t size() const noexcept { return size_; }
        uint32_t weight() const noexcept { return 1u << level_; }
        unsigned level() const noexcept { return level_; }

    private:
        bool kept(uint64_t fp) const noexcept { return level_ == 0 || (fp >> (64 - level_)) == 0; }
        void rebuild(size_t nslots);
        std::vector<uint64_t> slots_, spare_;
        size_t size_ = 0;
        unsigned level_ = 0;
    };
    // Per-second SYN counts by source, approximate (count-min with conservative
    // update, 4 x 8192 counters, cleared every second): a source gets an exact
    // entry in srcs_ only once it sends `promote_` SYNs within one second, so a
    // spoofed flood of millions of one-SYN sources costs no per-source memory.
    struct SrcSketch {
        std::vector<uint16_t> c = std::vector<uint16_t>(4 * 8192, 0);
        uint32_t sec = UINT32_MAX;
        uint32_t add(uint64_t h, uint32_t now);
        void prefetch(uint64_t h) const noexcept {
            for (size_t r = 0; r < 4; r++) __builtin_prefetch(&c[r * 8192 + ((h >> (13 * r)) & 8191)]);
        }
    };
    template <typename P>
    void add_impl(const P& p, int64_t ts_us, uint32_t wire_len);
    uint32_t dst_index(const net::IpAddr& a);
    uint32_t dst_index_v4(uint32_t wire);
    void syn_v4(const uint8_t* ip, const uint8_t* th, uint32_t sec, uint32_t wire_len);
    // The SYN bookkeeping both paths share (generic add_impl and the IPv4 fast path):
    // the destination's counters, then the flow and the exact source entry, if any.
    inline void count_syn_dst(Dst& d, uint32_t sec, uint32_t wire_len, uint16_t dport, uint8_t ttl, uint64_t hs);
    inline void count_syn_flow(Dst& d, Src* s, uint64_t fp, uint32_t di, uint32_t sec);
    uint32_t second(int64_t ts_us);

    SynFloodParams p_;
    int64_t t0_ = -1, tmax_ = 0;
    int64_t sec_lo_ = 0, sec_hi_ = -1;  // [lo, hi): the timestamps of second sec_cur_
    uint32_t sec_cur_ = 0;
    AddrTable<uint32_t> dsts_;                 // address -> index + 1 in dst_list_
    std::vector<std::unique_ptr<Dst>> dst_list_;
    uint32_t last_dst_ = UINT32_MAX;
    net::IpAddr last_dst_addr_;
    AddrTable<Src> srcs_;
    SrcSketch sketch_;
    uint32_t promote_ = 1;
    uint32_t mask4_ = 0;  // the /prefix4 netmask, wire order loaded into a uint32_t
    DistinctCounter all_sources_;
    FlowSet flows_;
    SynReport r_;
};

// Median of a per-second series (0 when empty).
double median(std::vector<uint32_t> v);

}  // namespace edge::detect
