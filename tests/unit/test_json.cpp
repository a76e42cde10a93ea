// The JSON reader (common/json): RFC 8259 values, strictness, typed reads, minify.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "json/json.hpp"

using edge::json::Document;
using edge::json::Type;
using edge::json::Value;

namespace {
Document parsed(std::string_view text) {
    Document d;
    REQUIRE_MESSAGE(d.parse(text), text << ": " << d.error());
    return d;
}
bool rejects(std::string_view text, std::string_view why) {
    Document d;
    if (d.parse(text)) return false;
    CHECK_MESSAGE(d.error().find(why) != std::string::npos, text << ": " << d.error());
    return !d.root();
}
}  // namespace

TEST_CASE("values and typed reads") {
    Document d = parsed(R"( {"s":"x\"y\\\/\b\f\n\r\t\u00e9\ud83d\ude00","i":-42,"u":18446744073709551615,
                          "big":9223372036854775807,"neg":-9223372036854775808,"f":1.5e3,"z":0,
                          "t":true,"n":null,"a":[1,"two",[3],{}],"o":{"k":{}}} )");
    Value r = d.root();
    REQUIRE(r.is_object());
    CHECK(r.size() == 11);
    std::string_view s;
    REQUIRE(r["s"].get(s));
    CHECK(s == "x\"y\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80");
    int64_t i = 0;
    uint64_t u = 0;
    double f = 0;
    bool b = false;
    CHECK((r["i"].get(i) && i == -42));
    CHECK_FALSE(r["i"].get(u));  // negative
    CHECK((r["u"].get(u) && u == UINT64_MAX));
    CHECK_FALSE(r["u"].get(i));  // above int64
    CHECK((r["big"].get(i) && i == INT64_MAX));
    CHECK((r["neg"].get(i) && i == INT64_MIN));
    CHECK((r["f"].get(f) && f == 1500.0));
    CHECK_FALSE(r["f"].get(i));  // not an integer
    CHECK((r["i"].get(f) && f == -42.0));
    CHECK((r["z"].get(u) && u == 0));
    CHECK((r["t"].get(b) && b));
    CHECK(r["n"].is_null());
    CHECK(r["n"].type() == Type::null);
    CHECK_FALSE(r["n"].get(b));
    CHECK_FALSE(r["s"].get(i));
    // Missing members read as nothing, at any depth, without errors.
    CHECK_FALSE(r["missing"]);
    CHECK_FALSE(r["missing"]["deeper"].get(s));
    CHECK_FALSE(r["i"]["not an object"]);
    CHECK(r["missing"].size() == 0);
    // Arrays and objects in order.
    std::vector<std::string> seen;
    for (Value e : r["a"].elements()) seen.push_back(e.minify());
    CHECK(seen == std::vector<std::string>{"1", "\"two\"", "[3]", "{}"});
    seen.clear();
    for (auto [k, v] : r.members()) seen.emplace_back(k);
    CHECK(seen.front() == "s");
    CHECK(seen.back() == "o");
    CHECK(r["o"]["k"].is_object());
    CHECK(r["o"]["k"].size() == 0);
    for (Value e : r["s"].elements()) FAIL("a string has no elements: " << e.minify());
}

TEST_CASE("the first member of a name wins; numbers too large for 64 bits are doubles") {
    Document d = parsed(R"({"k":1,"k":2,"huge":123456789012345678901234567890,"tiny":1e-400,"neg":-99999999999999999999})");
    int64_t i = 0;
    double f = 0;
    CHECK((d.root()["k"].get(i) && i == 1));
    CHECK((d.root()["huge"].get(f) && std::fabs(f - 1.2345678901234568e29) < 1e15));
    CHECK((d.root()["tiny"].get(f) && f == 0.0));
    CHECK((d.root()["neg"].get(f) && f < -9.9e19));
    CHECK_FALSE(d.root()["neg"].get(i));
}

TEST_CASE("top-level scalars and white space") {
    CHECK(parsed(" \t\r\n7 \n").root().type() == Type::int64);
    CHECK(parsed("\"\"").root().is_string());
    CHECK(parsed("[]").root().size() == 0);
    CHECK(parsed("false").root().type() == Type::boolean);
}

TEST_CASE("malformed JSON is refused with a reason") {
    CHECK(rejects("", "no JSON value"));
    CHECK(rejects("   ", "no JSON value"));
    CHECK(rejects("{", "member name"));
    CHECK(rejects("{\"a\"}", "':'"));
    CHECK(rejects("{\"a\":1,}", "member name"));
    CHECK(rejects("[1,]", "not a JSON value"));
    CHECK(rejects("[1 2]", "',' or ']'"));
    CHECK(rejects("{\"a\":1 \"b\":2}", "',' or '}'"));
    CHECK(rejects("{'a':1}", "member name"));
    CHECK(rejects("{a:1}", "member name"));
    CHECK(rejects("1 2", "more after"));
    CHECK(rejects("{} x", "more after"));
    CHECK(rejects("tru", "not a JSON value"));
    CHECK(rejects("nul", "not a JSON value"));
    CHECK(rejects("NaN", "not a JSON value"));
    CHECK(rejects("01", "leading zero"));
    CHECK(rejects("-", "invalid number"));
    CHECK(rejects("1.", "after '.'"));
    CHECK(rejects(".5", "not a JSON value"));
    CHECK(rejects("1e", "exponent"));
    CHECK(rejects("+1", "not a JSON value"));
    CHECK(rejects("1e999", "out of range"));
    CHECK(rejects("\"abc", "unterminated"));
    CHECK(rejects("\"a\\", "unterminated"));
    CHECK(rejects("\"\\x\"", "invalid escape"));
    CHECK(rejects("\"\\u12\"", "\\u escape"));
    CHECK(rejects("\"\\ud800\"", "lone high surrogate"));
    CHECK(rejects("\"\\ud800\\u0041\"", "lone high surrogate"));
    CHECK(rejects("\"\\udc00\"", "lone low surrogate"));
    CHECK(rejects(std::string("\"a\nb\""), "control character"));
    CHECK(rejects(std::string("\"a\0b\"", 5), "control character"));
    // UTF-8: bad continuation, overlong, surrogate, beyond U+10FFFF, cut short, stray.
    for (std::string bad : {"\xc3\x28", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\x80", "\xff"})
        CHECK(rejects("\"" + bad + "\"", "UTF-8"));
    CHECK(rejects("\xef\xbb\xbf{}", "not a JSON value"));  // a byte order mark is not JSON
    // Nesting: 1024 levels are fine, 1025 are not (and do not exhaust the stack).
    CHECK(Document().parse(std::string(1024, '[') + std::string(1024, ']')));
    CHECK(rejects(std::string(1025, '[') + std::string(1025, ']'), "1024 deep"));
    CHECK(rejects(std::string(100000, '['), "1024 deep"));
    // A failed parse leaves no values behind.
    Document d;
    REQUIRE(d.parse("{\"a\":1}"));
    CHECK_FALSE(d.parse("{\"a\":"));
    CHECK_FALSE(d.root());
    CHECK_FALSE(d.root()["a"]);
}

TEST_CASE("valid UTF-8 of every length passes through") {
    const std::string text = "\"\x24 \xc2\xa2 \xe2\x82\xac \xf0\x90\x8d\x88 \xf4\x8f\xbf\xbf\"";
    std::string_view s;
    Document d = parsed(text);
    REQUIRE(d.root().get(s));
    CHECK(s == text.substr(1, text.size() - 2));
}

TEST_CASE("minify gives JSON that parses to the same values") {
    const char* texts[] = {
        R"({ "a" : [ 1 , -2.5 , "x\u0001\"\\" , true , null , { } , [ ] ] , "b" : { "c" : 1e2 } })",
        R"("\u00e9\t")",
        R"([18446744073709551615,-9223372036854775808,0.1,1e300])",
        R"([-0.0,-0e5,-0,0.0,-1e-400])",  // negative zero stays a double (the fuzzer found it)
    };
    for (const char* t : texts) {
        Document d = parsed(t);
        const std::string m = d.root().minify();
        Document d2 = parsed(m);
        CHECK(d2.root().minify() == m);
        CHECK(m.find(' ') == std::string::npos);
    }
    CHECK(parsed(texts[0]).root().minify() ==
          R"({"a":[1,-2.5,"x\u0001\"\\",true,null,{},[]],"b":{"c":100}})");
    CHECK(parsed(texts[3]).root().minify() == "[-0.0,-0.0,0,0,-0.0]");
}

TEST_CASE("random bytes and mutations never crash, and what parses round-trips") {
    std::mt19937_64 rng(11);
    const std::string seed = R"({"type":"flow","src":"10.0.0.1","sport":5555,"a":[1,2.5e-3,{"x":null}],"s":"\u00e9\\"})";
    std::size_t ok = 0;
    Document d, d2;
    for (int n = 0; n < 200000; ++n) {
        std::string t = seed;
        for (int m = 0; m < 1 + n % 4; ++m) t[rng() % t.size()] = static_cast<char>(rng());
        if (n % 3 == 0) t.resize(rng() % t.size());
        if (d.parse(t)) {
            ++ok;
            const std::string m = d.root().minify();
            REQUIRE(d2.parse(m));
            REQUIRE(d2.root().minify() == m);
        }
    }
    CHECK(ok > 1000);
}
