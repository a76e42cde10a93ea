// Command parsing (see commands.hpp and bgp-announce(8)).
#include "commands.hpp"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace bgp_announce {
namespace {

using net::Result;
using R = Result<std::optional<Command>>;

std::vector<std::string_view> tokens(std::string_view s) {
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '[' || s[i] == ']')) ++i;
        size_t j = i;
        while (j < s.size() && !(s[j] == ' ' || s[j] == '\t' || s[j] == '\r' || s[j] == '[' || s[j] == ']')) ++j;
        if (j > i) out.push_back(s.substr(i, j - i));
        i = j;
    }
    return out;
}

std::optional<uint64_t> num(std::string_view s, uint64_t max) {
    uint64_t v = 0;
    if (s.empty()) return std::nullopt;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
    if (ec != std::errc() || p != s.data() + s.size() || v > max) return std::nullopt;
    return v;
}

const std::vector<std::string_view> attr_keywords = {"next-hop", "community", "large-community", "extended-community",
                                                     "med", "local-preference", "origin", "as-path-prepend",
                                                     "as-path", "duration", "nlri", "then", "rate-limit", "discard"};
bool is_keyword(std::string_view t) {
    return std::find(attr_keywords.begin(), attr_keywords.end(), t) != attr_keywords.end();
}

// Values after a list keyword: tokens up to the next keyword, commas split further.
std::vector<std::string_view> values(const std::vector<std::string_view>& t, size_t& i) {
    std::vector<std::string_view> v;
    while (i < t.size() && !is_keyword(t[i])) {
        std::string_view s = t[i++];
        size_t start = 0;
        for (size_t k = 0; k <= s.size(); ++k)
            if (k == s.size() || s[k] == ',') {
                if (k > start) v.push_back(s.substr(start, k - start));
                start = k + 1;
            }
    }
    return v;
}

Result<net::Prefix> prefix_arg(std::string_view s, bool host_ok) {
    auto p = net::Prefix::parse(s);
    if (!p) return Result<net::Prefix>::fail(fmt::format("'{}': {}", s, p.error()));
    if (!host_ok && s.find('/') == std::string_view::npos)
        return Result<net::Prefix>::fail(fmt::format("'{}': a prefix needs /LEN", s));
    return *p;
}

// Parses attribute keywords from t[i..] into c; `flow` allows then/rate-limit/discard.
std::string parse_attrs(const std::vector<std::string_view>& t, size_t i, Command& c, bool flow) {
    auto& a = c.attrs;
    while (i < t.size()) {
        auto k = t[i++];
        auto need = [&]() -> std::optional<std::string_view> {
            if (i >= t.size() || is_keyword(t[i])) return std::nullopt;
            return t[i++];
        };
        if (k == "next-hop") {
            auto v = need();
            if (!v) return "next-hop needs 'self' or an address";
            if (*v == "self") {
                a.next_hop.reset();
            } else {
                auto ip = net::IpAddr::parse(*v);
                if (!ip) return fmt::format("next-hop '{}': {}", *v, ip.error());
                a.next_hop = *ip;
            }
        } else if (k == "community") {
            auto vs = values(t, i);
            if (vs.empty()) return "community needs a value like 65000:1";
            for (auto v : vs) {
                auto cm = bgp::parse_community(v);
                if (!cm) return fmt::format("bad community '{}' (ASN:VALUE, each 0..65535, or no-export, blackhole...)", v);
                a.communities.push_back(*cm);
            }
        } else if (k == "large-community") {
            auto vs = values(t, i);
            if (vs.empty()) return "large-community needs a value like 65000:1:2";
            for (auto v : vs) {
                auto l = bgp::parse_large_community(v);
                if (!l) return fmt::format("bad large community '{}' (GLOBAL:LOCAL1:LOCAL2)", v);
                a.large_communities.push_back(*l);
            }
        } else if (k == "extended-community") {
            auto vs = values(t, i);
            if (vs.empty()) return "extended-community needs a value like rt:65000:1";
            for (auto v : vs) {
                auto e = parse_ext_community(v);
                if (!e) return e.error();
                a.ext_communities.push_back(*e);
            }
        } else if (k == "med" || k == "local-preference" || k == "as-path-prepend" || k == "duration") {
            auto v = need();
            auto n = v ? num(*v, k == "as-path-prepend" ? 32 : 0xffffffff) : std::nullopt;
            if (!n) return fmt::format("{} needs a number{}", k, k == "as-path-prepend" ? " 0..32" : "");
            if (k == "med") a.med = static_cast<uint32_t>(*n);
            else if (k == "local-preference") a.local_pref = static_cast<uint32_t>(*n);
            else if (k == "as-path-prepend") a.prepend = static_cast<int>(*n);
            else c.duration_s = static_cast<int64_t>(*n);
        } else if (k == "as-path") {
            auto vs = values(t, i);
            for (auto v : vs) {
                auto n = num(v, 0xffffffff);
                if (!n) return fmt::format("bad AS number '{}' in as-path", v);
                a.as_path.push_back(static_cast<uint32_t>(*n));
            }
        } else if (k == "origin") {
            auto v = need();
            auto o = v ? parse_origin(*v) : std::nullopt;
            if (!o) return "origin needs igp, egp or incomplete";
            a.origin = *o;
        } else if (k == "then" && flow) {
            continue;
        } else if (k == "discard" && flow) {
            a.ext_communities.push_back(bgp::ExtCommunity::traffic_rate(0, 0));
        } else if (k == "rate-limit" && flow) {
            auto v = need();
            auto n = v ? num(*v, 0xffffffffffull) : std::nullopt;
            if (!n) return "rate-limit needs bytes per second (0 = drop)";
            a.ext_communities.push_back(bgp::ExtCommunity::traffic_rate(0, static_cast<float>(*n)));
        } else if (k == "nlri") {
            auto vs = values(t, i);
            for (auto v : vs) {
                auto p = prefix_arg(v, false);
                if (!p) return p.error();
                c.prefixes.push_back(*p);
            }
        } else {
            return fmt::format("unexpected '{}'", k);
        }
    }
    return {};
}

R fail(std::string why) { return R::fail(std::move(why)); }

}  // namespace

std::optional<uint8_t> parse_origin(std::string_view s) {
    if (s == "igp") return bgp::origin_igp;
    if (s == "egp") return bgp::origin_egp;
    if (s == "incomplete") return bgp::origin_incomplete;
    return std::nullopt;
}

Result<bgp::ExtCommunity> parse_ext_community(std::string_view s) {
    using ER = Result<bgp::ExtCommunity>;
    if (s.substr(0, 11) == "rate-limit:") {
        auto n = num(s.substr(11), 0xffffffffffull);
        if (!n) return ER::fail(fmt::format("bad extended community '{}'", s));
        return bgp::ExtCommunity::traffic_rate(0, static_cast<float>(*n));
    }
    if (s.substr(0, 3) == "rt:") {
        auto rest = s.substr(3);
        auto c = rest.find(':');
        auto a = num(rest.substr(0, c), 0xffff);
        auto v = c == std::string_view::npos ? std::nullopt : num(rest.substr(c + 1), 0xffffffff);
        if (!a || !v) return ER::fail(fmt::format("bad route target '{}' (rt:ASN:VALUE)", s));
        return bgp::ExtCommunity::route_target(static_cast<uint16_t>(*a), static_cast<uint32_t>(*v));
    }
    if (s.substr(0, 2) == "0x" && s.size() == 18) {
        bgp::ExtCommunity e;
        for (int i = 0; i < 8; ++i) {
            unsigned v = 0;
            auto part = s.substr(2 + 2 * i, 2);
            auto [p, ec] = std::from_chars(part.data(), part.data() + 2, v, 16);
            if (ec != std::errc() || p != part.data() + 2) return ER::fail(fmt::format("bad extended community '{}'", s));
            e.raw[i] = static_cast<uint8_t>(v);
        }
        return e;
    }
    return ER::fail(fmt::format("bad extended community '{}' (rt:ASN:N, rate-limit:BYTES_PER_S or 0x + 16 hex digits)", s));
}

std::string RouteAttrs::key() const {
    std::string k = fmt::format("{}|{}|{}|{}|{}|", origin, next_hop ? next_hop->to_string() : "self",
                                med ? std::to_string(*med) : "-", local_pref ? std::to_string(*local_pref) : "-", prepend);
    for (auto a : as_path) k += fmt::format("{} ", a);
    k += '|';
    for (auto c : communities) k += fmt::format("{} ", c);
    k += '|';
    for (auto& l : large_communities) k += l.to_string() + ' ';
    k += '|';
    for (auto& e : ext_communities) k += e.to_string() + ' ';
    return k;
}

R parse_text(std::string_view line) {
    auto t = tokens(line);
    if (t.empty() || t[0][0] == '#') return std::optional<Command>{};
    Command c;
    if (t.size() == 1 && (t[0] == "status" || t[0] == "routes" || t[0] == "metrics")) {
        c.kind = t[0] == "status" ? Command::Kind::status : t[0] == "routes" ? Command::Kind::routes : Command::Kind::metrics;
        return std::optional<Command>{c};
    }
    if (t[0] != "announce" && t[0] != "withdraw")
        return fail(fmt::format("unknown command '{}' (announce, withdraw, status, routes)", t[0]));
    bool announce = t[0] == "announce";
    c.kind = announce ? Command::Kind::announce : Command::Kind::withdraw;
    if (t.size() < 2) return fail(fmt::format("'{}' needs route, blackhole, flow, attributes or all", t[0]));
    auto what = t[1];
    std::string err;
    if (what == "all" && !announce) {
        if (t.size() != 2) return fail("'withdraw all' takes no arguments");
        c.kind = Command::Kind::withdraw_all;
        return std::optional<Command>{c};
    }
    if (what == "route" || what == "blackhole") {
        if (t.size() < 3) return fail(fmt::format("'{} {}' needs a prefix", t[0], what));
        auto p = prefix_arg(t[2], what == "blackhole");
        if (!p) return fail(p.error());
        c.prefixes.push_back(*p);
        if (what == "blackhole") {
            c.attrs.communities = {bgp::community_blackhole, bgp::community_no_export};
        }
        err = parse_attrs(t, 3, c, false);
    } else if (what == "attributes") {
        err = parse_attrs(t, 2, c, false);
        if (err.empty() && c.prefixes.empty()) err = "'attributes' needs 'nlri PREFIX...'";
    } else if (what == "flow") {
        size_t i = 2;
        std::string spec;
        while (i < t.size() && !is_keyword(t[i])) {
            if (!spec.empty()) spec += ' ';
            spec += t[i++];
        }
        auto f = bgp::FlowSpec::parse(spec);
        if (!f) return fail("flow: " + f.error());
        c.flows.push_back(*f);
        err = parse_attrs(t, i, c, true);
        if (err.empty() && announce &&
            std::none_of(c.attrs.ext_communities.begin(), c.attrs.ext_communities.end(),
                         [](auto& e) { return e.traffic_rate_value().has_value(); }))
            c.attrs.ext_communities.push_back(bgp::ExtCommunity::traffic_rate(0, 0));  // default action: drop
    } else {
        return fail(fmt::format("'{} {}': expected route, blackhole, flow, attributes or all", t[0], what));
    }
    if (!err.empty()) return fail(err);
    return std::optional<Command>{c};
}

namespace {
bool str(edge::json::Value o, const char* k, std::string_view& out) { return o[k].get(out); }
std::optional<int64_t> integer(edge::json::Value o, const char* k, std::string& err) {
    auto r = o[k];
    if (!r) return std::nullopt;
    int64_t v;
    double d;
    if (r.get(v)) return v;
    if (r.get(d) && d >= 0 && d < 1e15) return static_cast<int64_t>(d);
    err = fmt::format("'{}' must be a number", k);
    return std::nullopt;
}
// A string or an array of strings/numbers.
std::vector<std::string> list(edge::json::Value o, const char* k, std::string& err) {
    std::vector<std::string> out;
    auto r = o[k];
    if (!r) return out;
    std::string_view s;
    int64_t n;
    if (r.get(s)) {
        out.emplace_back(s);
        return out;
    }
    if (r.get(n)) {
        out.push_back(std::to_string(n));
        return out;
    }
    if (!r.is_array()) {
        err = fmt::format("'{}' must be a string or an array", k);
        return out;
    }
    for (auto e : r.elements()) {
        if (e.get(s))
            out.emplace_back(s);
        else if (e.get(n))
            out.push_back(std::to_string(n));
        else
            err = fmt::format("'{}' holds a value that is neither a string nor a number", k);
    }
    return out;
}
}  // namespace

Result<Command> parse_json(edge::json::Value o) {
    using JR = Result<Command>;
    std::string_view type;
    if (!str(o, "type", type)) return JR::fail("JSON command without a \"type\"");
    Command c;
    std::string err;
    auto dur = integer(o, "duration_s", err);
    if (dur && *dur > 0) c.duration_s = dur;
    if (type == "mitigation") {
        std::string_view action, pfx;
        if (!str(o, "action", action)) return JR::fail("mitigation without \"action\" (rtbh or flowspec)");
        if (!str(o, "prefix", pfx)) return JR::fail("mitigation without \"prefix\"");
        auto p = prefix_arg(pfx, true);
        if (!p) return JR::fail(p.error());
        bool withdraw = false;
        auto w = o["withdraw"];
        if (w && !w.get(withdraw)) return JR::fail("'withdraw' must be true or false");
        std::string_view state;
        if (str(o, "state", state) && (state == "stop" || state == "end")) withdraw = true;
        c.kind = withdraw ? Command::Kind::withdraw : Command::Kind::announce;
        if (action == "rtbh") {
            c.prefixes.push_back(*p);
            c.attrs.communities = {bgp::community_blackhole, bgp::community_no_export};
        } else if (action == "flowspec") {
            std::string spec = "destination " + p->to_string();
            std::string_view sv;
            if (str(o, "source", sv)) spec += fmt::format(" source {}", sv);
            auto proto = list(o, "protocol", err);
            if (!proto.empty()) spec += " protocol " + fmt::format("{}", fmt::join(proto, ","));
            auto ports = list(o, "dst_ports", err);
            auto one = list(o, "dst_port", err);
            ports.insert(ports.end(), one.begin(), one.end());
            if (!ports.empty()) spec += " destination-port " + fmt::format("{}", fmt::join(ports, ","));
            auto sports = list(o, "src_ports", err);
            one = list(o, "src_port", err);
            sports.insert(sports.end(), one.begin(), one.end());
            if (!sports.empty()) spec += " source-port " + fmt::format("{}", fmt::join(sports, ","));
            if (str(o, "tcp_flags", sv)) spec += fmt::format(" tcp-flags {}", sv);
            if (str(o, "packet_length", sv)) spec += fmt::format(" packet-length {}", sv);
            if (!err.empty()) return JR::fail(err);
            auto f = bgp::FlowSpec::parse(spec);
            if (!f) return JR::fail("mitigation: " + f.error());
            c.flows.push_back(*f);
            double rate = 0;
            auto r = o["rate_bytes_per_s"];
            if (r && !r.get(rate)) return JR::fail("'rate_bytes_per_s' must be a number");
            if (rate < 0) return JR::fail("'rate_bytes_per_s' must be >= 0");
            c.attrs.ext_communities.push_back(bgp::ExtCommunity::traffic_rate(0, static_cast<float>(rate)));
        } else {
            return JR::fail(fmt::format("mitigation action '{}' unknown (rtbh or flowspec)", action));
        }
        if (!err.empty()) return JR::fail(err);
        return c;
    }
    if (type != "announce" && type != "withdraw")
        return JR::fail(fmt::format("JSON command type '{}' unknown (announce, withdraw, mitigation)", type));
    c.kind = type == "announce" ? Command::Kind::announce : Command::Kind::withdraw;
    for (auto& s : list(o, "prefix", err)) {
        auto p = prefix_arg(s, false);
        if (!p) return JR::fail(p.error());
        c.prefixes.push_back(*p);
    }
    for (auto& s : list(o, "prefixes", err)) {
        auto p = prefix_arg(s, false);
        if (!p) return JR::fail(p.error());
        c.prefixes.push_back(*p);
    }
    std::string_view sv;
    if (str(o, "flow", sv)) {
        auto f = bgp::FlowSpec::parse(sv);
        if (!f) return JR::fail("flow: " + f.error());
        c.flows.push_back(*f);
    }
    if (str(o, "blackhole", sv)) {
        auto p = prefix_arg(sv, true);
        if (!p) return JR::fail(p.error());
        c.prefixes.push_back(*p);
        c.attrs.communities = {bgp::community_blackhole, bgp::community_no_export};
    }
    if (c.prefixes.empty() && c.flows.empty()) {
        bool all = false;
        auto a = o["all"];
        if (a.get(all) && all && c.kind == Command::Kind::withdraw) {
            c.kind = Command::Kind::withdraw_all;
            return c;
        }
        return JR::fail("JSON command needs \"prefix\", \"prefixes\", \"blackhole\" or \"flow\"");
    }
    auto& a = c.attrs;
    if (str(o, "next_hop", sv) && sv != "self") {
        auto ip = net::IpAddr::parse(sv);
        if (!ip) return JR::fail(fmt::format("next_hop '{}': {}", sv, ip.error()));
        a.next_hop = *ip;
    }
    for (auto& s : list(o, "communities", err)) {
        auto cm = bgp::parse_community(s);
        if (!cm) return JR::fail(fmt::format("bad community '{}'", s));
        a.communities.push_back(*cm);
    }
    for (auto& s : list(o, "large_communities", err)) {
        auto l = bgp::parse_large_community(s);
        if (!l) return JR::fail(fmt::format("bad large community '{}'", s));
        a.large_communities.push_back(*l);
    }
    for (auto& s : list(o, "ext_communities", err)) {
        auto e = parse_ext_community(s);
        if (!e) return JR::fail(e.error());
        a.ext_communities.push_back(*e);
    }
    if (auto v = integer(o, "med", err)) a.med = static_cast<uint32_t>(*v);
    if (auto v = integer(o, "local_pref", err)) a.local_pref = static_cast<uint32_t>(*v);
    if (auto v = integer(o, "prepend", err)) {
        if (*v < 0 || *v > 32) return JR::fail("'prepend' must be 0..32");
        a.prepend = static_cast<int>(*v);
    }
    if (str(o, "origin", sv)) {
        auto og = parse_origin(sv);
        if (!og) return JR::fail("'origin' must be igp, egp or incomplete");
        a.origin = *og;
    }
    if (!c.flows.empty() && std::none_of(a.ext_communities.begin(), a.ext_communities.end(),
                                         [](auto& e) { return e.traffic_rate_value().has_value(); }))
        a.ext_communities.push_back(bgp::ExtCommunity::traffic_rate(0, 0));
    if (!err.empty()) return JR::fail(err);
    return c;
}

R parse_line(std::string_view line, edge::json::Document& parser) {
    size_t i = 0;
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i < line.size() && line[i] == '{') {
        if (!parser.parse(line)) return fail(fmt::format("bad JSON: {}", parser.error()));
        const edge::json::Value doc = parser.root();
        if (!doc.is_object()) return fail("JSON command is not an object");
        auto c = parse_json(doc);
        if (!c) return fail(c.error());
        return std::optional<Command>{*c};
    }
    return parse_text(line);
}

}  // namespace bgp_announce
