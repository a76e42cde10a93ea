#include "maglev/maglev.hpp"

#include <algorithm>
#include <unordered_set>

#include <fmt/format.h>

#include "cli/error.hpp"

namespace edge::maglev {

bool is_prime(uint64_t n) {
    if (n < 2) return false;
    if (n % 2 == 0) return n == 2;
    if (n % 3 == 0) return n == 3;
    for (uint64_t i = 5; i * i <= n; i += 6)
        if (n % i == 0 || n % (i + 2) == 0) return false;
    return true;
}

std::pair<uint64_t, uint64_t> nearest_primes(uint64_t n) {
    uint64_t lo = 0, hi = n + 1;
    for (uint64_t c = n; c >= 2; c--)
        if (is_prime(c) && c != n) {
            lo = c;
            break;
        }
    while (!is_prime(hi)) hi++;
    return {lo, hi};
}

void validate(std::span<const Backend> backends, uint64_t size) {
    if (size < min_size || size > max_size)
        usage_error("table size {} is out of range: use a prime from {} to {} (default {})", size, min_size,
                    max_size, default_size);
    if (!is_prime(size)) {
        auto [lo, hi] = nearest_primes(size);
        usage_error("table size {} is not prime (Maglev needs a prime): nearest primes are {} and {}", size, lo, hi);
    }
    if (backends.empty()) usage_error("no backends given: use -b NAME[,NAME...] or --backends FILE");
    if (backends.size() > size)
        usage_error("{} backends do not fit a table of {} entries: use a larger prime -m", backends.size(), size);
    std::unordered_set<std::string_view> seen;
    for (auto& b : backends) {
        if (b.name.empty()) usage_error("a backend has an empty name");
        if (!seen.insert(b.name).second) usage_error("duplicate backend name '{}'", b.name);
        if (b.weight == 0) usage_error("backend '{}' has weight 0: remove it instead", b.name);
    }
}

Permutation permutation(std::string_view name, uint32_t size, const NameKeys& keys) {
    uint64_t h1 = hash::siphash(name, keys.offset);
    uint64_t h2 = hash::siphash(name, keys.skip);
    return {static_cast<uint32_t>(h1 % size), static_cast<uint32_t>(h2 % (size - 1) + 1)};
}

// Each backend keeps its current position in its permutation and steps by `skip` with
// a conditional subtract instead of computing (offset + j*skip) % M per probe, and
// occupancy is a bitmap (8 KiB at M = 65537, so probes stay in L1). Probing taken slots
// is nearly all of the work once the table fills up.
std::vector<uint32_t> populate(std::span<const Permutation> perms, std::span<const uint32_t> weights, uint32_t size) {
    const size_t n = perms.size();
    std::vector<uint32_t> entries(size, 0);
    std::vector<uint64_t> taken((size + 63) / 64, 0);
    std::vector<uint32_t> pos(n), skip(n);
    std::vector<uint64_t> credit(n, 0);
    for (size_t i = 0; i < n; i++) {
        pos[i] = perms[i].offset;
        skip[i] = perms[i].skip;
    }
    uint32_t maxw = *std::max_element(weights.begin(), weights.end());
    bool equal = std::all_of(weights.begin(), weights.end(), [&](uint32_t w) { return w == maxw; });
    uint32_t filled = 0;
    auto claim = [&](size_t i) {
        uint32_t p = pos[i];
        const uint32_t s = skip[i];
        while (taken[p >> 6] & (uint64_t{1} << (p & 63))) {
            p += s;
            if (p >= size) p -= size;
        }
        taken[p >> 6] |= uint64_t{1} << (p & 63);
        entries[p] = static_cast<uint32_t>(i);
        p += s;
        if (p >= size) p -= size;
        pos[i] = p;
    };
    while (true) {
        for (size_t i = 0; i < n; i++) {
            if (!equal) {
                // Credit-based turns: each round a backend earns its weight and claims
                // one slot per max-weight earned, so slots follow weights.
                credit[i] += weights[i];
                if (credit[i] < maxw) continue;
                credit[i] -= maxw;
            }
            claim(i);
            if (++filled == size) return entries;
        }
    }
}

Table::Table(std::vector<Backend> backends, uint32_t size, const NameKeys& keys)
    : backends_(std::move(backends)), size_(size) {
    validate(backends_, size);
    std::vector<Permutation> perms;
    std::vector<uint32_t> weights;
    perms.reserve(backends_.size());
    for (auto& b : backends_) {
        perms.push_back(permutation(b.name, size, keys));
        weights.push_back(b.weight);
    }
    entries_ = populate(perms, weights, size);
}

std::vector<uint64_t> Table::counts() const {
    std::vector<uint64_t> c(backends_.size(), 0);
    for (uint32_t e : entries_) c[e]++;
    return c;
}

}  // namespace edge::maglev
