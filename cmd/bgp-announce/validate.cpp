// bgp-announce validate: RPKI route origin validation (RFC 6811) of the routes that
// `decode` (or `run -j`) prints, with ROAs from rpki-client / Routinator JSON or CSV, and
// prefix monitoring (--monitor): origin hijacks, sub-prefix hijacks, unexpected upstream
// neighbours and AS-path rule violations as JSON Line alerts with their evidence.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <unordered_map>

#include <fmt/format.h>

#include "cli/error.hpp"
#include "config/toml.hpp"
#include "decode.hpp"
#include "jsonl/reader.hpp"
#include "net/addr.hpp"
#include "out/output.hpp"
#include "out/record.hpp"

namespace bgp_announce {
namespace {

using edge::out::Record;
namespace net = edge::net;

// ---- prefixes as (family, 128-bit key) ---------------------------------------------------
struct Key {
    bool v6 = false;
    std::array<uint8_t, 16> b{};
    bool operator==(const Key&) const = default;
};
struct KeyHash {
    size_t operator()(const Key& k) const {
        uint64_t h = k.v6 ? 0x9e3779b97f4a7c15ull : 0;
        for (int i = 0; i < 16; i += 8) {
            uint64_t w;
            std::memcpy(&w, k.b.data() + i, 8);
            h ^= w + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
        }
        return size_t(h);
    }
};
Key masked_key(const net::Prefix& p, int len) {
    Key k;
    k.v6 = p.family() == net::Family::v6;
    auto bytes = p.addr().bytes();
    std::memcpy(k.b.data(), bytes.data(), bytes.size());
    for (int i = 0; i < 16; ++i) {
        int bits = len - i * 8;
        if (bits >= 8) continue;
        k.b[size_t(i)] = bits <= 0 ? 0 : uint8_t(k.b[size_t(i)] & (0xff << (8 - bits)));
    }
    return k;
}

// A prefix from decode output: host bits are tolerated (masked), unlike in config files.
std::optional<net::Prefix> route_prefix(std::string_view s) {
    if (auto p = net::Prefix::parse(s)) return *p;
    auto slash = s.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    auto a = net::IpAddr::parse(s.substr(0, slash));
    if (!a) return std::nullopt;
    int len = 0;
    for (char c : s.substr(slash + 1)) {
        if (c < '0' || c > '9') return std::nullopt;
        len = len * 10 + (c - '0');
        if (len > 128) return std::nullopt;
    }
    return net::Prefix::masked(*a, len);
}

std::optional<uint32_t> parse_asn(std::string_view s) {
    if (s.size() > 2 && (s[0] == 'A' || s[0] == 'a') && (s[1] == 'S' || s[1] == 's')) s.remove_prefix(2);
    if (s.empty() || s.size() > 10) return std::nullopt;
    uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + uint64_t(c - '0');
    }
    if (v > 0xffffffffull) return std::nullopt;
    return uint32_t(v);
}

// ---- ROAs -------------------------------------------------------------------------------------
struct Roa {
    net::Prefix prefix;
    int max_length = 0;
    uint32_t asn = 0;
    std::string ta;
};

class RoaTable {
public:
    void add(Roa r) {
        auto k = masked_key(r.prefix, r.prefix.length());
        by_len_[r.prefix.family() == net::Family::v6][size_t(r.prefix.length())][k].push_back(roas_.size());
        roas_.push_back(std::move(r));
    }
    size_t size() const { return roas_.size(); }
    // The ROAs whose prefix covers p.
    void covering(const net::Prefix& p, std::vector<const Roa*>& out) const {
        out.clear();
        bool v6 = p.family() == net::Family::v6;
        for (int len = 0; len <= p.length(); ++len) {
            auto& m = by_len_[v6][size_t(len)];
            if (m.empty()) continue;
            auto it = m.find(masked_key(p, len));
            if (it == m.end()) continue;
            for (size_t i : it->second) out.push_back(&roas_[i]);
        }
    }

private:
    std::vector<Roa> roas_;
    std::unordered_map<Key, std::vector<size_t>, KeyHash> by_len_[2][129];
};

[[noreturn]] void roa_error(const std::string& where, const std::string& why) {
    edge::usage_error("{}: {} (expected rpki-client/Routinator JSON {{\"roas\":[...]}} or CSV ASN,prefix,maxLength[,ta])", where, why);
}

void add_roa(RoaTable& t, const std::string& where, std::string_view asn, std::string_view prefix, std::optional<int64_t> maxlen,
             std::string_view ta) {
    auto a = parse_asn(asn);
    if (!a) roa_error(where, fmt::format("bad ASN \"{}\"", asn));
    auto p = net::Prefix::parse(prefix);
    if (!p) roa_error(where, fmt::format("bad prefix \"{}\": {}", prefix, p.error()));
    int width = p->family() == net::Family::v4 ? 32 : 128;
    int ml = maxlen ? int(*maxlen) : p->length();
    if (!maxlen && false) ml = p->length();
    if (ml < p->length() || ml > width) roa_error(where, fmt::format("maxLength {} outside {}..{} for {}", ml, p->length(), width, prefix));
    t.add(Roa{*p, ml, *a, std::string(ta)});
}

void load_roas_json(RoaTable& t, const std::string& path, const std::string& text) {
    edge::json::Document d;
    if (!d.parse(text)) roa_error(path, fmt::format("not valid JSON: {}", d.error()));
    edge::json::Value doc = d.root(), roas = doc.is_array() ? doc : doc["roas"];
    if (!roas.is_array()) roa_error(path, "no \"roas\" array");
    size_t i = 0;
    for (edge::json::Value r : roas.elements()) {
        std::string where = fmt::format("{}: roas[{}]", path, i++);
        std::string asn;
        if (std::string_view s; r["asn"].get(s)) asn = s;
        else if (uint64_t n; r["asn"].get(n)) asn = std::to_string(n);
        else roa_error(where, "missing \"asn\"");
        std::string_view prefix;
        if (!r["prefix"].get(prefix)) roa_error(where, "missing \"prefix\"");
        std::optional<int64_t> ml;
        if (int64_t n; r["maxLength"].get(n)) ml = n;
        else if (r["max_length"].get(n)) ml = n;
        else if (r["maxlen"].get(n)) ml = n;
        std::string_view ta;
        if (!r["ta"].get(ta)) ta = "";
        add_roa(t, where, asn, prefix, ml, ta);
    }
}

void load_roas_csv(RoaTable& t, const std::string& path, const std::string& text) {
    std::istringstream in(text);
    std::string line;
    int no = 0;
    while (std::getline(in, line)) {
        ++no;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        auto first = line.find_first_not_of(" \t");
        if (first == std::string::npos || line[first] == '#') continue;
        std::vector<std::string> f;
        std::string cur;
        for (char c : line) {
            if (c == ',') {
                f.push_back(cur);
                cur.clear();
            } else if (c != ' ' && c != '\t' && c != '"') {
                cur.push_back(c);
            }
        }
        f.push_back(cur);
        std::string where = fmt::format("{}:{}", path, no);
        if (no == 1 && !parse_asn(f[0])) continue;  // header (ASN,IP Prefix,Max Length,Trust Anchor)
        if (f.size() < 2) roa_error(where, "expected ASN,prefix[,maxLength[,ta]]");
        std::optional<int64_t> ml;
        if (f.size() >= 3 && !f[2].empty()) {
            int64_t v = 0;
            for (char c : f[2]) {
                if (c < '0' || c > '9' || v > 1000) roa_error(where, fmt::format("bad maxLength \"{}\"", f[2]));
                v = v * 10 + (c - '0');
            }
            ml = v;
        }
        add_roa(t, where, f[0], f[1], ml, f.size() >= 4 ? f[3] : "");
    }
}

RoaTable load_roas(const std::string& path) {
    std::string text;
    if (path == "-") edge::usage_error("--roas cannot be stdin (routes are read from there)");
    std::ifstream f(path, std::ios::binary);
    if (!f) edge::usage_error("cannot open {}: {}", path, std::strerror(errno));
    std::ostringstream ss;
    ss << f.rdbuf();
    text = ss.str();
    RoaTable t;
    auto first = text.find_first_not_of(" \t\r\n");
    if (first != std::string::npos && (text[first] == '{' || text[first] == '[')) load_roas_json(t, path, text);
    else load_roas_csv(t, path, text);
    if (t.size() == 0) roa_error(path, "no ROAs");
    return t;
}

// ---- monitor ----------------------------------------------------------------------------------
struct Watch {
    net::Prefix prefix;
    std::string where;
    std::set<uint32_t> origins;
    std::set<uint32_t> upstreams;  // allowed neighbours of the origin (empty: not checked)
    bool more_specifics = false;
    std::set<uint32_t> forbidden;
    std::optional<int64_t> max_path_length;
    std::optional<std::regex> path_regex;
    std::string path_regex_text;
    std::string name;
};

std::set<uint32_t> asn_list(const edge::config::Table& t, std::string_view key) {
    std::set<uint32_t> out;
    auto* n = t.raw().get(key);
    if (!n) return out;
    auto one = [&](const toml::node& x) {
        if (auto i = x.value<int64_t>(); i && *i >= 0 && *i <= int64_t(0xffffffff)) {
            out.insert(uint32_t(*i));
        } else if (auto s = x.value<std::string>(); s && parse_asn(*s)) {
            out.insert(*parse_asn(*s));
        } else {
            edge::usage_error("{}: {}: expected AS numbers (65001 or \"AS65001\")", edge::config::where(t.doc(), x), t.key_path(key));
        }
    };
    if (auto* arr = n->as_array()) {
        for (auto& x : *arr) one(x);
    } else {
        one(*n);
    }
    return out;
}

std::vector<Watch> load_monitor(const std::string& path) {
    auto doc = edge::config::load(path);
    edge::config::Table root(doc);
    root.only({"prefix"});
    std::vector<Watch> ws;
    for (auto& t : root.tables("prefix")) {
        t.only({"prefix", "name", "origins", "upstreams", "more_specifics", "forbidden_asns", "max_path_length", "path_regex"});
        Watch w;
        w.where = edge::config::where(doc, t.raw());
        auto ps = t.str("prefix");
        if (!ps) t.fail("prefix", "missing (the monitored prefix, e.g. \"192.0.2.0/24\")");
        auto p = net::Prefix::parse(*ps);
        if (!p) t.fail("prefix", p.error());
        w.prefix = *p;
        w.name = t.str("name").value_or("");
        w.origins = asn_list(t, "origins");
        if (w.origins.empty()) t.fail("origins", "missing (the AS numbers allowed to originate the prefix)");
        w.upstreams = asn_list(t, "upstreams");
        w.more_specifics = t.boolean("more_specifics").value_or(false);
        w.forbidden = asn_list(t, "forbidden_asns");
        w.max_path_length = t.integer("max_path_length", 1, 255);
        if (auto re = t.str("path_regex")) {
            try {
                w.path_regex.emplace(*re, std::regex::ECMAScript);
            } catch (const std::regex_error& e) {
                t.fail("path_regex", fmt::format("bad regular expression: {}", e.what()));
            }
            w.path_regex_text = *re;
        }
        ws.push_back(std::move(w));
    }
    if (ws.empty()) edge::usage_error("{}: no [[prefix]] tables to monitor", path);
    return ws;
}

// ---- AS paths as decode prints them: "65001 65002 {65003,65004} (64512 64513)" ------------------
struct Path {
    std::vector<uint32_t> seq;  // the AS_SEQUENCE ASes in order (sets and confederations left out)
    std::vector<uint32_t> all;  // every AS mentioned
    bool ends_in_set = false;
    bool ok = true;
};
Path parse_path(std::string_view s) {
    Path p;
    int depth_set = 0, depth_confed = 0;
    size_t i = 0;
    bool last_was_set = false;
    while (i < s.size()) {
        char c = s[i];
        if (c == '{' || c == '[') ++depth_set, last_was_set = true, ++i;
        else if (c == '}' || c == ']') --depth_set, ++i;
        else if (c == '(') ++depth_confed, ++i;
        else if (c == ')') --depth_confed, ++i;
        else if (c == ' ' || c == ',') ++i;
        else if (c >= '0' && c <= '9') {
            size_t j = i;
            while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
            auto a = parse_asn(s.substr(i, j - i));
            if (!a) {
                p.ok = false;
                return p;
            }
            p.all.push_back(*a);
            if (depth_set == 0 && depth_confed == 0) {
                p.seq.push_back(*a);
                last_was_set = false;
            } else if (depth_set > 0 && depth_confed == 0) {
                last_was_set = true;
            }
            i = j;
        } else {
            p.ok = false;
            return p;
        }
    }
    p.ends_in_set = last_was_set;
    return p;
}

// ---- the run ------------------------------------------------------------------------------------
struct Route {
    std::string prefix_text;
    net::Prefix prefix;
    std::string as_path;
    std::optional<uint32_t> origin;  // nullopt: NONE (AS_SET at the end, or no path)
    std::string peer;
    uint64_t peer_as = 0;
    int64_t ts_us = 0;
    bool has_ts = false;
};

struct Options {
    std::string roas, monitor, input = "-";
    bool all = false;
};

int run_validate(const Options& opt, bool json) {
    if (opt.roas.empty() && opt.monitor.empty()) edge::usage_error("validate needs --roas FILE and/or --monitor FILE");
    std::optional<RoaTable> roas;
    if (!opt.roas.empty()) roas = load_roas(opt.roas);
    std::vector<Watch> watches;
    if (!opt.monitor.empty()) watches = load_monitor(opt.monitor);

    edge::out::Output out(json);
    edge::jsonl::Reader rd(opt.input);
    uint64_t routes = 0, valid = 0, invalid = 0, not_found = 0, alerts = 0, bad_lines = 0, skipped = 0;
    std::vector<const Roa*> cover;
    std::string first_bad;

    auto check = [&](const Route& r) {
        ++routes;
        Path path = parse_path(r.as_path);
        if (roas) {
            roas->covering(r.prefix, cover);
            const char* state = "not_found";
            std::string reason;
            if (!cover.empty()) {
                state = "invalid";
                bool as_ok = false;
                for (auto* c : cover) {
                    if (r.origin && c->asn != 0 && c->asn == *r.origin) {
                        as_ok = true;
                        if (r.prefix.length() <= c->max_length) {
                            state = "valid";
                            break;
                        }
                    }
                }
                if (std::string_view(state) == "invalid") reason = as_ok ? "max_length" : r.origin ? "origin_as" : "no_origin";
            }
            if (state[0] == 'v') ++valid;
            else if (state[0] == 'i') ++invalid;
            else ++not_found;
            if (opt.all || state[0] == 'i') {
                Record x("rov");
                x.str("prefix", r.prefix_text);
                if (r.origin) x.num("origin_as", uint64_t{*r.origin});
                else x.null("origin_as");
                x.str("state", state);
                if (!reason.empty()) x.str("reason", reason);
                x.str("as_path", r.as_path);
                if (!r.peer.empty()) x.str("peer", r.peer).num("peer_as", r.peer_as);
                if (r.has_ts) x.num("ts_us", r.ts_us);
                std::vector<std::string> cv;
                for (auto* c : cover) cv.push_back(fmt::format("AS{} {} max {}", c->asn, c->prefix.to_string(), c->max_length));
                x.strings("roas", cv);
                x.text(fmt::format("{} {} origin {} ({})", state, r.prefix_text, r.origin ? fmt::format("AS{}", *r.origin) : "NONE",
                                   cv.empty() ? std::string("no covering ROA") : fmt::format("{}{}", reason.empty() ? "" : reason + ": ", fmt::join(cv, ", "))));
                out.emit(x);
            }
        }
        if (!watches.empty()) {
            const Watch* best = nullptr;
            for (auto& w : watches) {
                if (w.prefix.family() != r.prefix.family() || r.prefix.length() < w.prefix.length()) continue;
                if (!w.prefix.contains(r.prefix.addr())) continue;
                if (!best || w.prefix.length() > best->prefix.length()) best = &w;
            }
            if (!best) return;
            const Watch& w = *best;
            bool exact = r.prefix.length() == w.prefix.length();
            bool origin_ok = r.origin && w.origins.count(*r.origin);
            auto alert = [&](const char* kind, const std::string& detail) {
                ++alerts;
                Record x("bgp_alert");
                x.str("alert", kind).str("prefix", r.prefix_text).str("monitored", w.prefix.to_string());
                if (!w.name.empty()) x.str("name", w.name);
                if (r.origin) x.num("origin_as", uint64_t{*r.origin});
                else x.null("origin_as");
                std::vector<std::string> exp;
                for (auto a : w.origins) exp.push_back(fmt::format("{}", a));
                x.strings("expected_origins", exp);
                x.str("as_path", r.as_path).str("detail", detail);
                if (!r.peer.empty()) x.str("peer", r.peer).num("peer_as", r.peer_as);
                if (r.has_ts) x.num("ts_us", r.ts_us);
                x.str("rule", w.where);
                x.text(fmt::format("ALERT {} {} (monitored {}): {}; path {}", kind, r.prefix_text, w.prefix.to_string(), detail, r.as_path));
                out.emit(x);
            };
            std::string origin_text = r.origin ? fmt::format("AS{}", *r.origin) : std::string("NONE (path ends in an AS_SET or is empty)");
            if (!exact) {
                if (!origin_ok) alert("sub_prefix_hijack", fmt::format("more-specific announced by {}", origin_text));
                else if (!w.more_specifics) alert("sub_prefix_hijack", fmt::format("more-specific /{} not allowed (announced by {})", r.prefix.length(), origin_text));
            } else if (!origin_ok) {
                alert("origin_hijack", fmt::format("originated by {}", origin_text));
            }
            if (origin_ok && !w.upstreams.empty()) {
                // the neighbour of the origin: the AS before it, after its own prepends
                std::optional<uint32_t> up;
                for (auto it = path.seq.rbegin(); it != path.seq.rend(); ++it)
                    if (*it != *r.origin) {
                        up = *it;
                        break;
                    }
                if (up && !w.upstreams.count(*up))
                    alert("unexpected_upstream", fmt::format("upstream AS{} of origin AS{} is not an allowed neighbour", *up, *r.origin));
            }
            for (auto a : path.all)
                if (w.forbidden.count(a)) {
                    alert("as_path_violation", fmt::format("path contains forbidden AS{}", a));
                    break;
                }
            size_t plen = path.seq.size() + (path.ends_in_set ? 1 : 0);
            if (w.max_path_length && int64_t(plen) > *w.max_path_length)
                alert("as_path_violation", fmt::format("path length {} exceeds {}", plen, *w.max_path_length));
            if (w.path_regex && !std::regex_search(r.as_path, *w.path_regex))
                alert("as_path_violation", fmt::format("path does not match /{}/", w.path_regex_text));
        }
    };

    auto make_route = [&](std::string_view pfx, std::string_view path, edge::json::Value src, Route& r) -> bool {
        auto p = route_prefix(pfx);
        if (!p) return false;
        r.prefix = *p;
        r.prefix_text = std::string(pfx);
        r.as_path = std::string(path);
        Path pp = parse_path(path);
        if (!pp.ok) return false;
        r.origin.reset();
        if (!pp.ends_in_set && !pp.seq.empty()) r.origin = pp.seq.back();
        std::string_view peer;
        r.peer = src["peer"].get(peer) ? std::string(peer) : std::string();
        uint64_t pa = 0;
        r.peer_as = src["peer_as"].get(pa) ? pa : 0;
        int64_t ts = 0;
        r.has_ts = src["ts_us"].get(ts);
        r.ts_us = ts;
        return true;
    };

    edge::json::Value doc;
    for (;;) {
        auto st = rd.next(doc);
        if (st == edge::jsonl::Reader::Status::end) break;
        if (st == edge::jsonl::Reader::Status::bad_line) {
            if (bad_lines++ == 0) first_bad = fmt::format("{}:{}: {}", rd.name(), rd.line_number(), rd.error());
            continue;
        }
        std::string_view type, action, prefix, path;
        if (!doc["type"].get(type)) {
            ++skipped;
            continue;
        }
        Route r;
        if (type == "bgp_route") {
            if (!doc["action"].get(action) || action == "withdraw" || !doc["prefix"].get(prefix)) {
                ++skipped;
                continue;
            }
            if (!doc["as_path"].get(path)) path = "";
            if (!make_route(prefix, path, doc, r)) {
                if (bad_lines++ == 0) first_bad = fmt::format("{}:{}: bad prefix or as_path", rd.name(), rd.line_number());
                continue;
            }
            check(r);
        } else if (type == "bgp_message") {
            const edge::json::Value an = doc["announced"];
            if (!an.is_array()) {
                ++skipped;
                continue;
            }
            if (!doc["as_path"].get(path)) path = "";
            for (edge::json::Value x : an.elements()) {
                std::string_view pf;
                if (!x.get(pf) && !x["prefix"].get(pf)) continue;
                if (make_route(pf, path, doc, r)) check(r);
            }
        } else if (type == "bgp_rib") {
            const edge::json::Value es = doc["entries"];
            if (!doc["prefix"].get(prefix) || !es.is_array()) {
                ++skipped;
                continue;
            }
            for (edge::json::Value e : es.elements()) {
                if (!e["as_path"].get(path)) path = "";
                if (make_route(prefix, path, e, r)) {
                    int64_t ts;
                    if (doc["ts_us"].get(ts)) r.ts_us = ts, r.has_ts = true;
                    check(r);
                }
            }
        } else {
            ++skipped;
        }
    }
    Record s("rov_summary");
    s.num("routes", routes);
    if (roas) s.num("roas", uint64_t{roas->size()}).num("valid", valid).num("invalid", invalid).num("not_found", not_found);
    if (!watches.empty()) s.num("alerts", alerts);
    s.num("skipped", skipped).num("bad_lines", bad_lines);
    out.emit(s);
    if (bad_lines) {
        if (routes == 0) edge::usage_error("{} (and {} bad line(s) in all, no routes): expected decode's JSON Lines", first_bad, bad_lines);
        edge::out::warn(fmt::format("{} bad line(s) skipped; first: {}", bad_lines, first_bad));
    }
    return (invalid || alerts) ? 1 : 0;
}

}  // namespace

void add_validate_command(edge::cli::Tool& tool) {
    static Options opt;
    auto* cmd = tool.command("validate", "Check routes (decode's JSON Lines) against ROAs (RFC 6811) and a prefix monitor",
                             [&tool] { return run_validate(opt, tool.globals().json); });
    tool.file(cmd->add_option("--roas", opt.roas, "ROAs: rpki-client / Routinator JSON, or CSV ASN,prefix,maxLength[,ta]"));
    tool.file(cmd->add_option("--monitor", opt.monitor, "Monitored prefixes (TOML [[prefix]] tables): alerts for hijacks and path rules"));
    cmd->add_flag("--all", opt.all, "Print every route's validation state, not only the invalid ones");
    tool.file(cmd->add_option("input", opt.input, "Routes: decode -j output (bgp_route, bgp_message, bgp_rib); - for stdin (default)"));
}

}  // namespace bgp_announce
