// synflood-guard's adaptive flood state machine, one per protected destination: a window
// of per-interval SYN rates measured while calm; threshold = max(floor, factor x p95).
// Plain C++ (no BPF) so the unit tests drive it directly.
#pragma once
#include <algorithm>
#include <cstdint>
#include <deque>
#include <vector>

namespace sfg {

struct Adaptive {
    std::deque<double> window;   // learned calm rates (the baseline)
    std::deque<double> pending;  // calm rates not yet learned (see learn_delay)
    bool flooded = false;
    uint32_t calm = 0;  // consecutive calm intervals while flooded
    double threshold = 0, baseline = 0, peak = 0;
    uint64_t last_syn = 0;

    enum class Change { none, flood_start, flood_end };

    // A calm rate joins the baseline only after learn_delay more calm intervals: a flood
    // that ramps up spends its first interval or two under the threshold, and those
    // rates, learned at once, would raise the threshold over the flood itself (seen: the
    // first, partial second of a 3.5 k SYN/s flood put the threshold at 3.2 k). When a
    // flood starts, the rates still pending are dropped as its ramp.
    // rate: SYN/s over the last interval; window_n, calm_n and learn_delay in intervals.
    Change update(double rate, double floor, double factor, uint32_t window_n, uint32_t calm_n, uint32_t learn_delay) {
        baseline = 0;
        if (!window.empty()) {
            std::vector<double> w(window.begin(), window.end());
            size_t i = std::min(w.size() - 1, static_cast<size_t>(0.95 * static_cast<double>(w.size())));
            std::nth_element(w.begin(), w.begin() + static_cast<long>(i), w.end());
            baseline = w[i];
        }
        threshold = std::max(floor, factor * baseline);
        if (!flooded) {
            if (rate > threshold) {
                flooded = true;
                calm = 0;
                peak = rate;
                pending.clear();
                return Change::flood_start;
            }
            pending.push_back(rate);
            while (pending.size() > learn_delay) {
                window.push_back(pending.front());
                pending.pop_front();
            }
            while (window.size() > window_n) window.pop_front();
            return Change::none;
        }
        peak = std::max(peak, rate);
        if (rate < threshold / 2) {
            if (++calm >= calm_n) {
                flooded = false;
                return Change::flood_end;
            }
        } else {
            calm = 0;
        }
        return Change::none;
    }
};

}  // namespace sfg
