#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "out/json.hpp"
#include "out/output.hpp"
#include "out/record.hpp"

using namespace edge::out;

namespace {
std::string js(std::string_view s) {
    std::string out;
    append_json_string(out, s);
    return out;
}
}  // namespace

TEST_CASE("JSON strings are escaped and always valid UTF-8") {
    CHECK(js("plain") == "\"plain\"");
    CHECK(js("q\"b\\") == "\"q\\\"b\\\\\"");
    CHECK(js("a\nb\tc\r") == "\"a\\nb\\tc\\r\"");
    CHECK(js(std::string_view("\x01\x1f\x7f", 3)) == "\"\\u0001\\u001f\\u007f\"");
    CHECK(js("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80") == "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"");
    // Invalid: lone continuation, truncated sequence, overlong, surrogate, > U+10FFFF.
    CHECK(js("\x80") == "\"\xef\xbf\xbd\"");
    CHECK(js("a\xe2\x82") == "\"a\xef\xbf\xbd\xef\xbf\xbd\"");
    CHECK(js("\xc0\xaf") == "\"\xef\xbf\xbd\xef\xbf\xbd\"");
    CHECK(js("\xed\xa0\x80") == "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    CHECK(js("\xf4\x90\x80\x80") == "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    CHECK(js(std::string_view("\0", 1)) == "\"\\u0000\"");
}

TEST_CASE("numbers: shortest round trip, non-finite as null") {
    std::string s;
    append_json_number(s, 0.25);
    CHECK(s == "0.25");
    s.clear();
    append_json_number(s, NAN);
    CHECK(s == "null");
    s.clear();
    append_json_number(s, INFINITY);
    CHECK(s == "null");
}

TEST_CASE("a record renders as one JSON object with its type first") {
    Record r("flow");
    r.str("src", "10.0.0.1").num("sport", 5555).num("bytes", uint64_t{1} << 40).real("share", 0.5).boolean("ok", true).null(
        "none");
    r.strings("versions", {"v1", "v2"});
    Record sub("ignored");
    sub.num("rtt_us", 12);
    r.object("timing", sub);
    CHECK(r.json() ==
          "{\"type\":\"flow\",\"src\":\"10.0.0.1\",\"sport\":5555,\"bytes\":1099511627776,\"share\":0.5,\"ok\":true,"
          "\"none\":null,\"versions\":[\"v1\",\"v2\"],\"timing\":{\"rtt_us\":12}}");
    CHECK(r.text_line() == "src=10.0.0.1 sport=5555 bytes=1099511627776 share=0.5000 ok=true none=- versions=v1,v2 timing=rtt_us=12");
    r.text("custom");
    CHECK(r.text_line() == "custom");
}

TEST_CASE("records with nested arrays of objects") {
    Record a("x"), b("x");
    a.num("n", 1);
    b.num("n", 2);
    Record r("list");
    r.objects("items", {a, b});
    CHECK(r.json() == "{\"type\":\"list\",\"items\":[{\"n\":1},{\"n\":2}]}");
}

TEST_CASE("Output writes one line per record and drops free text in JSON mode") {
    std::FILE* f = std::tmpfile();
    REQUIRE(f);
    {
        Output o(true, f);
        Record r("t");
        r.num("n", 1);
        o.emit(r);
        o.line("a table heading");
        o.emit(r);
    }
    std::rewind(f);
    char buf[256] = {0};
    size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    CHECK(std::string(buf, n) == "{\"type\":\"t\",\"n\":1}\n{\"type\":\"t\",\"n\":1}\n");
}
