// edgectl lab demo's success-rate check (cmd/edgectl/lab_stats.hpp): a binomial test.
#include <doctest/doctest.h>

#include <cmath>

#include "../../cmd/edgectl/lab_stats.hpp"

using edgectl::binomial_tail;
using edgectl::meets_success_rate;

TEST_CASE("binomial tail against values computed by hand") {
    CHECK(binomial_tail(30, 0, 0.01) == 1.0);
    CHECK(binomial_tail(30, 1, 0.01) == doctest::Approx(1 - std::pow(0.99, 30)));
    // P(X >= 2) = 1 - 0.99^30 - 30 * 0.01 * 0.99^29
    CHECK(binomial_tail(30, 2, 0.01) == doctest::Approx(1 - std::pow(0.99, 30) - 30 * 0.01 * std::pow(0.99, 29)));
    CHECK(binomial_tail(10, 10, 0.5) == doctest::Approx(std::pow(0.5, 10)));
    CHECK(binomial_tail(5, 6, 0.5) == 0.0);
}

TEST_CASE("99% success: how many misses a sample may show") {
    CHECK(meets_success_rate(30, 30, 0.99));
    CHECK(meets_success_rate(28, 30, 0.99));   // 2 of 30: P = 3.6%
    CHECK_FALSE(meets_success_rate(27, 30, 0.99));  // 3 of 30: P = 0.3%
    CHECK(meets_success_rate(57, 60, 0.99));
    CHECK_FALSE(meets_success_rate(56, 60, 0.99));
    CHECK_FALSE(meets_success_rate(0, 10, 0.99));
    CHECK_FALSE(meets_success_rate(90, 100, 0.99));
    CHECK_FALSE(meets_success_rate(11, 10, 0.99));  // more answers than requests: nonsense
    CHECK(meets_success_rate(0, 0, 0.99));  // no sample (the demo checks tries >= 10 apart)
}
