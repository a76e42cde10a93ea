#include <doctest/doctest.h>

#include "cli/error.hpp"
#include "config/toml.hpp"

using namespace edge::config;

TEST_CASE("syntax errors name file, line and column") {
    CHECK_THROWS_WITH_AS(parse("a = 1\nb = = 2\n", "x.toml"), doctest::Contains("x.toml:2:"), edge::UsageError);
    CHECK_THROWS_WITH_AS(parse("a = 1\na = 2\n", "dup.toml"), doctest::Contains("dup.toml:2:"), edge::UsageError);
}

TEST_CASE("typed access with file:line and dotted keys in errors") {
    auto doc = parse("name = \"pop1\"\nport = 70000\n[lb]\nsize = \"big\"\nvips = [\"a\", 1]\n[[backend]]\naddr = 5\n", "s.toml");
    Table t(doc);
    CHECK(*t.str("name") == "pop1");
    CHECK_FALSE(t.str("missing"));
    CHECK_THROWS_WITH_AS(t.integer("port", 1, 65535), doctest::Contains("s.toml:2: port: 70000 is out of range 1..65535"),
                         edge::UsageError);
    CHECK_THROWS_WITH_AS(t.integer("name", 0, 1), doctest::Contains("s.toml:1: name: expected an integer, found a string"),
                         edge::UsageError);
    auto lb = t.table("lb");
    REQUIRE(lb);
    CHECK_THROWS_WITH_AS(lb->integer("size", 0, 10), doctest::Contains("s.toml:4: lb.size: expected an integer"),
                         edge::UsageError);
    CHECK_THROWS_WITH_AS(lb->strings("vips"), doctest::Contains("lb.vips: expected strings"), edge::UsageError);
    auto backends = t.tables("backend");
    REQUIRE(backends.size() == 1);
    CHECK_THROWS_WITH_AS(backends[0].str("addr"), doctest::Contains("backend[0].addr: expected a string"),
                         edge::UsageError);
}

TEST_CASE("unknown keys are caught with the allowed list") {
    auto doc = parse("name = 1\nnmae = 2\n", "t.toml");
    Table t(doc);
    CHECK_THROWS_WITH_AS(t.only({"name"}), doctest::Contains("t.toml:2: nmae: unknown key (expected one of: name)"),
                         edge::UsageError);
}

TEST_CASE("a missing file is a usage error naming it") {
    CHECK_THROWS_WITH_AS(load("/nonexistent/x.toml"), doctest::Contains("cannot read config /nonexistent/x.toml"),
                         edge::UsageError);
}
