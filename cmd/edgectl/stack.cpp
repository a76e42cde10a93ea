// Stack file parsing and cross-checks; every error names FILE:LINE and the key.
#include "stack.hpp"

#include <charconv>
#include <map>
#include <set>

#include <fmt/format.h>

#include "cli/error.hpp"
#include "default_stack.hpp"
#include "hash/flow_hash.hpp"
#include "maglev/maglev.hpp"

namespace edgectl {

using edge::config::Table;
using edge::net::IpAddr;
using edge::net::Prefix;

namespace {

constexpr const char* kBuiltin = "edge.toml (built-in)";

IpAddr address(const Table& t, std::string_view key, const std::string& s) {
    auto a = IpAddr::parse(s);
    if (!a) t.fail(key, fmt::format("bad address '{}': {}", s, a.error()));
    return *a;
}

// 1..4294967294 without AS_TRANS (RFC 6793) and the reserved 65535 (RFC 7300).
uint32_t asn(const Table& t, std::string_view key, bool required) {
    auto v = t.integer(key, 0, int64_t{0xffffffff});
    if (!v) {
        if (required) t.fail(key, "missing: an AS number 1..4294967294");
        return 0;
    }
    if (*v == 0) t.fail(key, "AS 0 is reserved (RFC 7607): use 1..4294967294");
    if (*v == 23456) t.fail(key, "AS 23456 is AS_TRANS (RFC 6793), not a real AS");
    if (*v == 65535 || *v == 0xffffffff) t.fail(key, fmt::format("AS {} is reserved (RFC 7300)", *v));
    return static_cast<uint32_t>(*v);
}

Service parse_service(const Table& t, const std::string& s) {
    // PORT/PROTO, e.g. 443/tcp
    auto slash = s.find('/');
    if (slash == std::string::npos) t.fail("services", fmt::format("'{}': expected PORT/PROTO such as 443/tcp", s));
    std::string_view p(s.data(), slash);
    Service svc;
    svc.proto = s.substr(slash + 1);
    unsigned long port = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
    if (ec != std::errc() || end != p.data() + p.size() || p.empty())
        t.fail("services", fmt::format("'{}': the port must be a number 1..65535", s));
    if (port < 1 || port > 65535) t.fail("services", fmt::format("'{}': port {} is out of range 1..65535", s, port));
    if (svc.proto != "tcp" && svc.proto != "udp")
        t.fail("services", fmt::format("'{}': protocol '{}' is not tcp or udp", s, svc.proto));
    svc.port = static_cast<uint16_t>(port);
    return svc;
}

Backend parse_backend(const Table& t, const std::string& s) {
    Backend b;
    std::string a = s;
    if (auto eq = s.rfind('='); eq != std::string::npos) {
        a = s.substr(0, eq);
        std::string w = s.substr(eq + 1);
        unsigned long v = 0;
        auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), v);
        if (w.empty() || ec != std::errc() || end != w.data() + w.size() || v > 1000000)
            t.fail("backends", fmt::format("'{}': expected ADDR[=WEIGHT] with WEIGHT 0..1000000", s));
        b.weight = static_cast<uint32_t>(v);
    }
    b.address = address(t, "backends", a);
    return b;
}

bool valid_pop_name(const std::string& n) {
    if (n.empty() || n.size() > 32 || n[0] == '-' || n[0] == '.') return false;
    for (char c : n)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) return false;
    return true;
}

void check_size(const Table& t, std::string_view key, const std::string& s) {
    // K, M, G suffixes as cache-proxy reads them.
    size_t i = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') i++;
    std::string unit = s.substr(i);
    if (i == 0 || !(unit.empty() || unit == "K" || unit == "M" || unit == "G" || unit == "k" || unit == "m" || unit == "g"))
        t.fail(key, fmt::format("'{}' is not a size (a byte count or a number with K, M or G)", s));
}

std::string health_kind_error(const std::string& h) {
    if (h.rfind("http://", 0) == 0) {
        std::string_view u(h);
        u.remove_prefix(7);
        std::string hostport(u.substr(0, u.find('/')));
        if (!edge::net::Endpoint::parse(hostport) && !IpAddr::parse(hostport))
            return fmt::format("'{}': the host must be an IP address (http://ADDR[:PORT]/PATH)", h);
        return "";
    }
    if (h.rfind("tcp:", 0) == 0) {
        if (!edge::net::Endpoint::parse(h.substr(4))) return fmt::format("'{}': expected tcp:ADDR:PORT", h);
        return "";
    }
    if (h.rfind("command:", 0) == 0) return h.size() > 8 ? "" : "an empty command";
    return fmt::format("'{}': expected http://ADDR[:PORT]/PATH, tcp:ADDR:PORT or command:SHELL-COMMAND", h);
}

}  // namespace

std::string stack_name(const std::string& path) { return path.empty() ? kBuiltin : path; }

Stack load_stack(const std::string& path) {
    if (path.empty()) return parse_stack(edge::config::parse(kDefaultStack, kBuiltin));
    return parse_stack(edge::config::load(path));
}

Stack parse_stack(const edge::config::Document& doc) {
    Stack s;
    s.path = doc.path;
    Table root(doc);
    root.only({"stack", "anycast", "vip", "maglev", "lb", "bgp", "guard", "cache", "pop"});

    if (auto t = root.table("stack")) {
        t->only({"name"});
        if (auto v = t->str("name")) s.name = *v;
    }

    // Anycast prefixes.
    auto any = root.table("anycast");
    if (!any) edge::usage_error("{}: missing [anycast] table: prefixes = [\"203.0.113.0/24\", ...]", doc.path);
    any->only({"prefixes"});
    for (auto& p : any->strings("prefixes")) {
        auto pr = Prefix::parse(p);
        if (!pr) any->fail("prefixes", fmt::format("bad prefix '{}': {}", p, pr.error()));
        for (auto& q : s.prefixes)
            if (q.contains(pr->addr()) || pr->contains(q.addr()))
                any->fail("prefixes", fmt::format("{} overlaps {}", pr->to_string(), q.to_string()));
        s.prefixes.push_back(*pr);
    }
    if (s.prefixes.empty()) any->fail("prefixes", "at least one anycast prefix");

    // VIPs: inside an anycast prefix, unique, with valid unique services.
    std::set<IpAddr> vips;
    for (auto& t : root.tables("vip")) {
        t.only({"address", "services"});
        Vip v;
        auto a = t.str("address");
        if (!a) t.fail("address", "missing: every [[vip]] needs address = \"ADDR\"");
        v.address = address(t, "address", *a);
        bool inside = false;
        for (auto& p : s.prefixes) inside = inside || p.contains(v.address);
        if (!inside)
            t.fail("address", fmt::format("VIP {} is not inside any anycast prefix ([anycast] prefixes): it would not be reachable",
                                          v.address.to_string()));
        if (!vips.insert(v.address).second) t.fail("address", fmt::format("VIP {} is defined twice", v.address.to_string()));
        std::set<std::pair<uint16_t, std::string>> seen;
        for (auto& str : t.strings("services")) {
            auto svc = parse_service(t, str);
            if (!seen.emplace(svc.port, svc.proto).second)
                t.fail("services", fmt::format("{}/{} is listed twice", svc.port, svc.proto));
            v.services.push_back(svc);
        }
        if (v.services.empty()) t.fail("services", "missing: a VIP needs services = [\"PORT/PROTO\", ...]");
        s.vips.push_back(std::move(v));
    }
    if (s.vips.empty()) edge::usage_error("{}: no [[vip]] tables: nothing to serve", doc.path);

    std::optional<Table> maglev_t = root.table("maglev");
    if (maglev_t) {
        auto& t = *maglev_t;
        t.only({"table_size", "hash_key"});
        if (auto m = t.integer("table_size", edge::maglev::min_size, edge::maglev::max_size)) {
            if (!edge::maglev::is_prime(static_cast<uint64_t>(*m))) {
                auto [lo, hi] = edge::maglev::nearest_primes(static_cast<uint64_t>(*m));
                t.fail("table_size", fmt::format("{} is not prime (nearest primes: {} and {})", *m, lo, hi));
            }
            s.table_size = static_cast<uint32_t>(*m);
        }
        if (auto k = t.str("hash_key")) {
            if (!edge::hash::parse_key(*k)) t.fail("hash_key", "expected 32 hex digits (the SipHash key of the flow hash)");
            s.hash_key = *k;
        }
    }

    if (auto t = root.table("lb")) {
        t->only({"conntrack_size", "encap_source_v4", "encap_source_v6"});
        if (auto v = t->integer("conntrack_size", 1024, 1 << 26)) s.conntrack_size = static_cast<uint32_t>(*v);
        if (auto v = t->str("encap_source_v4")) {
            auto p = Prefix::parse(*v);
            if (!p || !p->addr().is_v4()) t->fail("encap_source_v4", "expected an IPv4 prefix such as 172.16.0.0/16");
            s.encap_source_v4 = *v;
        }
        if (auto v = t->str("encap_source_v6")) {
            auto p = Prefix::parse(*v);
            if (!p || !p->addr().is_v6() || p->length() < 96)
                t->fail("encap_source_v6", "expected an IPv6 prefix of length 96..128 such as fd00:e:1b::/96");
            s.encap_source_v6 = *v;
        }
    }

    if (auto t = root.table("bgp")) {
        t->only({"hold_time", "communities", "health_interval", "health_rise", "health_fall"});
        if (auto v = t->integer("hold_time", 0, 65535)) {
            if (*v == 1 || *v == 2) t->fail("hold_time", "must be 0 or at least 3 seconds (RFC 4271)");
            s.hold_time = static_cast<uint32_t>(*v);
        }
        for (auto& c : t->strings("communities")) {
            auto colon = c.find(':');
            unsigned long a = 0, b = 0;
            bool ok = colon != std::string::npos;
            if (ok) {
                auto r1 = std::from_chars(c.data(), c.data() + colon, a);
                auto r2 = std::from_chars(c.data() + colon + 1, c.data() + c.size(), b);
                ok = r1.ec == std::errc() && r1.ptr == c.data() + colon && r2.ec == std::errc() &&
                     r2.ptr == c.data() + c.size() && a <= 65535 && b <= 65535 && colon > 0;
            }
            if (!ok) t->fail("communities", fmt::format("bad community '{}': expected ASN:VALUE, both 0..65535", c));
            s.communities.push_back(c);
        }
        if (auto v = t->real("health_interval")) {
            if (*v < 0.05 || *v > 3600) t->fail("health_interval", "expected 0.05..3600 seconds");
            s.health_interval = *v;
        }
        if (auto v = t->integer("health_rise", 1, 100)) s.health_rise = static_cast<int>(*v);
        if (auto v = t->integer("health_fall", 1, 100)) s.health_fall = static_cast<int>(*v);
    }

    if (auto t = root.table("guard")) {
        t->only({"urpf", "src_pps", "factor", "floor_syn_pps", "syn_pps", "flood_syn_pps", "cookie", "allow", "deny"});
        if (auto v = t->str("urpf")) {
            if (*v != "off" && *v != "loose" && *v != "strict") t->fail("urpf", fmt::format("'{}': expected off, loose or strict", *v));
            s.urpf = *v;
        }
        if (auto v = t->integer("src_pps", 0, int64_t{1} << 32)) s.src_pps = static_cast<uint64_t>(*v);
        if (auto v = t->real("factor")) {
            if (*v < 1 || *v > 1000) t->fail("factor", "expected a number 1..1000");
            s.factor = *v;
        }
        if (auto v = t->real("floor_syn_pps")) {
            if (*v <= 0) t->fail("floor_syn_pps", "expected a rate > 0");
            s.floor_syn_pps = *v;
        }
        if (auto v = t->integer("syn_pps", 0, int64_t{1} << 32)) s.syn_pps = static_cast<uint64_t>(*v);
        if (auto v = t->integer("flood_syn_pps", 0, int64_t{1} << 32)) s.flood_syn_pps = static_cast<uint64_t>(*v);
        if (auto v = t->str("cookie")) {
            if (*v != "auto" && *v != "always" && *v != "never") t->fail("cookie", fmt::format("'{}': expected auto, always or never", *v));
            s.cookie = *v;
        }
        for (auto key : {"allow", "deny"}) {
            for (auto& p : t->strings(key)) {
                auto pr = Prefix::parse(p);
                if (!pr) t->fail(key, fmt::format("bad prefix '{}': {}", p, pr.error()));
                (std::string_view(key) == "allow" ? s.allow : s.deny).push_back(p);
            }
        }
    }

    auto cache = root.table("cache");
    if (!cache) edge::usage_error("{}: missing [cache] table (origin = \"ADDR:PORT\")", doc.path);
    cache->only({"origin", "port", "admin", "cache_size", "max_object_size", "threads", "proxy_protocol"});
    auto origin = cache->str("origin");
    if (!origin) cache->fail("origin", "missing: the origin server ADDR:PORT behind the caches");
    auto oe = edge::net::Endpoint::parse(*origin);
    if (!oe) cache->fail("origin", fmt::format("'{}': {} (ADDR:PORT or [V6]:PORT)", *origin, oe.error()));
    if (vips.count(oe->addr)) cache->fail("origin", fmt::format("the origin {} is a VIP: requests would loop", oe->addr.to_string()));
    s.origin = *origin;
    if (auto v = cache->integer("port", 1, 65535)) s.cache_port = static_cast<uint16_t>(*v);
    bool served = false;
    for (auto& v : s.vips)
        for (auto& svc : v.services) served = served || (svc.proto == "tcp" && svc.port == s.cache_port);
    if (!served) cache->fail("port", fmt::format("no VIP has a {}/tcp service: the caches would receive nothing", s.cache_port));
    if (auto v = cache->str("admin")) {
        auto e = edge::net::Endpoint::parse(*v);
        if (!e) cache->fail("admin", fmt::format("'{}': {} (ADDR:PORT)", *v, e.error()));
        s.admin = *v;
    }
    if (auto v = cache->str("cache_size")) {
        check_size(*cache, "cache_size", *v);
        s.cache_size = *v;
    }
    if (auto v = cache->str("max_object_size")) {
        check_size(*cache, "max_object_size", *v);
        s.max_object_size = *v;
    }
    if (auto v = cache->integer("threads", 0, 256)) s.threads = static_cast<uint32_t>(*v);
    if (auto v = cache->boolean("proxy_protocol")) s.proxy_protocol = *v;

    // PoPs.
    std::map<std::string, std::string> pop_names;          // name -> where
    std::map<IpAddr, std::string> router_ids, backend_pop;  // -> PoP name
    size_t most_backends = 0;
    std::optional<Table> first_pop;
    for (auto& t : root.tables("pop")) {
        if (!first_pop) first_pop = t;
        t.only({"name", "asn", "router_id", "health", "backends", "peer", "med", "prepend"});
        Pop p;
        auto n = t.str("name");
        if (!n) t.fail("name", "missing: every [[pop]] needs a name (it names the render directory)");
        if (!valid_pop_name(*n)) t.fail("name", fmt::format("'{}': use 1..32 of a-z, 0-9, '-', '_' (it is a directory name)", *n));
        if (pop_names.count(*n)) t.fail("name", fmt::format("PoP '{}' is defined twice", *n));
        pop_names[*n] = *n;
        p.name = *n;
        p.asn = asn(t, "asn", true);
        auto rid = t.str("router_id");
        if (!rid) t.fail("router_id", "missing: the BGP router ID, an IPv4 address");
        p.router_id = address(t, "router_id", *rid);
        if (!p.router_id.is_v4()) t.fail("router_id", "a router ID is an IPv4 address");
        if (auto [it, fresh] = router_ids.emplace(p.router_id, p.name); !fresh)
            t.fail("router_id", fmt::format("{} is also the router ID of PoP '{}'", p.router_id.to_string(), it->second));
        if (auto v = t.integer("med", 0, int64_t{0xffffffff})) p.med = static_cast<uint32_t>(*v);
        if (auto v = t.integer("prepend", 0, 32)) p.prepend = static_cast<int>(*v);
        if (auto h = t.str("health")) {
            auto why = health_kind_error(*h);
            if (!why.empty()) t.fail("health", why);
            p.health = *h;
        }
        for (auto& str : t.strings("backends")) {
            auto b = parse_backend(t, str);
            for (auto& q : p.backends)
                if (q.address == b.address) t.fail("backends", fmt::format("backend {} is listed twice", b.address.to_string()));
            if (auto it = backend_pop.find(b.address); it != backend_pop.end())
                t.fail("backends", fmt::format("backend {} is also in PoP '{}': a backend belongs to one PoP", b.address.to_string(),
                                               it->second));
            if (vips.count(b.address)) t.fail("backends", fmt::format("backend {} is a VIP", b.address.to_string()));
            for (auto& pr : s.prefixes)
                if (pr.contains(b.address))
                    t.fail("backends", fmt::format("backend {} is inside the anycast prefix {}: encapsulated packets would come back",
                                                   b.address.to_string(), pr.to_string()));
            p.backends.push_back(b);
        }
        for (auto& b : p.backends) backend_pop[b.address] = p.name;
        size_t active = 0;
        for (auto& b : p.backends) active += b.weight > 0;
        if (p.backends.empty()) t.fail("backends", "missing: a PoP needs backends = [\"ADDR[=WEIGHT]\", ...]");
        if (active == 0) t.fail("backends", "every backend has weight 0 (drained): the PoP could serve nothing");
        most_backends = std::max(most_backends, active);
        for (auto& pt : t.tables("peer")) {
            pt.only({"name", "address", "remote_as", "local_address", "next_hop6", "passive"});
            Peer peer;
            auto a = pt.str("address");
            if (!a) pt.fail("address", "missing: the peer's IP address");
            peer.address = address(pt, "address", *a);
            peer.name = pt.str("name").value_or(*a);
            peer.remote_as = asn(pt, "remote_as", true);
            if (auto la = pt.str("local_address")) {
                peer.local_address = address(pt, "local_address", *la);
                if (peer.local_address->is_v4() != peer.address.is_v4())
                    pt.fail("local_address", "the local and peer addresses must be of the same family");
            }
            if (auto nh = pt.str("next_hop6")) {
                peer.next_hop6 = address(pt, "next_hop6", *nh);
                if (!peer.next_hop6->is_v6()) pt.fail("next_hop6", "expected an IPv6 address (the next hop of IPv6 routes)");
            }
            peer.passive = pt.boolean("passive").value_or(false);
            for (auto& q : p.peers) {
                if (q.address == peer.address) pt.fail("address", fmt::format("peer {} is listed twice", peer.address.to_string()));
                if (q.name == peer.name) pt.fail("name", fmt::format("peer name '{}' is used twice in this PoP", peer.name));
            }
            p.peers.push_back(std::move(peer));
        }
        if (p.peers.empty()) t.fail("name", fmt::format("PoP '{}' has no [[pop.peer]]: nothing would hear its announcements", p.name));
        for (auto& pr : s.prefixes) {
            bool v4 = pr.addr().is_v4(), carried = false;
            for (auto& q : p.peers) carried = carried || (v4 ? q.carries_v4() : q.carries_v6());
            if (!carried)
                t.fail("name", fmt::format("PoP '{}' has no peer that carries {} (IPv{}): add an IPv{} peer{}", p.name, pr.to_string(),
                                           v4 ? 4 : 6, v4 ? 4 : 6, v4 ? "" : " or next_hop6 on a peer"));
        }
        s.pops.push_back(std::move(p));
    }
    if (s.pops.empty()) edge::usage_error("{}: no [[pop]] tables: the prefixes would be announced from nowhere", doc.path);
    if (most_backends > s.table_size) {
        if (maglev_t) maglev_t->fail("table_size", fmt::format("{} slots for {} backends: use a larger prime", s.table_size, most_backends));
        edge::usage_error("{}: the Maglev table ({} slots) is smaller than {} backends", doc.path, s.table_size, most_backends);
    }
    return s;
}

}  // namespace edgectl
