#include "detect/synflood.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "net/flow.hpp"

namespace edge::detect {

namespace {
inline uint64_t fmix(uint64_t x) noexcept {
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 33;
    return x;
}

// A fingerprint of a TCP flow key (not the SipHash flow hash: no key needed here, and
// 64 bits make a collision among millions of flows unlikely enough for statistics).
inline uint64_t flow_fp(const edge_flow_key& k) noexcept {
    uint64_t w[5];
    std::memcpy(w, &k, sizeof w);
    uint64_t x = w[0] * 0x9e3779b97f4a7c15ULL ^ w[2] * 0xc2b2ae3d27d4eb4fULL ^ w[4] * 0x165667b19e3779f9ULL;
    if (k.family != EDGE_FAMILY_V4) x ^= w[1] * 0x27d4eb2f165667c5ULL ^ w[3] * 0x94d049bb133111ebULL;
    x = fmix(x);
    return (x & ~uint64_t{3}) ? x & ~uint64_t{3} : 4;
}

inline uint32_t load32(const uint8_t* p) noexcept {
    uint32_t x;
    std::memcpy(&x, p, 4);
    return x;
}

// flow_fp of the key parse_tcp4_fast builds, from the wire: src and dst addresses
// and the two ports, each as loaded by load32 (the key's words 0, 2 and 4).
[[gnu::always_inline]] inline uint64_t flow_fp_v4(uint32_t src, uint32_t dst, uint32_t ports) noexcept {
    const uint64_t w4 = uint64_t{ports} | uint64_t{net::kProtoTcp} << 32 | uint64_t{EDGE_FAMILY_V4} << 40;
    uint64_t x = fmix(uint64_t{src} * 0x9e3779b97f4a7c15ULL ^ uint64_t{dst} * 0xc2b2ae3d27d4eb4fULL ^
                      w4 * 0x165667b19e3779f9ULL);
    return (x & ~uint64_t{3}) ? x & ~uint64_t{3} : 4;
}

// addr_hash of an IPv4 address from its wire bytes as loaded by load32.
[[gnu::always_inline]] inline uint64_t addr_hash_v4(uint32_t wire) noexcept {
    return fmix(uint64_t{wire} * 0x9e3779b97f4a7c15ULL ^ 0x632be59bd9b4e019ULL ^ static_cast<uint64_t>(net::Family::v4));
}

// The address with the bits after `len` cleared (a /len prefix's network address).
net::IpAddr masked_addr(const net::IpAddr& a, int len) noexcept {
    if (a.is_v4()) {
        const auto& r = a.raw();
        uint32_t x = uint32_t(r[0]) << 24 | uint32_t(r[1]) << 16 | uint32_t(r[2]) << 8 | r[3];
        x &= len <= 0 ? 0 : len >= 32 ? ~uint32_t{0} : ~uint32_t{0} << (32 - len);
        return net::IpAddr::v4(std::array<uint8_t, 4>{uint8_t(x >> 24), uint8_t(x >> 16), uint8_t(x >> 8), uint8_t(x)});
    }
    std::array<uint8_t, 16> raw = a.raw();
    int n = a.is_v4() ? 4 : 16;
    for (int i = 0; i < n; i++) {
        int keep = std::clamp(len - 8 * i, 0, 8);
        raw[static_cast<size_t>(i)] &= static_cast<uint8_t>(0xff00 >> keep);
    }
    return a.is_v4() ? net::IpAddr::v4(std::array<uint8_t, 4>{raw[0], raw[1], raw[2], raw[3]}) : net::IpAddr::v6(raw);
}

constexpr size_t kMaxTracked = 4096;  // per-destination source / prefix tables (heavy hitters)
}  // namespace

uint64_t addr_hash(const net::IpAddr& a) noexcept {
    uint64_t w[2];
    std::memcpy(w, a.raw().data(), 16);
    return fmix(w[0] * 0x9e3779b97f4a7c15ULL ^ (w[1] + 0x632be59bd9b4e019ULL) ^ static_cast<uint64_t>(a.family()));
}

template <typename V>
void AddrTable<V>::grow() {
    reset(items_.size() * 2);
    for (size_t n = 0; n < items_.size(); n++) {
        uint64_t h = addr_hash(items_[n].addr);
        size_t i = h & mask_;
        while (slots_[i]) i = (i + 1) & mask_;
        slots_[i] = uint64_t{static_cast<uint32_t>(h >> 32)} << 32 | (n + 1);
    }
}
template <typename V>
void AddrTable<V>::build_bits() {
    size_t n = 64;
    while (n < items_.size() * 16 && n < (size_t{1} << 30)) n <<= 1;
    bits_.assign(n / 64, 0);
    bits_mask_ = n - 1;
    for (auto& e : items_) set_bit(addr_hash(e.addr));
}
template class AddrTable<uint64_t>;
template class AddrTable<uint32_t>;

void DistinctCounter::add(const net::IpAddr& a) noexcept { add_hash(addr_hash(a)); }


double DistinctCounter::estimate() const noexcept {
    constexpr double m = 4096;
    double sum = 0;
    int zeros = 0;
    for (uint8_t r : reg_) {
        sum += std::ldexp(1.0, -r);
        if (!r) zeros++;
    }
    double alpha = 0.7213 / (1 + 1.079 / m);
    double e = alpha * m * m / sum;
    if (e <= 2.5 * m && zeros) e = m * std::log(m / zeros);  // linear counting for small sets
    return e;
}

double median(std::vector<uint32_t> v) {
    if (v.empty()) return 0;
    size_t mid = v.size() / 2;
    std::nth_element(v.begin(), v.begin() + static_cast<long>(mid), v.end());
    double hi = v[mid];
    if (v.size() % 2) return hi;
    double lo = *std::max_element(v.begin(), v.begin() + static_cast<long>(mid));
    return (lo + hi) / 2;
}

struct SynFloodDetector::Dst {
    net::IpAddr addr;
    uint64_t syn = 0, syn_flows = 0, syn_ack = 0, completed = 0, syn_bytes = 0;
    std::vector<uint32_t> sec_syn, sec_syn_ack;
    std::vector<uint64_t> sec_bytes;
    std::unordered_map<uint16_t, uint64_t> ports;
    uint64_t* last_port_count = nullptr;  // ports[last_port]
    uint16_t last_port = 0;
    AddrTable<uint64_t> sources;   // capped at kMaxTracked keys
    AddrTable<uint64_t> prefixes;  // network addresses of the /prefix4 or /prefix6; capped too
    std::array<uint32_t, 256> ttl{};
    DistinctCounter distinct;
};

SynFloodDetector::SynFloodDetector(SynFloodParams p) : p_(std::move(p)), srcs_(1 << 10) {
    promote_ = static_cast<uint32_t>(std::clamp(p_.src_floor_pps / 4, 1.0, 64.0));
    const int len = p_.prefix4;
    const uint32_t host = len <= 0 ? 0 : len >= 32 ? ~uint32_t{0} : ~uint32_t{0} << (32 - len);
    const uint8_t m[4] = {uint8_t(host >> 24), uint8_t(host >> 16), uint8_t(host >> 8), uint8_t(host)};
    mask4_ = load32(m);
}

uint32_t SynFloodDetector::SrcSketch::add(uint64_t h, uint32_t now) {
    if (now != sec) {
        std::fill(c.begin(), c.end(), 0);
        sec = now;
    }
    size_t i[4];
    uint32_t m = UINT32_MAX;
    for (size_t r = 0; r < 4; r++) {
        i[r] = r * 8192 + ((h >> (13 * r)) & 8191);
        m = std::min<uint32_t>(m, c[i[r]]);
    }
    if (m < 65535) m++;
    for (size_t r = 0; r < 4; r++)  // raise to m: a store without a (badly predicted) branch
        c[i[r]] = static_cast<uint16_t>(std::max<uint32_t>(c[i[r]], m));
    return m;
}
SynFloodDetector::~SynFloodDetector() = default;

uint32_t SynFloodDetector::dst_index(const net::IpAddr& a) {
    if (last_dst_ != UINT32_MAX && last_dst_addr_ == a) return last_dst_;
    uint32_t* slot = dsts_.get(a, addr_hash(a));
    if (!*slot) {
        dst_list_.push_back(std::make_unique<Dst>());
        dst_list_.back()->addr = a;
        *slot = static_cast<uint32_t>(dst_list_.size());
    }
    last_dst_ = *slot - 1;
    last_dst_addr_ = a;
    return last_dst_;
}

uint32_t SynFloodDetector::dst_index_v4(uint32_t wire) {
    if (last_dst_ != UINT32_MAX && AddrTable<uint32_t>::same_v4(last_dst_addr_, wire)) return last_dst_;
    uint32_t* slot = dsts_.get_v4(wire, addr_hash_v4(wire));
    if (!*slot) {
        dst_list_.push_back(std::make_unique<Dst>());
        dst_list_.back()->addr = AddrTable<uint32_t>::v4_addr(wire);
        *slot = static_cast<uint32_t>(dst_list_.size());
    }
    last_dst_ = *slot - 1;
    last_dst_addr_ = dst_list_[last_dst_]->addr;
    return last_dst_;
}

uint64_t* SynFloodDetector::FlowSet::get(uint64_t fp, bool insert) {
    if (!kept(fp)) return nullptr;
    size_t mask = slots_.size() - 1;
    size_t i = (fp >> 2) & mask;
    while (uint64_t s = slots_[i]) {
        if ((s & ~uint64_t{3}) == fp) return &slots_[i];
        i = (i + 1) & mask;
    }
    if (!insert) return nullptr;
    if ((size_ + 1) * 2 > slots_.size()) {
        if (size_ + 1 > kMaxFlows) {
            level_++;  // keep half of the flows from now on
            rebuild(slots_.size());
        } else {
            rebuild(slots_.size() * 2);
        }
        return get(fp, true);
    }
    slots_[i] = fp;
    size_++;
    return &slots_[i];
}

void SynFloodDetector::FlowSet::rebuild(size_t nslots) {
    // The old slots go to spare_, whose memory the next rebuild reuses: under a flood
    // the sampling level rises every few hundred thousand flows, at the same size.
    spare_.assign(nslots, 0);
    spare_.swap(slots_);
    const std::vector<uint64_t>& old = spare_;
    size_t mask = slots_.size() - 1;
    size_ = 0;
    for (uint64_t s : old) {
        if (!s || !kept(s & ~uint64_t{3})) continue;
        size_t i = ((s & ~uint64_t{3}) >> 2) & mask;
        while (slots_[i]) i = (i + 1) & mask;
        slots_[i] = s;
        size_++;
    }
}

uint32_t SynFloodDetector::second(int64_t ts_us) {
    if (t0_ < 0) t0_ = ts_us;
    if (ts_us > tmax_) tmax_ = ts_us;
    if (ts_us >= sec_lo_ && ts_us < sec_hi_) return sec_cur_;  // no division for most packets
    if (ts_us < t0_) return 0;
    sec_cur_ = static_cast<uint32_t>((ts_us - t0_) / 1000000);
    sec_lo_ = t0_ + int64_t{sec_cur_} * 1000000;
    sec_hi_ = sec_lo_ + 1000000;
    return sec_cur_;
}

template <typename V>
[[gnu::always_inline]] inline void bump(std::vector<V>& v, uint32_t i, uint64_t by = 1) {
    if (v.size() <= i) [[unlikely]]
        v.resize(i + 1);
    v[i] += static_cast<V>(by);
}

namespace {

// The frames the fast paths take: Ethernet or raw IP, IPv4 without options, not a
// fragment, TCP with its whole header inside the IP length and the capture; the IP and TCP
// headers, or false (the full parser takes every other frame).
[[gnu::always_inline]] inline bool tcp4_headers(std::span<const uint8_t> d, net::LinkType link, const uint8_t*& ip,
                                                const uint8_t*& th) noexcept {
    std::size_t off;
    if (link == net::LinkType::ethernet) {
        if (d.size() < 14 + 20 || d[12] != 0x08 || d[13] != 0x00) return false;
        off = 14;
    } else if (link == net::LinkType::raw_ip) {
        if (d.size() < 20) return false;
        off = 0;
    } else {
        return false;
    }
    ip = d.data() + off;
    if (ip[0] != 0x45 || ip[9] != net::kProtoTcp) return false;  // IPv4, no options, TCP
    const std::size_t total = std::size_t(ip[2]) << 8 | ip[3];
    if (total < 20 || ((ip[6] & 0x3f) | ip[7]) != 0) return false;  // fragments: the full parser
    const std::size_t cap = std::min(off + total, d.size()), pos = off + 20;
    if (pos + 20 > cap) return false;
    th = d.data() + pos;
    const std::size_t doff = std::size_t(th[12] >> 4) * 4;
    if (doff < 20 || pos + doff > cap) return false;
    return true;
}

}  // namespace

bool parse_tcp4_fast(std::span<const uint8_t> d, net::LinkType link, SynPacket& p) noexcept {
    const uint8_t *ip, *th;
    if (!tcp4_headers(d, link, ip, th)) return false;
    p.ip_version = 4;
    p.proto = net::kProtoTcp;
    p.ttl = ip[8];
    p.tcp_flags = th[13];
    p.has_l4 = true;
    p.dport = static_cast<uint16_t>(th[2] << 8 | th[3]);
    p.src = net::IpAddr::v4(std::array<uint8_t, 4>{ip[12], ip[13], ip[14], ip[15]});
    p.dst = net::IpAddr::v4(std::array<uint8_t, 4>{ip[16], ip[17], ip[18], ip[19]});
    p.key = edge_flow_key{};
    std::memcpy(p.key.src, ip + 12, 4);
    std::memcpy(p.key.dst, ip + 16, 4);
    std::memcpy(&p.key.sport, th, 2);  // wire order, as parse_packet stores them
    std::memcpy(&p.key.dport, th + 2, 2);
    p.key.proto = net::kProtoTcp;
    p.key.family = EDGE_FAMILY_V4;
    return true;
}

void SynFloodDetector::add(const net::Packet& p, int64_t ts_us, uint32_t wire_len) { add_impl(p, ts_us, wire_len); }
void SynFloodDetector::add(const SynPacket& p, int64_t ts_us, uint32_t wire_len) { add_impl(p, ts_us, wire_len); }

inline void SynFloodDetector::count_syn_dst(Dst& d, uint32_t sec, uint32_t wire_len, uint16_t dport, uint8_t ttl,
                                            uint64_t hs) {
    d.syn++;
    d.syn_bytes += wire_len;
    bump(d.sec_syn, sec);
    bump(d.sec_bytes, sec, wire_len);
    if (!d.last_port_count || d.last_port != dport) {
        d.last_port_count = &d.ports[dport];  // node-based map: the reference stays valid
        d.last_port = dport;
    }
    ++*d.last_port_count;
    d.ttl[ttl]++;
    d.distinct.add_hash(hs);
}

inline void SynFloodDetector::count_syn_flow(Dst& d, Src* s, uint64_t fp, uint32_t di, uint32_t sec) {
    uint32_t new_flow = 0;
    uint64_t* fs = flows_.get(fp, true);
    if (fs && !(*fs & 1)) {
        *fs |= 1;
        new_flow = flows_.weight();
        d.syn_flows += new_flow;
        r_.syn_flows += new_flow;
    }
    if (s) {
        s->syn++;
        s->syn_flows += new_flow;
        s->last_dst = di;
        s->last_sec = sec;
        if (sec != s->cur_sec) {
            s->cur_sec = sec;
            s->cur = 0;
        }
        if (++s->cur > s->peak) s->peak = s->cur;
    }
}

template <typename P>
void SynFloodDetector::add_impl(const P& p, int64_t ts_us, uint32_t wire_len) {
    r_.packets++;
    r_.bytes += wire_len;
    uint32_t sec = second(ts_us);
    if (p.proto != net::kProtoTcp || !p.has_l4 || p.ip_version == 0) return;
    r_.tcp++;
    const uint8_t f = p.tcp_flags;
    using TF = net::TcpFlags;
    if ((f & TF::syn) && !(f & (TF::ack | TF::rst))) {
        r_.syn++;
        const uint64_t fp = flow_fp(p.key);
        flows_.prefetch(fp);  // a cache miss under a flood: started before the other work
        const uint64_t hs = addr_hash(p.src);
        sketch_.prefetch(hs);
        net::IpAddr net = masked_addr(p.src, p.src.is_v4() ? p_.prefix4 : p_.prefix6);
        const uint64_t hn = addr_hash(net);
        uint32_t di = dst_index(p.dst);
        Dst& d = *dst_list_[di];
        d.sources.prefetch(hs);
        d.prefixes.prefetch(hn);
        count_syn_dst(d, sec, wire_len, p.dport, p.ttl, hs);
        if (uint64_t* c = d.sources.get(p.src, hs, kMaxTracked)) ++*c;
        if (uint64_t* c = d.prefixes.get(net, hn, kMaxTracked)) ++*c;
        all_sources_.add_hash(hs);
        Src* s = srcs_.find(p.src, hs);
        if (!s && sketch_.add(hs, sec) >= promote_) {
            // Busy within this second: exact from here on, starting from the
            // SYNs the sketch saw this second (at most promote_).
            s = srcs_.get(p.src, hs);
            s->first_sec = s->cur_sec = sec;
            s->syn = s->syn_flows = s->cur = s->peak = promote_ - 1;
        }
        count_syn_flow(d, s, fp, di, sec);
        return;
    }
    if ((f & TF::syn) && (f & TF::ack)) {
        r_.syn_ack++;
        Dst& d = *dst_list_[dst_index(p.src)];  // the server answers
        d.syn_ack++;
        bump(d.sec_syn_ack, sec);
        return;
    }
    if (f & TF::rst) {
        r_.rst++;
        return;
    }
    if ((f & TF::ack) && flows_.size()) {
        uint64_t* fs = flows_.get(flow_fp(p.key), false);
        if (fs && (*fs & 1) && !(*fs & 2)) {
            *fs |= 2;
            const uint32_t w = flows_.weight();
            r_.completed += w;
            dst_list_[dst_index(p.dst)]->completed += w;
            if (Src* s = srcs_.find(p.src, addr_hash(p.src))) s->completed += w;
        }
    }
}

bool SynFloodDetector::add_frame(std::span<const uint8_t> d, net::LinkType link, int64_t ts_us, uint32_t wire_len) {
    // The frames parse_tcp4_fast takes.
    const uint8_t *ip, *th;
    if (!tcp4_headers(d, link, ip, th)) return false;

    // add_impl for an IPv4 TCP packet.
    r_.packets++;
    r_.bytes += wire_len;
    const uint32_t sec = second(ts_us);
    r_.tcp++;
    const uint8_t f = th[13];
    using TF = net::TcpFlags;
    if ((f & TF::syn) && !(f & (TF::ack | TF::rst))) {
        syn_v4(ip, th, sec, wire_len);
        return true;
    }
    if ((f & TF::syn) && (f & TF::ack)) {
        r_.syn_ack++;
        Dst& dd = *dst_list_[dst_index_v4(load32(ip + 12))];  // the server answers
        dd.syn_ack++;
        bump(dd.sec_syn_ack, sec);
        return true;
    }
    if (f & TF::rst) {
        r_.rst++;
        return true;
    }
    if ((f & TF::ack) && flows_.size()) {
        const uint32_t src = load32(ip + 12), dst = load32(ip + 16);
        uint64_t* fs = flows_.get(flow_fp_v4(src, dst, load32(th)), false);
        if (fs && (*fs & 1) && !(*fs & 2)) {
            *fs |= 2;
            const uint32_t w = flows_.weight();
            r_.completed += w;
            dst_list_[dst_index_v4(dst)]->completed += w;
            if (Src* s = srcs_.find_v4(src, addr_hash_v4(src))) s->completed += w;
        }
    }
    return true;
}

void SynFloodDetector::prefetch_frame(std::span<const uint8_t> d, net::LinkType link) const noexcept {
    std::size_t off;
    if (link == net::LinkType::ethernet) {
        if (d.size() < 14 + 20 + 20 || d[12] != 0x08 || d[13] != 0x00) return;
        off = 14;
    } else if (link == net::LinkType::raw_ip) {
        if (d.size() < 20 + 20) return;
        off = 0;
    } else {
        return;
    }
    const uint8_t* ip = d.data() + off;
    if (ip[0] != 0x45 || ip[9] != net::kProtoTcp) return;
    const uint8_t* th = ip + 20;
    const uint8_t f = th[13];
    using TF = net::TcpFlags;
    const uint32_t src = load32(ip + 12), dst = load32(ip + 16);
    if ((f & TF::syn) && !(f & (TF::ack | TF::rst))) {
        flows_.prefetch(flow_fp_v4(src, dst, load32(th)));
        const uint64_t hs = addr_hash_v4(src);
        sketch_.prefetch(hs);
        srcs_.prefetch(hs);
        if (last_dst_ != UINT32_MAX && AddrTable<uint32_t>::same_v4(last_dst_addr_, dst)) {
            const Dst& dd = *dst_list_[last_dst_];
            dd.sources.prefetch(hs);
            dd.prefixes.prefetch(addr_hash_v4(src & mask4_));
        }
    } else if ((f & (TF::syn | TF::rst | TF::ack)) == TF::ack && flows_.size()) {
        flows_.prefetch(flow_fp_v4(src, dst, load32(th)));
    }
}

// The SYN branch of add_impl for an IPv4 TCP packet (ip: its header, th: the TCP header).
void SynFloodDetector::syn_v4(const uint8_t* ip, const uint8_t* th, uint32_t sec, uint32_t wire_len) {
    r_.syn++;
    const uint32_t src = load32(ip + 12), dst = load32(ip + 16);
    const uint64_t fp = flow_fp_v4(src, dst, load32(th));
    flows_.prefetch(fp);
    const uint64_t hs = addr_hash_v4(src);
    sketch_.prefetch(hs);
    const uint32_t pfx = src & mask4_;
    const uint64_t hn = addr_hash_v4(pfx);
    const uint32_t di = dst_index_v4(dst);
    Dst& d = *dst_list_[di];
    d.sources.prefetch(hs);
    d.prefixes.prefetch(hn);
    count_syn_dst(d, sec, wire_len, static_cast<uint16_t>(th[2] << 8 | th[3]), ip[8], hs);
    if (uint64_t* c = d.sources.get_v4(src, hs, kMaxTracked)) ++*c;
    if (uint64_t* c = d.prefixes.get_v4(pfx, hn, kMaxTracked)) ++*c;
    all_sources_.add_hash(hs);
    Src* s = srcs_.find_v4(src, hs);
    if (!s && sketch_.add(hs, sec) >= promote_) {
        s = srcs_.get_v4(src, hs);
        s->first_sec = s->cur_sec = sec;
        s->syn = s->syn_flows = s->cur = s->peak = promote_ - 1;
    }
    count_syn_flow(d, s, fp, di, sec);
}

namespace {
template <typename Name>
std::vector<Count> top_of(const AddrTable<uint64_t>& m, size_t n, Name&& name) {
    std::vector<std::pair<uint64_t, std::string>> v;
    v.reserve(m.size());
    for (auto& e : m.entries()) v.push_back({e.value, name(e.addr)});
    size_t k = std::min(n, v.size());
    std::partial_sort(v.begin(), v.begin() + static_cast<long>(k), v.end(),
                      [](auto& a, auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
    std::vector<Count> out;
    for (size_t i = 0; i < k; i++) out.push_back({v[i].second, v[i].first});
    return out;
}
// Ports with at least a tenth of the busiest port's SYNs, busiest first.
std::vector<uint16_t> flooded_ports(const std::unordered_map<uint16_t, uint64_t>& m) {
    std::vector<std::pair<uint64_t, uint16_t>> ports;
    uint64_t top = 0;
    for (auto& [port, c] : m) top = std::max(top, c);
    for (auto& [port, c] : m)
        if (c * 10 >= top) ports.push_back({c, port});
    std::sort(ports.begin(), ports.end(), [](auto& a, auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
    std::vector<uint16_t> out;
    for (auto& pc : ports) out.push_back(pc.second);
    return out;
}
double ratio(uint64_t a, uint64_t b) { return b ? static_cast<double>(a) / static_cast<double>(b) : 0.0; }
}  // namespace

SynReport SynFloodDetector::finish() {
    SynReport r = r_;
    r.destinations = dsts_.size();
    r.flow_sample_rate = 1.0 / flows_.weight();
    r.sources = static_cast<uint64_t>(std::llround(all_sources_.estimate()));
    uint32_t nsec = t0_ < 0 ? 0 : static_cast<uint32_t>((tmax_ - t0_) / 1000000) + 1;
    r.seconds = t0_ < 0 ? 0 : static_cast<double>(tmax_ - t0_) / 1e6;

    for (auto& dp : dst_list_) {
        Dst& d = *dp;
        const net::IpAddr& addr = d.addr;
        if (!d.syn) continue;
        std::vector<uint32_t> series(d.sec_syn);
        series.resize(nsec, 0);
        double base = p_.baseline_pps >= 0 ? p_.baseline_pps : median(series);
        double thr = std::max(p_.floor_pps, p_.factor * base);
        double completion = ratio(d.completed, d.syn_flows);
        int first = -1, last = -1;
        double peak = 0, peak_bps = 0, flooded_syn = 0;
        for (uint32_t s = 0; s < nsec; s++) {
            if (series[s] < thr) continue;
            if (first < 0) first = static_cast<int>(s);
            last = static_cast<int>(s);
            peak = std::max(peak, double(series[s]));
            flooded_syn += series[s];
            if (s < d.sec_bytes.size()) peak_bps = std::max(peak_bps, 8.0 * static_cast<double>(d.sec_bytes[s]));
        }
        if (first < 0 || completion >= p_.max_completion) continue;
        Flood fl;
        fl.kind = "destination";
        fl.dst = addr;
        fl.dst_ports = flooded_ports(d.ports);
        fl.start_us = t0_ + int64_t(first) * 1000000;
        fl.end_us = t0_ + int64_t(last + 1) * 1000000;
        fl.start_s = first;
        fl.duration_s = last - first + 1;
        fl.syn = d.syn;
        fl.syn_flows = d.syn_flows;
        fl.syn_ack = d.syn_ack;
        fl.completed = d.completed;
        fl.half_open = d.syn_flows > d.completed ? d.syn_flows - d.completed : 0;
        fl.peak_syn_pps = peak;
        fl.mean_syn_pps = flooded_syn / fl.duration_s;
        fl.peak_bps = peak_bps;
        fl.baseline_pps = base;
        fl.threshold_pps = thr;
        fl.syn_ack_ratio = ratio(d.syn_ack, d.syn);
        fl.completion_ratio = completion;
        double est = d.distinct.estimate();
        fl.distinct_sources = static_cast<uint64_t>(std::llround(est));
        if (d.sources.size() < kMaxTracked) fl.distinct_sources = d.sources.size();  // exact when small
        fl.sources_per_syn = ratio(fl.distinct_sources, d.syn_flows);
        double mean = 0, var = 0;
        for (int t = 0; t < 256; t++) mean += double(t) * d.ttl[t];
        mean /= double(d.syn);
        for (int t = 0; t < 256; t++) {
            var += d.ttl[t] * (t - mean) * (t - mean);
            if (d.ttl[t]) fl.ttl_distinct++;
        }
        fl.ttl_stdev = std::sqrt(var / double(d.syn));
        fl.top_sources = top_of(d.sources, p_.top, [](const net::IpAddr& a) { return a.to_string(); });
        fl.top_prefixes = top_of(d.prefixes, p_.top, [&](const net::IpAddr& a) {
            return net::Prefix::masked(a, a.is_v4() ? p_.prefix4 : p_.prefix6)->to_string();
        });
        fl.top_source_share = fl.top_sources.empty() ? 0 : ratio(fl.top_sources[0].syn, d.syn);
        if (fl.distinct_sources >= 256 && fl.sources_per_syn >= 0.3) fl.spoofing_signs.push_back("many_sources");
        if (fl.ttl_distinct >= 32 && fl.ttl_stdev >= 16) fl.spoofing_signs.push_back("ttl_spread");
        if (fl.syn_ack_ratio > 0.5 && fl.completion_ratio < 0.05 && fl.distinct_sources >= 256)
            fl.spoofing_signs.push_back("syn_acks_unanswered");
        fl.spoofed = !fl.spoofing_signs.empty() && fl.distinct_sources >= 256;
        r.floods.push_back(std::move(fl));
    }
    std::sort(r.floods.begin(), r.floods.end(), [](const Flood& a, const Flood& b) {
        return a.peak_syn_pps != b.peak_syn_pps ? a.peak_syn_pps > b.peak_syn_pps : a.dst < b.dst;
    });
    size_t ndst = r.floods.size();

    // Single sources flooding on their own.
    std::vector<Flood> by_src;
    for (auto& e : srcs_.entries()) {
        const net::IpAddr& addr = e.addr;
        const Src& s = e.value;
        if (s.peak < p_.src_floor_pps) continue;
        double completion = ratio(s.completed, s.syn_flows);
        if (completion >= p_.max_completion) continue;
        Flood fl;
        fl.kind = "source";
        fl.src = addr;
        fl.dst = dst_list_[s.last_dst]->addr;
        fl.dst_ports = flooded_ports(dst_list_[s.last_dst]->ports);
        fl.start_us = t0_ + int64_t(s.first_sec) * 1000000;
        fl.end_us = t0_ + int64_t(s.last_sec + 1) * 1000000;
        fl.start_s = s.first_sec;
        fl.duration_s = s.last_sec - s.first_sec + 1;
        fl.syn = s.syn;
        fl.syn_flows = s.syn_flows;
        fl.completed = s.completed;
        fl.half_open = s.syn_flows > s.completed ? s.syn_flows - s.completed : 0;
        fl.peak_syn_pps = s.peak;
        fl.mean_syn_pps = double(s.syn) / fl.duration_s;
        fl.threshold_pps = p_.src_floor_pps;
        fl.completion_ratio = completion;
        fl.distinct_sources = 1;
        fl.top_source_share = 1;
        by_src.push_back(std::move(fl));
    }
    std::sort(by_src.begin(), by_src.end(), [](const Flood& a, const Flood& b) {
        return a.peak_syn_pps != b.peak_syn_pps ? a.peak_syn_pps > b.peak_syn_pps : a.src < b.src;
    });
    for (auto& f : by_src) r.floods.push_back(std::move(f));

    // Mitigations: one per destination flood; source floods not already covered.
    std::vector<std::string> seen;
    auto add = [&](Mitigation m) {
        std::string k = m.action + m.prefix.to_string() + (m.source ? m.source->to_string() : "");
        if (std::find(seen.begin(), seen.end(), k) != seen.end()) return;
        seen.push_back(k);
        r.mitigations.push_back(std::move(m));
    };
    for (size_t i = 0; i < r.floods.size(); i++) {
        const Flood& fl = r.floods[i];
        Mitigation m;
        m.flood = i;
        m.prefix = net::Prefix::host(fl.dst);
        m.dst_ports = fl.dst_ports;
        if (fl.dst_ports.size() > 8) m.dst_ports.clear();  // many ports: all of TCP SYN
        bool rtbh = p_.action == "rtbh" || (p_.action == "auto" && fl.peak_bps >= p_.rtbh_bps);
        if (i < ndst) {
            m.reason = "syn_flood";
            if (rtbh) {
                m.action = "rtbh";
                m.dst_ports.clear();
            } else {
                m.action = "flowspec";
                // A few sources carry the flood: filter just them.
                if (!fl.spoofed && fl.top_source_share >= 0.9 && !fl.top_sources.empty())
                    m.source = net::Prefix::host(net::IpAddr::parse(fl.top_sources[0].key).value());
            }
        } else {
            m.reason = "syn_flood_source";
            m.action = p_.action == "rtbh" ? "rtbh" : "flowspec";
            if (m.action == "flowspec") m.source = net::Prefix::host(fl.src);
            else m.dst_ports.clear();
        }
        add(std::move(m));
    }

    for (size_t i = 0; i < ndst; i++) {
        const Dst& d = *dst_list_[*dsts_.find(r.floods[i].dst, addr_hash(r.floods[i].dst)) - 1];
        for (uint32_t s = 0; s < nsec; s++) {
            SecondRow row;
            row.dst = r.floods[i].dst;
            row.second = s;
            row.syn = s < d.sec_syn.size() ? d.sec_syn[s] : 0;
            row.syn_ack = s < d.sec_syn_ack.size() ? d.sec_syn_ack[s] : 0;
            row.syn_bytes = s < d.sec_bytes.size() ? d.sec_bytes[s] : 0;
            r.series.push_back(row);
        }
    }
    return r;
}

}  // namespace edge::detect
