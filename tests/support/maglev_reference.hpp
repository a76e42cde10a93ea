// Test-only reference Maglev population, written the way most implementations do it:
// per backend, the next candidate (offset + next * skip) % M is computed on demand and
// a `while (slot taken) next++` loop probes. Used to check that common/maglev builds
// identical tables, and as the baseline in tests/bench/maglev-build.
#pragma once
#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "maglev/maglev.hpp"

namespace edge::test {

inline std::vector<uint32_t> reference_populate(std::span<const maglev::Permutation> perms,
                                                std::span<const uint32_t> weights, uint32_t m) {
    const size_t n = perms.size();
    std::vector<int64_t> entry(m, -1);
    std::vector<uint64_t> next(n, 0);
    std::vector<uint64_t> credit(n, 0);
    uint32_t maxw = *std::max_element(weights.begin(), weights.end());
    uint32_t filled = 0;
    while (true) {
        for (size_t i = 0; i < n; i++) {
            credit[i] += weights[i];
            if (credit[i] < maxw) continue;
            credit[i] -= maxw;
            uint64_t c = (perms[i].offset + next[i] * perms[i].skip) % m;
            while (entry[c] >= 0) {
                next[i]++;
                c = (perms[i].offset + next[i] * perms[i].skip) % m;
            }
            entry[c] = static_cast<int64_t>(i);
            next[i]++;
            if (++filled == m) {
                std::vector<uint32_t> out(m);
                for (uint32_t k = 0; k < m; k++) out[k] = static_cast<uint32_t>(entry[k]);
                return out;
            }
        }
    }
}

}  // namespace edge::test
