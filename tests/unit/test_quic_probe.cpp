// Tests for quic-probe's pure helpers (cmd/quic-probe/probe_util.hpp): targets, check
// names, versions, the amplification verdict and the session file.
#include <doctest/doctest.h>

#include <sstream>

#include "../../cmd/quic-probe/probe_util.hpp"

using namespace quic_probe;

TEST_CASE("targets: host, host:port, IPv6, errors") {
    std::string err;
    auto t = parse_target("example.com", err);
    REQUIRE(t);
    CHECK(t->host == "example.com");
    CHECK(t->port == 443);
    t = parse_target("127.0.0.1:4433", err);
    REQUIRE(t);
    CHECK(t->host == "127.0.0.1");
    CHECK(t->port == 4433);
    t = parse_target("[::1]:8443", err);
    REQUIRE(t);
    CHECK(t->host == "::1");
    CHECK(t->port == 8443);
    t = parse_target("2001:db8::1", err);
    REQUIRE(t);
    CHECK(t->host == "2001:db8::1");
    CHECK(t->port == 443);
    for (const char* bad : {"", "host:", "host:0", "host:65536", "host:12a", "[::1", "[::1]x", ":443", "a b", "[::1]:"}) {
        err.clear();
        CHECK_MESSAGE(!parse_target(bad, err), bad);
        CHECK_MESSAGE(!err.empty(), bad);
    }
}

TEST_CASE("targets file: comments and blank lines") {
    std::istringstream in("# list\n\n a.example:443 \nb.example # trailing\r\n   \n");
    auto v = target_lines(in);
    REQUIRE(v.size() == 2);
    CHECK(v[0] == "a.example:443");
    CHECK(v[1] == "b.example");
}

TEST_CASE("checks: names, all, duplicates, order, unknown") {
    std::string err;
    auto t = parse_tests({"http3", "handshake", "http3"}, err);
    REQUIRE(t);
    CHECK(*t == std::vector<std::string>{"handshake", "http3"});
    t = parse_tests({"all"}, err);
    REQUIRE(t);
    CHECK(t->size() == test_names().size());
    CHECK(!parse_tests({"handshake", "warp"}, err));
    CHECK(err.find("warp") != std::string::npos);
}

TEST_CASE("versions") {
    CHECK(parse_version("v1") == 1u);
    CHECK(parse_version("v2draft") == 0x709a50c4u);
    CHECK(parse_version("v2-draft") == 0x709a50c4u);
    CHECK(parse_version("0x1a2a3a4a") == 0x1a2a3a4au);
    CHECK(!parse_version("v9"));
    CHECK(!parse_version("0xzz"));
    CHECK(!parse_version("0x123456789"));
    CHECK(edge::quic::is_grease_version(kProbeReservedVersion));
}

TEST_CASE("amplification verdict: 3x limit") {
    auto v = amplification_verdict(1200, 2400);
    CHECK(v.ratio == doctest::Approx(2.0));
    CHECK(!v.exceeded);
    CHECK(!v.at_limit);
    v = amplification_verdict(1200, 3600);
    CHECK(!v.exceeded);
    CHECK(v.at_limit);
    v = amplification_verdict(1200, 3601);
    CHECK(v.exceeded);
    CHECK(!v.at_limit);
    v = amplification_verdict(0, 100);
    CHECK(v.ratio == 0);
    CHECK(!v.exceeded);
}

TEST_CASE("session file: round trip and errors") {
    SessionFile s;
    s.target = "127.0.0.1:4433";
    s.alpn = "h3";
    s.version = 1;
    s.tp = {{"initial_max_data", 1048576}, {"initial_max_streams_bidi", 100}};
    s.token = {0xde, 0xad};
    s.ticket = {1, 2, 3, 0xff};
    std::string err;
    auto back = parse_session(format_session(s), err);
    REQUIRE(back);
    CHECK(back->target == s.target);
    CHECK(back->alpn == "h3");
    CHECK(back->version == 1);
    CHECK(back->param("initial_max_streams_bidi") == 100u);
    CHECK(!back->param("nope"));
    CHECK(back->token == s.token);
    CHECK(back->ticket == s.ticket);

    CHECK(!parse_session("target x\n", err));
    CHECK(err == "no ticket");
    CHECK(!parse_session("ticket 0g\n", err));
    CHECK(err.find("line 1") != std::string::npos);
    CHECK(!parse_session("# c\nwhat 1\nticket 00\n", err));
    CHECK(err.find("line 2") != std::string::npos);
    CHECK(!parse_session("tp x\nticket 00\n", err));
    CHECK(!parse_session("version x\nticket 00\n", err));
    CHECK(!from_hex("abc"));
    CHECK(to_hex(s.ticket.data(), s.ticket.size()) == "010203ff");
}
