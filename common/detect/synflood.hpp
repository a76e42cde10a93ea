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
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "edge/flow.h"
#include "flows/flow_map.hpp"
#include "net/addr.hpp"
#include "net/packet.hpp"

namespace edge::detect {

// HyperLogLog (2^12 registers, ~1.6% error) over addresses: distinct sources.
class DistinctCounter {
public:
    void add(const net::IpAddr& a) noexcept;
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
    double seconds = 0;
    std::vector<Flood> floods;  // destinations first, by peak rate
    std::vector<Mitigation> mitigations;
    std::vector<SecondRow> series;  // per second for every flooded destination
};

class SynFloodDetector {
public:
    explicit SynFloodDetector(SynFloodParams p = {});
    ~SynFloodDetector();
    void add(const net::Packet& p, int64_t ts_us, uint32_t wire_len);
    SynReport finish();

private:
    struct Dst;
    struct Src;
    struct FlowState {
        uint8_t bits = 0;  // 1 SYN, 2 SYN-ACK, 4 completed
    };
    Dst& dst(const net::IpAddr& a);
    Src& src(const net::IpAddr& a);
    uint32_t second(int64_t ts_us);

    SynFloodParams p_;
    int64_t t0_ = -1, tmax_ = 0;
    std::unordered_map<net::IpAddr, std::unique_ptr<Dst>> dsts_;
    std::unordered_map<net::IpAddr, Src> srcs_;
    Dst* last_dst_ = nullptr;
    net::IpAddr last_dst_addr_;
    flows::FlowMap<FlowState> flows_;
    SynReport r_;
};

// Median of a per-second series (0 when empty).
double median(std::vector<uint32_t> v);

}  // namespace edge::detect
