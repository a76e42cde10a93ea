// bgp-announce's flat RIB table against std::map as the model: inserts, updates, erases
// (backward shift across wrapped probe runs), growth and iteration must always agree.
#include <doctest/doctest.h>

#include <map>
#include <random>

#include "../../cmd/bgp-announce/rib.hpp"

using edge::net::IpAddr;
using edge::net::Prefix;

namespace {
Prefix random_prefix(std::mt19937_64& rng, bool v6) {
    if (!v6) {
        int len = 8 + int(rng() % 25);
        uint32_t a = uint32_t(rng()) & (len == 32 ? ~0u : ~(~0u >> len));
        return Prefix::parse(IpAddr::v4(a).to_string() + "/" + std::to_string(len)).value();
    }
    std::array<uint8_t, 16> b{};
    for (int i = 0; i < 6; ++i) b[i] = uint8_t(rng());  // a /48 at most
    return Prefix::parse(IpAddr::v6(b).to_string() + "/48").value();
}
}  // namespace

TEST_CASE("PrefixMap agrees with std::map through inserts, updates, erases and growth") {
    std::mt19937_64 rng(42);
    bgp_announce::PrefixMap<int> m;
    std::map<Prefix, int> model;
    std::vector<Prefix> keys;
    for (int step = 0; step < 200000; ++step) {
        int op = int(rng() % 10);
        if (op < 6 || keys.empty()) {
            Prefix p = random_prefix(rng, rng() % 4 == 0);
            m[p] = step;
            model[p] = step;
            keys.push_back(p);
        } else if (op < 9) {
            Prefix p = keys[rng() % keys.size()];
            CHECK(m.erase(p) == (model.erase(p) == 1));
        } else {
            Prefix p = keys[rng() % keys.size()];
            auto* v = m.find(p);
            auto it = model.find(p);
            REQUIRE((v != nullptr) == (it != model.end()));
            if (v) CHECK(*v == it->second);
        }
    }
    CHECK(m.size() == model.size());
    size_t seen = 0;
    m.for_each([&](const Prefix& p, int v) {
        ++seen;
        auto it = model.find(p);
        REQUIRE(it != model.end());
        CHECK(it->second == v);
    });
    CHECK(seen == model.size());
    for (auto& [p, v] : model) {
        auto* x = m.find(p);
        REQUIRE(x);
        CHECK(*x == v);
    }
}
