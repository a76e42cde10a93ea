// The demo's success-rate check: a claim such as ">= 99% of requests succeed" measured on a
// few dozen requests. Requiring zero misses there fails a system that meets the claim in
// a fair share of runs (at exactly 99%, 26% of 30-request runs show a miss); the check is
// instead a one-sided binomial test.
#pragma once
#include <cmath>
#include <cstdint>

namespace edgectl {

// P(X >= misses) for X ~ Binomial(tries, miss_rate): how likely a system that misses at
// exactly `miss_rate` is to miss at least this often.
inline double binomial_tail(uint64_t tries, uint64_t misses, double miss_rate) {
    if (misses == 0) return 1.0;
    if (misses > tries) return 0.0;
    double term = std::pow(1.0 - miss_rate, double(tries)), below = 0;  // P(X = 0)
    for (uint64_t k = 0; k < misses; ++k) {
        below += term;
        term *= double(tries - k) / double(k + 1) * miss_rate / (1.0 - miss_rate);
    }
    return below >= 1.0 ? 0.0 : 1.0 - below;
}

// True when `ok` of `tries` is consistent with a success rate of at least `rate` (a one-sided
// test at significance `alpha`): too many misses for that rate fail it.
inline bool meets_success_rate(uint64_t ok, uint64_t tries, double rate, double alpha = 0.01) {
    if (ok > tries) return false;
    return binomial_tail(tries, tries - ok, 1.0 - rate) >= alpha;
}

}  // namespace edgectl
