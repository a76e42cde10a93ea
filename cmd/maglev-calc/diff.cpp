// maglev-calc diff: how much of the table (and of a capture's flows) moves when the
// backend set changes. Maglev's promise is "little more than the necessary minimum".
#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "cli/error.hpp"
#include "flows/flow_map.hpp"
#include "options.hpp"
#include "pcap/filter.hpp"
#include "pcap/scan.hpp"

namespace maglev_calc {

int run_diff(const Options& o, edge::out::Output& out) {
    auto from = load_backends(o.backends, "backends (the current set)");
    if (o.to.list.empty() && o.to.file.empty())
        edge::usage_error("no new backend set given: use --to NAME[,NAME...] or --to-file FILE");
    auto to = load_backends(o.to, "new backends (--to)");
    auto a = build_table(from, o.size);
    auto b = build_table(to, o.size);
    const uint32_t m = a.size();

    struct Change {
        uint64_t before = 0, after = 0, gained = 0, lost = 0;
    };
    std::map<std::string, Change> per;
    for (auto& x : from) per[x.name];
    for (auto& x : to) per[x.name];
    uint64_t moved = 0, moved_between_survivors = 0;
    for (uint32_t i = 0; i < m; i++) {
        const auto& an = from[a.entries()[i]].name;
        const auto& bn = to[b.entries()[i]].name;
        per[an].before++;
        per[bn].after++;
        if (an == bn) continue;
        moved++;
        per[an].lost++;
        per[bn].gained++;
        // Moves that were not forced: the entry's old backend is still there.
        bool old_survives = std::any_of(to.begin(), to.end(), [&](auto& x) { return x.name == an; });
        if (old_survives) moved_between_survivors++;
    }
    // The necessary minimum: entries a set change must move at least (those of removed
    // backends, and those new backends must take from the others).
    uint64_t minimum = 0;
    for (auto& [name, c] : per) minimum += std::max(c.before, c.after) - std::min(c.before, c.after);
    minimum /= 2;

    for (auto& [bname, c] : per) {
        const std::string& name = bname;  // a plain reference: lambdas cannot capture bindings (clang 14)
        bool removed = std::none_of(to.begin(), to.end(), [&](auto& x) { return x.name == name; });
        bool added = std::none_of(from.begin(), from.end(), [&](auto& x) { return x.name == name; });
        edge::out::Record r("maglev_diff_backend");
        r.str("backend", name)
            .str("change", removed ? "removed" : added ? "added" : "kept")
            .num("entries_before", c.before)
            .num("entries_after", c.after)
            .num("gained", c.gained)
            .num("lost", c.lost);
        r.text(fmt::format("{:<20} {:<8} entries {:>8} -> {:<8} gained {:>8} lost {:>8}", name,
                           removed ? "removed" : added ? "added" : "kept", c.before, c.after, c.gained, c.lost));
        out.emit(r);
    }
    edge::out::Record s("maglev_diff");
    s.num("size", uint64_t{m})
        .num("entries_moved", moved)
        .real("moved_share", double(moved) / m, 6)
        .num("minimum_moved", minimum)
        .real("minimum_share", double(minimum) / m, 6)
        .num("moved_between_kept", moved_between_survivors)
        .real("moved_between_kept_share", double(moved_between_survivors) / m, 6);
    s.text(fmt::format("entries moved: {} of {} ({:.3f}%); necessary minimum {:.3f}%; moved between kept backends {:.3f}%",
                       moved, m, 100.0 * moved / m, 100.0 * minimum / m, 100.0 * moved_between_survivors / m));
    out.emit(s);

    if (o.pcap.empty()) return 0;
    edge::pcap::Reader r(o.pcap);
    edge::pcap::apply_filter(r, o.filter);
    struct F {
        uint64_t packets, bytes;
        bool moves;
    };
    edge::flows::FlowMap<F> flows;
    const auto key = hash_key(o);
    uint64_t moved_flows = 0, moved_packets = 0, moved_bytes = 0, packets = 0, bytes = 0;
    auto st = edge::pcap::scan(r, [&](const edge::net::Packet& p, const edge::pcap::Frame& fr) {
        uint64_t h = edge::hash::flow_hash(p.key, key);
        bool fresh;
        F& f = flows.get(p.key, h, fresh);
        if (fresh) {
            f.moves = from[a.lookup(h)].name != to[b.lookup(h)].name;
            moved_flows += f.moves;
        }
        packets++;
        bytes += fr.wire_len;
        if (f.moves) {
            moved_packets++;
            moved_bytes += fr.wire_len;
        }
    });
    edge::out::Record c("maglev_diff_pcap");
    auto share = [](uint64_t x, uint64_t n) { return n ? double(x) / n : 0.0; };
    c.num("flows", uint64_t{flows.size()})
        .num("flows_moved", moved_flows)
        .real("flows_moved_share", share(moved_flows, flows.size()), 6)
        .num("packets", packets)
        .num("packets_moved", moved_packets)
        .num("bytes", bytes)
        .num("bytes_moved", moved_bytes);
    c.text(fmt::format("capture: {} of {} flows change backend ({:.3f}%), {} of {} packets, {} of {} bytes", moved_flows,
                       flows.size(), 100 * share(moved_flows, flows.size()), moved_packets, packets, moved_bytes, bytes));
    out.emit(c);
    return edge::pcap::report(r, st);
}

}  // namespace maglev_calc
