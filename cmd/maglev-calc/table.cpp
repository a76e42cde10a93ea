// maglev-calc table: entries per backend and imbalance; --dump prints the table.
#include <algorithm>
#include <numeric>

#include <fmt/format.h>

#include "options.hpp"

namespace maglev_calc {

int run_table(const Options& o, edge::out::Output& out) {
    auto backends = load_backends(o.backends, "backends");
    auto table = build_table(backends, o.size);
    auto counts = table.counts();
    const double total_w = std::accumulate(backends.begin(), backends.end(), 0.0,
                                           [](double a, const edge::maglev::Backend& b) { return a + b.weight; });
    const double m = table.size();

    if (o.dump) {
        for (uint32_t i = 0; i < table.size(); i++) {
            auto& name = backends[table.entries()[i]].name;
            edge::out::Record r("maglev_entry");
            r.num("index", uint64_t{i}).str("backend", name);
            r.text(fmt::format("{} {}", i, name));
            out.emit(r);
        }
        return 0;
    }

    size_t w = 7;
    for (auto& b : backends) w = std::max(w, b.name.size());
    out.line(fmt::format("Maglev table: {} backends, {} entries (M)", backends.size(), table.size()));
    out.line(fmt::format("{:<{}}  {:>7}  {:>9}  {:>8}  {:>8}", "backend", w, "weight", "entries", "share", "expected"));
    // Imbalance compares each backend's entries with its fair share (M * weight / total).
    double worst = 0, least = 1e300;
    uint64_t mn = UINT64_MAX, mx = 0;
    for (size_t i = 0; i < backends.size(); i++) {
        double expected = m * backends[i].weight / total_w;
        double ratio = counts[i] / expected;
        worst = std::max(worst, ratio);
        least = std::min(least, ratio);
        mn = std::min(mn, counts[i]);
        mx = std::max(mx, counts[i]);
        edge::out::Record r("maglev_backend");
        r.str("backend", backends[i].name)
            .num("weight", uint64_t{backends[i].weight})
            .num("entries", counts[i])
            .real("share", counts[i] / m, 6)
            .real("expected_share", expected / m, 6);
        r.text(fmt::format("{:<{}}  {:>7}  {:>9}  {:>7.3f}%  {:>7.3f}%", backends[i].name, w, backends[i].weight,
                           counts[i], 100.0 * counts[i] / m, 100.0 * expected / m));
        out.emit(r);
    }
    edge::out::Record s("maglev_table");
    s.num("size", uint64_t{table.size()})
        .num("backends", uint64_t{backends.size()})
        .num("min_entries", mn)
        .num("max_entries", mx)
        .real("avg_entries", m / backends.size(), 2)
        .real("imbalance", worst, 6)
        .real("min_ratio", least, 6);
    s.text(fmt::format("min {} max {} avg {:.2f} entries; imbalance (max/fair share) {:.4f}", mn, mx,
                       m / backends.size(), worst));
    out.emit(s);
    return 0;
}

}  // namespace maglev_calc
