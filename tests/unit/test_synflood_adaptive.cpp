// synflood-guard's adaptive flood detector (cmd/synflood-guard/adaptive.hpp).
#include <doctest/doctest.h>

#include "../../cmd/synflood-guard/adaptive.hpp"

using sfg::Adaptive;
using Change = Adaptive::Change;

namespace {
// floor 1000 SYN/s, factor 4, a 30-interval window, 3 calm intervals end a flood.
Change feed(Adaptive& a, double rate, uint32_t delay = 5) { return a.update(rate, 1000, 4, 30, 3, delay); }
}  // namespace

TEST_CASE("a calm rate becomes the baseline after the learning delay") {
    Adaptive a;
    for (int i = 0; i < 5; i++) CHECK(feed(a, 500) == Change::none);
    CHECK(a.window.empty());  // all five still pending
    feed(a, 500);
    CHECK(a.window.size() == 1);
    for (int i = 0; i < 10; i++) feed(a, 500);
    CHECK(a.baseline == 500);
    CHECK(a.threshold == 2000);  // 4 x 500 over the floor
    CHECK(feed(a, 1900) == Change::none);
    CHECK(feed(a, 2100) == Change::flood_start);
}

TEST_CASE("a flood's ramp does not raise the threshold over the flood") {
    // 28 quiet intervals, then a flood whose first two intervals are partial (800, 900
    // SYN/s, under the floor) before its full 3000 SYN/s.
    auto run = [](uint32_t delay) {
        Adaptive a;
        for (int i = 0; i < 28; i++) feed(a, 0, delay);
        feed(a, 800, delay);
        feed(a, 900, delay);
        return feed(a, 3000, delay);
    };
    CHECK(run(5) == Change::flood_start);
    // Learned at once, the ramp is the window's p95: the threshold would be 3200.
    CHECK(run(0) == Change::none);
}

TEST_CASE("the ramp is dropped when the flood starts, and the flood ends after calm intervals") {
    Adaptive a;
    for (int i = 0; i < 20; i++) feed(a, 10);
    feed(a, 900);
    CHECK(feed(a, 5000) == Change::flood_start);
    CHECK(a.pending.empty());
    CHECK(a.peak == 5000);
    CHECK(feed(a, 8000) == Change::none);
    CHECK(a.peak == 8000);
    CHECK(feed(a, 400) == Change::none);  // under half the threshold: calm 1
    CHECK(feed(a, 600) == Change::none);  // over half: calm again from 0
    CHECK(feed(a, 10) == Change::none);
    CHECK(feed(a, 10) == Change::none);
    CHECK(feed(a, 10) == Change::flood_end);
    for (int i = 0; i < 10; i++) feed(a, 10);
    // None of the flood's rates, nor its 900 SYN/s ramp, was learned.
    for (double r : a.window) CHECK(r == 10);
}

TEST_CASE("the window keeps only its last N learned rates") {
    Adaptive a;
    for (int i = 0; i < 40; i++) feed(a, 2000);  // a busy service: threshold 8000
    for (int i = 0; i < 40; i++) feed(a, 100);
    CHECK(a.window.size() == 30);
    feed(a, 100);
    CHECK(a.baseline == 100);
    CHECK(a.threshold == 1000);
}
