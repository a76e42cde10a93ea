#include <doctest/doctest.h>

#include "http/cache.hpp"
#include "http/message.hpp"

using namespace edge::http;

TEST_CASE("HTTP-date: the three formats, round trip, garbage") {
    const int64_t t = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT
    CHECK(parse_date("Sun, 06 Nov 1994 08:49:37 GMT") == t);
    CHECK(parse_date("Sunday, 06-Nov-94 08:49:37 GMT") == t);
    CHECK(parse_date("Sun Nov  6 08:49:37 1994") == t);
    CHECK(format_date(t) == "Sun, 06 Nov 1994 08:49:37 GMT");
    CHECK(format_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT");
    for (int64_t x : {int64_t{951782400}, int64_t{1709210096}, int64_t{4102444799}})
        CHECK(parse_date(format_date(x)) == x);
    CHECK_FALSE(parse_date("0"));
    CHECK_FALSE(parse_date("Sun, 06 Foo 1994 08:49:37 GMT"));
    CHECK_FALSE(parse_date("Sun, 06 Nov 1994 25:49:37 GMT"));
    CHECK_FALSE(parse_date(""));
}

TEST_CASE("Cache-Control parsing") {
    auto c = CacheControl::from("public, max-age=60, s-maxage=\"30\", stale-while-revalidate=5, x-ext=\"a,b\", no-transform");
    CHECK(c.public_);
    CHECK(c.max_age == 60);
    CHECK(c.s_maxage == 30);
    CHECK(c.stale_while_revalidate == 5);
    CHECK(c.no_transform);
    CHECK_FALSE(c.no_cache);
    auto d = CacheControl::from("MAX-AGE=10, max-age=5, no-cache=\"set-cookie\", private");
    CHECK(d.max_age == 5);  // the most restrictive duplicate
    CHECK(d.no_cache);
    CHECK(d.private_);
    auto e = CacheControl::from("max-age=abc");
    CHECK(e.max_age == 0);  // invalid: stale
    auto f = CacheControl::from("max-stale, min-fresh=20, only-if-cached");
    CHECK(f.max_stale_any);
    CHECK(f.min_fresh == 20);
    CHECK(f.only_if_cached);
    auto g = CacheControl::from("max-age=99999999999999");
    CHECK(g.max_age == 2147483648LL);
    CHECK_FALSE(CacheControl::from("").any);
}

namespace {
ResponseFacts facts(std::initializer_list<std::pair<const char*, const char*>> h, int64_t now = 1000000) {
    ResponseFacts r;
    r.request_time = now;
    r.response_time = now;
    for (auto& [k, v] : h) r.add_header(k, v);
    return r;
}
const int64_t T = 1000000;
std::string date(int64_t t) { return format_date(t); }
}  // namespace

TEST_CASE("freshness lifetime: s-maxage > max-age > Expires > heuristic") {
    auto d = date(T), e = date(T + 300), lm = date(T - 10000);
    CHECK(freshness_lifetime(facts({{"Cache-Control", "max-age=60, s-maxage=20"}})) == 20);
    CHECK(freshness_lifetime(facts({{"Cache-Control", "max-age=60"}, {"Expires", e.c_str()}, {"Date", d.c_str()}})) == 60);
    CHECK(freshness_lifetime(facts({{"Expires", e.c_str()}, {"Date", d.c_str()}})) == 300);
    CHECK(freshness_lifetime(facts({{"Expires", "0"}, {"Date", d.c_str()}})) == 0);
    bool heur = false;
    CHECK(freshness_lifetime(facts({{"Last-Modified", lm.c_str()}, {"Date", d.c_str()}}), {}, &heur) == 1000);
    CHECK(heur);
    auto r404 = facts({{"Last-Modified", lm.c_str()}, {"Date", d.c_str()}});
    r404.status = 302;  // not heuristically cacheable
    CHECK(freshness_lifetime(r404) == 0);
    CachePolicy p;
    p.heuristic_max = 100;
    CHECK(freshness_lifetime(facts({{"Last-Modified", lm.c_str()}, {"Date", d.c_str()}}), p) == 100);
}

TEST_CASE("CDN-Cache-Control overrides Cache-Control and Expires (RFC 9213)") {
    auto e = date(T + 300), d = date(T);
    auto r = facts({{"Cache-Control", "no-store"}, {"CDN-Cache-Control", "max-age=120"}, {"Expires", e.c_str()}, {"Date", d.c_str()}});
    CHECK(storable("GET", {}, false, r) == NoStore::storable);
    CHECK(freshness_lifetime(r) == 120);
    auto r2 = facts({{"Cache-Control", "max-age=600"}, {"CDN-Cache-Control", "no-store"}});
    CHECK(storable("GET", {}, false, r2) == NoStore::response_no_store);
}

TEST_CASE("current age (RFC 9111 4.2.3)") {
    ResponseFacts r;
    r.request_time = T - 2;
    r.response_time = T;
    r.date = T - 5;  // apparent age 5
    r.age = 1;       // corrected age value 1 + 2 = 3
    CHECK(current_age(r, T) == 5);
    CHECK(current_age(r, T + 10) == 15);
    r.age = 10;  // corrected 12 > apparent
    CHECK(current_age(r, T) == 12);
    r.date = T + 100;  // clock skew: apparent 0
    r.age = 0;
    CHECK(current_age(r, T) == 2);
}

TEST_CASE("storability") {
    CacheControl none;
    CHECK(storable("GET", none, false, facts({{"Cache-Control", "max-age=60"}})) == NoStore::storable);
    CHECK(storable("POST", none, false, facts({{"Cache-Control", "max-age=60"}})) == NoStore::method);
    CHECK(storable("GET", none, false, facts({{"Cache-Control", "private, max-age=60"}})) == NoStore::private_);
    CHECK(storable("GET", none, false, facts({{"Cache-Control", "no-store"}})) == NoStore::response_no_store);
    CHECK(storable("GET", CacheControl::from("no-store"), false, facts({{"Cache-Control", "max-age=60"}})) ==
          NoStore::request_no_store);
    CHECK(storable("GET", none, true, facts({{"Cache-Control", "max-age=60"}})) == NoStore::authorization);
    CHECK(storable("GET", none, true, facts({{"Cache-Control", "s-maxage=60"}})) == NoStore::storable);
    CHECK(storable("GET", none, false, facts({{"Cache-Control", "max-age=60"}, {"Vary", "Accept, *"}})) == NoStore::vary_star);
    auto r302 = facts({});
    r302.status = 302;
    CHECK(storable("GET", none, false, r302) == NoStore::no_explicit);
    auto r206 = facts({{"Cache-Control", "max-age=60"}});
    r206.status = 206;
    CHECK(storable("GET", none, false, r206) == NoStore::status);
    CHECK(storable("GET", none, false, facts({{"Cache-Control", "max-age=60"}, {"Set-Cookie", "a=b"}})) == NoStore::set_cookie);
    CHECK(storable("GET", none, false, facts({})) == NoStore::storable);  // 200: heuristically cacheable
}

TEST_CASE("evaluate: fresh, stale, request directives") {
    auto r = facts({{"Cache-Control", "max-age=60"}});
    CacheControl none;
    CHECK(evaluate(r, none, T + 10).use == Use::fresh);
    CHECK(evaluate(r, none, T + 10).age == 10);
    CHECK(evaluate(r, none, T + 60).use == Use::revalidate);
    CHECK(evaluate(r, CacheControl::from("max-age=5"), T + 10).use == Use::revalidate);
    CHECK(evaluate(r, CacheControl::from("min-fresh=55"), T + 10).use == Use::revalidate);
    CHECK(evaluate(r, CacheControl::from("min-fresh=40"), T + 10).use == Use::fresh);
    CHECK(evaluate(r, CacheControl::from("no-cache"), T + 1).use == Use::revalidate);
    CHECK(evaluate(r, CacheControl::from("max-stale=30"), T + 80).use == Use::stale_allowed);
    CHECK(evaluate(r, CacheControl::from("max-stale=10"), T + 80).use == Use::revalidate);
    CHECK(evaluate(r, CacheControl::from("max-stale"), T + 8000).use == Use::stale_allowed);
    // must-revalidate / proxy-revalidate / s-maxage forbid serving stale
    for (const char* cc : {"max-age=60, must-revalidate", "max-age=60, proxy-revalidate", "s-maxage=60"})
        CHECK(evaluate(facts({{"Cache-Control", cc}}), CacheControl::from("max-stale"), T + 80).use == Use::revalidate);
    CHECK(evaluate(facts({{"Cache-Control", "max-age=60, no-cache"}}), none, T).use == Use::revalidate);
}

TEST_CASE("stale-while-revalidate and stale-if-error") {
    auto r = facts({{"Cache-Control", "max-age=10, stale-while-revalidate=20, stale-if-error=100"}});
    CacheControl none;
    CHECK(evaluate(r, none, T + 25).use == Use::stale_revalidate);
    CHECK(evaluate(r, none, T + 35).use == Use::revalidate);
    CHECK(stale_if_error_ok(r, none, T + 100));
    CHECK_FALSE(stale_if_error_ok(r, none, T + 200));
    auto plain = facts({{"Cache-Control", "max-age=10"}});
    CHECK_FALSE(stale_if_error_ok(plain, none, T + 20));
    CHECK(stale_if_error_ok(plain, CacheControl::from("stale-if-error=60"), T + 20));
    auto mr = facts({{"Cache-Control", "max-age=10, must-revalidate, stale-if-error=100"}});
    CHECK_FALSE(stale_if_error_ok(mr, none, T + 20));
}

TEST_CASE("framing checks reject every smuggling vector") {
    auto chk = [](std::string_view b) { return check_framing(b, true).result; };
    CHECK(chk("GET / HTTP/1.1\r\nHost: a\r\n\r\n") == Framing::ok);
    CHECK(chk("GET / HTTP/1.1\nHost: a\r\n\r\n") == Framing::bare_lf);
    CHECK(chk("GET / HTTP/1.1\r\nHost: a\n\r\n") == Framing::bare_lf);
    CHECK(chk("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n") == Framing::bare_cr);
    CHECK(chk("GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n") == Framing::obs_fold);
    CHECK(chk("GET / HTTP/1.1\r\nHost : a\r\n\r\n") == Framing::space_before_colon);
    CHECK(chk("GET / HTTP/1.1\r\nHo st: a\r\n\r\n") == Framing::bad_name);
    CHECK(chk("GET / HTTP/1.1\r\nnocolon\r\n\r\n") == Framing::bad_name);
    CHECK(chk("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n") == Framing::te_and_cl);
    CHECK(chk("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n") == Framing::cl_mismatch);
    CHECK(chk("POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n") == Framing::cl_mismatch);
    CHECK(chk("POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n") == Framing::cl_mismatch);
    CHECK(chk("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n") == Framing::ok);
    CHECK(chk("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n") == Framing::bad_te);
    CHECK(chk("GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n") == Framing::bad_value);
    auto info = check_framing("POST / HTTP/1.1\r\nContent-Length: 42\r\n\r\n", true);
    CHECK(info.has_cl);
    CHECK(info.content_length == 42);
    std::string many = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 101; i++) many += "X: y\r\n";
    CHECK(check_framing(many + "\r\n", true, 100).result == Framing::too_many_headers);
}

TEST_CASE("header block end, lists, ranges, etags") {
    CHECK(header_block_end("GET / HTTP/1.1\r\n\r\nrest") == 18);
    CHECK(header_block_end("GET / HTTP/1.1\r\n\r") == 0);
    CHECK(list_contains("gzip, Chunked", "chunked"));
    CHECK_FALSE(list_contains("\"a,chunked\"", "chunked"));
    ByteRange r;
    CHECK(parse_range("bytes=0-99", 1000, r) == RangeResult::ok);
    CHECK((r.first == 0 && r.last == 99));
    CHECK(parse_range("bytes=900-", 1000, r) == RangeResult::ok);
    CHECK(r.last == 999);
    CHECK(parse_range("bytes=-100", 1000, r) == RangeResult::ok);
    CHECK(r.first == 900);
    CHECK(parse_range("bytes=995-2000", 1000, r) == RangeResult::ok);
    CHECK(r.last == 999);
    CHECK(parse_range("bytes=1000-", 1000, r) == RangeResult::unsatisfiable);
    CHECK(parse_range("bytes=0-1,5-6", 1000, r) == RangeResult::ignore);
    CHECK(parse_range("items=0-1", 1000, r) == RangeResult::ignore);
    CHECK(parse_range("bytes=5-1", 1000, r) == RangeResult::ignore);
    CHECK(parse_range("", 1000, r) == RangeResult::none);
    CHECK(etag_weak_equal("W/\"a\"", "\"a\""));
    CHECK(if_none_match_matches("\"x\", W/\"a\"", "\"a\""));
    CHECK(if_none_match_matches("*", "\"a\""));
    CHECK_FALSE(if_none_match_matches("\"b\"", "\"a\""));
}
