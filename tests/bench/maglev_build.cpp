// Benchmark: Maglev table build, common/maglev vs. the textbook reference
// (tests/support/maglev_reference.hpp), alternating A B A B and reporting medians.
// Run through tests/bench/maglev-build; never as a test.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "../support/maglev_reference.hpp"
#include "maglev/maglev.hpp"

using namespace edge::maglev;
using clk = std::chrono::steady_clock;

namespace {
double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}
}  // namespace

int main(int argc, char** argv) {
    int runs = argc > 1 ? std::stoi(argv[1]) : 7;
    fmt::print("{:>6} {:>8} {:>12} {:>12} {:>8}  {}\n", "N", "M", "fast_ms", "ref_ms", "speedup", "identical");
    bool all_same = true;
    for (uint32_t m : {65537u, 655373u}) {
        for (size_t n : {10u, 100u, 1000u, 5000u}) {
            std::vector<Permutation> perms;
            std::vector<uint32_t> w(n, 1);
            for (size_t i = 0; i < n; i++) perms.push_back(permutation("backend-" + std::to_string(i), m));
            std::vector<double> fast, ref;
            bool same = true;
            for (int r = 0; r < runs; r++) {
                auto t0 = clk::now();
                auto a = populate(perms, w, m);
                auto t1 = clk::now();
                auto b = edge::test::reference_populate(perms, w, m);
                auto t2 = clk::now();
                same = same && a == b;
                fast.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
                ref.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
            }
            all_same = all_same && same;
            double f = median(fast), rf = median(ref);
            fmt::print("{:>6} {:>8} {:>12.3f} {:>12.3f} {:>7.2f}x  {}\n", n, m, f, rf, rf / f, same ? "yes" : "NO");
            std::fflush(stdout);
        }
    }
    return all_same ? 0 : 1;
}
