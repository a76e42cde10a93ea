// Config loading (see config.hpp and bgp-announce(8)).
#include "config.hpp"

#include <fmt/format.h>

#include "cli/error.hpp"
#include "config/toml.hpp"

namespace bgp_announce {
namespace {

using edge::config::Table;

net::IpAddr ip(const Table& t, const char* key, const std::string& v) {
    auto a = net::IpAddr::parse(v);
    if (!a) t.fail(key, a.error());
    return *a;
}

uint32_t router_id(const Table& t, const char* key, const std::string& v) {
    auto a = ip(t, key, v);
    if (!a.is_v4()) t.fail(key, "a router ID is an IPv4 address");
    auto b = a.bytes();
    return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}

net::Endpoint endpoint(const Table& t, const char* key, const std::string& v) {
    auto e = net::Endpoint::parse(v);
    if (!e) t.fail(key, e.error() + " (ADDR:PORT or [V6]:PORT)");
    return *e;
}

std::vector<bgp::AfiSafi> families(const Table& t) {
    std::vector<bgp::AfiSafi> out;
    for (auto& s : t.strings("families")) {
        if (s == "ipv4-unicast") out.push_back(bgp::ipv4_unicast);
        else if (s == "ipv6-unicast") out.push_back(bgp::ipv6_unicast);
        else if (s == "ipv4-flowspec") out.push_back(bgp::ipv4_flowspec);
        else if (s == "ipv6-flowspec") out.push_back(bgp::ipv6_flowspec);
        else t.fail("families", fmt::format("'{}' unknown (ipv4-unicast, ipv6-unicast, ipv4-flowspec, ipv6-flowspec)", s));
    }
    return out;
}

RouteAttrs attrs(const Table& t) {
    RouteAttrs a;
    if (auto s = t.str("next_hop"); s && *s != "self") a.next_hop = ip(t, "next_hop", *s);
    for (auto& s : t.strings("communities")) {
        auto c = bgp::parse_community(s);
        if (!c) t.fail("communities", fmt::format("bad community '{}' (ASN:VALUE or a well-known name)", s));
        a.communities.push_back(*c);
    }
    for (auto& s : t.strings("large_communities")) {
        auto c = bgp::parse_large_community(s);
        if (!c) t.fail("large_communities", fmt::format("bad large community '{}' (GLOBAL:LOCAL1:LOCAL2)", s));
        a.large_communities.push_back(*c);
    }
    for (auto& s : t.strings("ext_communities")) {
        auto e = parse_ext_community(s);
        if (!e) t.fail("ext_communities", e.error());
        a.ext_communities.push_back(*e);
    }
    if (auto v = t.integer("med", 0, 0xffffffff)) a.med = static_cast<uint32_t>(*v);
    if (auto v = t.integer("local_pref", 0, 0xffffffff)) a.local_pref = static_cast<uint32_t>(*v);
    if (auto v = t.integer("as_path_prepend", 0, 32)) a.prepend = static_cast<int>(*v);
    if (auto s = t.str("origin")) {
        auto o = parse_origin(*s);
        if (!o) t.fail("origin", "expected igp, egp or incomplete");
        a.origin = *o;
    }
    return a;
}

HealthCheck health(const Table& t) {
    t.only({"command", "tcp", "http", "expect_status", "interval", "timeout", "rise", "fall", "on_failure",
            "failure_med", "failure_prepend"});
    HealthCheck h;
    int kinds = t.has("command") + t.has("tcp") + t.has("http");
    if (kinds != 1) t.fail("command", "a health check needs exactly one of command, tcp, http");
    if (auto s = t.str("command")) {
        h.kind = HealthCheck::Kind::command;
        h.command = *s;
    }
    if (auto s = t.str("tcp")) {
        h.kind = HealthCheck::Kind::tcp;
        h.target = endpoint(t, "tcp", *s);
    }
    if (auto s = t.str("http")) {
        h.kind = HealthCheck::Kind::http;
        std::string_view u = *s;
        if (u.substr(0, 7) != "http://") t.fail("http", "expected http://ADDR:PORT/PATH");
        u.remove_prefix(7);
        auto slash = u.find('/');
        std::string hostport(u.substr(0, slash));
        h.http_path = slash == std::string_view::npos ? "/" : std::string(u.substr(slash));
        auto e = net::Endpoint::parse(hostport);
        if (!e) {
            auto a = net::IpAddr::parse(hostport);
            if (!a) t.fail("http", fmt::format("'{}': the host must be an IP address (ADDR[:PORT])", hostport));
            h.target = net::Endpoint{*a, 80};
        } else {
            h.target = *e;
        }
        h.http_host = hostport;
    }
    if (auto v = t.integer("expect_status", 100, 599)) h.expect_status = static_cast<int>(*v);
    if (auto v = t.real("interval")) h.interval_s = *v;
    if (auto v = t.real("timeout")) h.timeout_s = *v;
    if (h.interval_s < 0.05 || h.interval_s > 3600) t.fail("interval", "expected 0.05..3600 seconds");
    if (h.timeout_s < 0.01 || h.timeout_s > 600) t.fail("timeout", "expected 0.01..600 seconds");
    if (auto v = t.integer("rise", 1, 100)) h.rise = static_cast<int>(*v);
    if (auto v = t.integer("fall", 1, 100)) h.fall = static_cast<int>(*v);
    if (auto s = t.str("on_failure")) {
        if (*s == "withdraw") h.on_failure = HealthCheck::OnFailure::withdraw;
        else if (*s == "med") h.on_failure = HealthCheck::OnFailure::med;
        else if (*s == "prepend") h.on_failure = HealthCheck::OnFailure::prepend;
        else t.fail("on_failure", "expected withdraw, med or prepend");
    }
    if (auto v = t.integer("failure_med", 0, 0xffffffff)) h.failure_med = static_cast<uint32_t>(*v);
    if (auto v = t.integer("failure_prepend", 1, 32)) h.failure_prepend = static_cast<int>(*v);
    return h;
}

}  // namespace

Config load_config(const std::string& path) {
    auto doc = edge::config::load(path);
    Table root(doc);
    Config c;
    c.path = path;
    for (auto& [k, v] : doc.root) {
        if (!v.is_table() && !(v.is_array() && v.as_array()->is_array_of_tables())) continue;  // global options
        std::string_view key = k.str();
        if (key != "speaker" && key != "peer" && key != "group" && key != "run" && key != "ctl")
            edge::usage_error("{}: unknown table '{}' (expected [speaker], [[peer]], [[group]])", edge::config::where(doc, v), key);
    }
    auto sp = root.table("speaker");
    if (!sp) edge::usage_error("{}: missing [speaker] table (local_as, router_id)", path);
    sp->only({"local_as", "router_id", "listen", "hold_time", "connect_retry", "graceful_restart", "control_socket",
              "metrics", "shutdown_message"});
    auto las = sp->integer("local_as", 1, 0xffffffff);
    if (!las) sp->fail("local_as", "required: the speaker's AS number");
    c.local_as = static_cast<uint32_t>(*las);
    auto rid = sp->str("router_id");
    if (!rid) sp->fail("router_id", "required: an IPv4 address");
    c.router_id = router_id(*sp, "router_id", *rid);
    for (auto& s : sp->strings("listen")) c.listen.push_back(endpoint(*sp, "listen", s));
    int64_t hold = sp->integer("hold_time", 0, 65535).value_or(90);
    if (hold == 1 || hold == 2) sp->fail("hold_time", "must be 0 or at least 3 seconds");
    int64_t retry = sp->integer("connect_retry", 1, 3600).value_or(5);
    if (auto g = sp->integer("graceful_restart", 0, 4095); g && *g > 0) c.graceful_restart = static_cast<uint16_t>(*g);
    if (auto s = sp->str("control_socket")) c.control_socket = *s;
    if (auto s = sp->str("metrics")) c.metrics = endpoint(*sp, "metrics", *s);
    if (auto s = sp->str("shutdown_message")) c.shutdown_message = *s;

    for (auto& t : root.tables("peer")) {
        t.only({"name", "address", "port", "remote_as", "local_address", "local_port", "passive", "hold_time",
                "connect_retry", "md5_password", "families", "next_hop_self", "next_hop_self6", "four_octet_as", "ttl"});
        Peer p;
        auto a = t.str("address");
        if (!a) t.fail("address", "required: the peer's IP address");
        p.bgp.address = ip(t, "address", *a);
        p.bgp.name = t.str("name").value_or(*a);
        p.bgp.port = static_cast<uint16_t>(t.integer("port", 1, 65535).value_or(179));
        auto ras = t.integer("remote_as", 1, 0xffffffff);
        if (!ras) t.fail("remote_as", "required: the peer's AS number");
        p.bgp.peer_as = static_cast<uint32_t>(*ras);
        if (auto s = t.str("local_address")) p.bgp.local_address = ip(t, "local_address", *s);
        p.bgp.local_port = static_cast<uint16_t>(t.integer("local_port", 0, 65535).value_or(0));
        p.bgp.passive = t.boolean("passive").value_or(false);
        int64_t ph = t.integer("hold_time", 0, 65535).value_or(hold);
        if (ph == 1 || ph == 2) t.fail("hold_time", "must be 0 or at least 3 seconds");
        p.bgp.hold_time = static_cast<uint16_t>(ph);
        p.bgp.connect_retry_s = static_cast<int>(t.integer("connect_retry", 1, 3600).value_or(retry));
        p.bgp.md5_password = t.str("md5_password").value_or("");
        if (p.bgp.md5_password.size() > 80) t.fail("md5_password", "at most 80 bytes");
        if (t.has("families")) p.bgp.families = families(t);
        if (p.bgp.families.empty()) t.fail("families", "at least one family");
        if (auto s = t.str("next_hop_self")) p.next_hop_self = ip(t, "next_hop_self", *s);
        if (auto s = t.str("next_hop_self6")) p.next_hop_self6 = ip(t, "next_hop_self6", *s);
        p.bgp.four_octet_as = t.boolean("four_octet_as").value_or(true);
        p.bgp.ttl = static_cast<int>(t.integer("ttl", 0, 255).value_or(0));
        p.bgp.local_as = c.local_as;
        p.bgp.router_id = c.router_id;
        p.bgp.graceful_restart_time = c.graceful_restart;
        if (p.bgp.local_as > 0xffff && !p.bgp.four_octet_as)
            t.fail("four_octet_as", "a 4-octet local AS needs the 4-octet AS capability");
        c.peers.push_back(std::move(p));
    }
    if (c.peers.empty()) edge::usage_error("{}: no [[peer]] configured", path);

    for (auto& t : root.tables("group")) {
        t.only({"name", "prefixes", "flows", "next_hop", "communities", "large_communities", "ext_communities", "med",
                "local_pref", "as_path_prepend", "origin", "health"});
        Group g;
        g.name = t.str("name").value_or(fmt::format("group{}", c.groups.size() + 1));
        for (auto& s : t.strings("prefixes")) {
            auto p = net::Prefix::parse(s);
            if (!p) t.fail("prefixes", p.error());
            g.prefixes.push_back(*p);
        }
        g.attrs = attrs(t);
        for (auto& s : t.strings("flows")) {
            auto f = bgp::FlowSpec::parse(s);
            if (!f) t.fail("flows", f.error());
            g.flows.push_back(*f);
        }
        if (!g.flows.empty() && std::none_of(g.attrs.ext_communities.begin(), g.attrs.ext_communities.end(),
                                             [](auto& e) { return e.traffic_rate_value().has_value(); }))
            g.attrs.ext_communities.push_back(bgp::ExtCommunity::traffic_rate(0, 0));
        if (g.prefixes.empty() && g.flows.empty()) t.fail("prefixes", "a group needs prefixes or flows");
        if (auto h = t.table("health")) g.health = health(*h);
        c.groups.push_back(std::move(g));
    }
    return c;
}

}  // namespace bgp_announce
