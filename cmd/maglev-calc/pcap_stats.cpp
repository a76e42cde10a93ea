// maglev-calc pcap: packets, bytes and flows per backend for a capture, with imbalance.
#include <algorithm>
#include <iterator>
#include <numeric>

#include <fmt/format.h>

#include "flows/flow_map.hpp"
#include "options.hpp"
#include "pcap/filter.hpp"
#include "pcap/parallel_scan.hpp"

namespace maglev_calc {

int run_pcap(const Options& o, edge::out::Output& out) {
    auto backends = load_backends(o.backends, "backends");
    auto table = build_table(backends, o.size);
    const auto key = hash_key(o);
    edge::pcap::Reader r(o.pcap);
    edge::pcap::apply_filter(r, o.filter);

    struct Acc {
        uint64_t packets = 0, bytes = 0, flows = 0;
    };
    // One state per worker thread: counters and the flows it saw, merged below.
    struct State {
        std::vector<Acc> acc;
        edge::flows::FlowMap<char> seen{1 << 16};
        struct Item {
            edge_flow_key key;
            uint64_t hash;
            uint32_t len;
        };
        // Packets are handled in batches: hash and prefetch the flow-map slot of each,
        // then count them, so the map's cache misses overlap instead of queueing.
        Item batch[16];
        size_t n = 0;
        void flush(const edge::maglev::Table& t) {
            for (size_t i = 0; i < n; i++) {
                Acc& a = acc[t.lookup(batch[i].hash)];
                a.packets++;
                a.bytes += batch[i].len;
                bool fresh;
                seen.get(batch[i].key, batch[i].hash, fresh);
            }
            n = 0;
        }
    };
    std::vector<State> states(o.threads ? o.threads : edge::pcap::scan_threads(4));
    for (auto& s : states) s.acc.resize(backends.size());
    auto st = edge::pcap::scan_parallel(r, states, [&](State& s, const edge::net::Packet& p, const edge::pcap::Frame& fr) {
        auto& it = s.batch[s.n++];
        it.key = p.key;
        it.hash = edge::hash::flow_hash(p.key, key);
        it.len = fr.wire_len;
        s.seen.prefetch(it.hash);
        if (s.n == std::size(s.batch)) s.flush(table);
    });
    std::vector<Acc> acc(backends.size());
    for (auto& s : states) {
        s.flush(table);
        for (size_t i = 0; i < acc.size(); i++) {
            acc[i].packets += s.acc[i].packets;
            acc[i].bytes += s.acc[i].bytes;
        }
    }
    // Distinct flows: a flow seen by several workers counts once.
    auto& all = states[0].seen;
    for (size_t w = 1; w < states.size(); w++)
        states[w].seen.for_each([&](const edge_flow_key& k, uint64_t h, char) {
            bool fresh;
            all.get(k, h, fresh);
        });
    all.for_each([&](const edge_flow_key&, uint64_t h, char) { acc[table.lookup(h)].flows++; });

    const double total_w = std::accumulate(backends.begin(), backends.end(), 0.0,
                                           [](double s, const edge::maglev::Backend& b) { return s + b.weight; });
    uint64_t packets = 0, bytes = 0, flows = 0;
    for (auto& a : acc) {
        packets += a.packets;
        bytes += a.bytes;
        flows += a.flows;
    }
    // Imbalance: the busiest backend against its fair (weighted) share; 1.0 is perfect.
    auto imbalance = [&](auto field) {
        double worst = 0;
        uint64_t total = 0;
        for (auto& a : acc) total += field(a);
        if (!total) return 0.0;
        for (size_t i = 0; i < acc.size(); i++)
            worst = std::max(worst, field(acc[i]) / (total * backends[i].weight / total_w));
        return worst;
    };
    size_t w = 7;
    for (auto& b : backends) w = std::max(w, b.name.size());
    out.line(fmt::format("{:<{}}  {:>10}  {:>14}  {:>9}", "backend", w, "packets", "bytes", "flows"));
    for (size_t i = 0; i < backends.size(); i++) {
        edge::out::Record rec("maglev_pcap_backend");
        rec.str("backend", backends[i].name)
            .num("weight", uint64_t{backends[i].weight})
            .num("packets", acc[i].packets)
            .num("bytes", acc[i].bytes)
            .num("flows", acc[i].flows);
        rec.text(fmt::format("{:<{}}  {:>10}  {:>14}  {:>9}", backends[i].name, w, acc[i].packets, acc[i].bytes,
                             acc[i].flows));
        out.emit(rec);
    }
    edge::out::Record s("maglev_pcap");
    double fi = imbalance([](const Acc& a) { return a.flows; });
    double pi = imbalance([](const Acc& a) { return a.packets; });
    double bi = imbalance([](const Acc& a) { return a.bytes; });
    s.num("frames", st.frames)
        .num("packets", packets)
        .num("bytes", bytes)
        .num("flows", flows)
        .real("flow_imbalance", fi, 4)
        .real("packet_imbalance", pi, 4)
        .real("byte_imbalance", bi, 4)
        .num("skipped_non_ip", st.non_ip)
        .num("skipped_truncated", st.truncated)
        .num("skipped_malformed", st.malformed)
        .boolean("file_truncated", st.file_truncated);
    s.text(fmt::format("total: {} packets, {} bytes, {} flows; imbalance (max/fair share): flows {:.3f}, packets {:.3f}, "
                       "bytes {:.3f}",
                       packets, bytes, flows, fi, pi, bi));
    out.emit(s);
    return edge::pcap::report(r, st);
}

}  // namespace maglev_calc
