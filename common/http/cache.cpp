#include "http/cache.hpp"

#include <algorithm>

#include "http/message.hpp"

namespace edge::http {

namespace {
int64_t delta_seconds(std::string_view v) {
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);  // tolerated
    auto n = parse_uint(v, 2147483648ULL);
    return n ? static_cast<int64_t>(*n) : -2;  // -2: present but invalid
}
}  // namespace

void CacheControl::parse(std::string_view value) {
    for_each_list_element(value, [&](std::string_view e) {
        std::string_view name = e, arg;
        bool has_arg = false;
        if (auto eq = e.find('='); eq != std::string_view::npos) {
            name = trim(e.substr(0, eq));
            arg = trim(e.substr(eq + 1));
            has_arg = true;
        }
        any = true;
        auto num = [&](int64_t& field) {
            int64_t d = has_arg ? delta_seconds(arg) : -2;
            // An invalid value: RFC 9111 §4.2.1 says treat max-age and the like as stale.
            if (d == -2) d = 0;
            // Duplicates: the most restrictive (smallest) wins.
            field = field < 0 ? d : std::min(field, d);
        };
        if (iequals(name, "max-age")) num(max_age);
        else if (iequals(name, "s-maxage")) num(s_maxage);
        else if (iequals(name, "no-store")) no_store = true;
        else if (iequals(name, "no-cache")) no_cache = true;  // field-name form treated as unqualified (allowed)
        else if (iequals(name, "private")) private_ = true;   // likewise
        else if (iequals(name, "public")) public_ = true;
        else if (iequals(name, "must-revalidate")) must_revalidate = true;
        else if (iequals(name, "proxy-revalidate")) proxy_revalidate = true;
        else if (iequals(name, "only-if-cached")) only_if_cached = true;
        else if (iequals(name, "no-transform")) no_transform = true;
        else if (iequals(name, "immutable")) immutable = true;
        else if (iequals(name, "must-understand")) must_understand = true;
        else if (iequals(name, "max-stale")) {
            if (!has_arg) max_stale_any = true;
            else {
                int64_t d = delta_seconds(arg);
                if (d >= 0) max_stale = std::max(max_stale, d);
            }
        } else if (iequals(name, "min-fresh")) num(min_fresh);
        else if (iequals(name, "stale-while-revalidate")) {
            int64_t d = has_arg ? delta_seconds(arg) : -2;
            if (d >= 0) stale_while_revalidate = std::max(stale_while_revalidate, d);
        } else if (iequals(name, "stale-if-error")) {
            int64_t d = has_arg ? delta_seconds(arg) : -2;
            if (d >= 0) stale_if_error = std::max(stale_if_error, d);
        }
        return true;
    });
}

void ResponseFacts::add_header(std::string_view name, std::string_view value) {
    if (name.empty()) return;
    switch (name[0] | 0x20) {
    case 'a':
        if (iequals(name, "age")) {
            auto n = parse_uint(trim(value), 2147483648ULL);
            if (n) age = static_cast<int64_t>(*n);
        }
        break;
    case 'c':
        if (iequals(name, "cache-control")) cc.parse(value);
        else if (iequals(name, "cdn-cache-control")) cdn.parse(value);
        break;
    case 'd':
        if (iequals(name, "date")) date = parse_date(value).value_or(-1);
        break;
    case 'e':
        if (iequals(name, "expires")) {
            has_expires = true;
            expires = parse_date(value).value_or(0);
        } else if (iequals(name, "etag")) has_etag = true;
        break;
    case 'l':
        if (iequals(name, "last-modified")) last_modified = parse_date(value).value_or(-1);
        break;
    case 's':
        if (iequals(name, "set-cookie")) set_cookie = true;
        break;
    case 'v':
        if (iequals(name, "vary") && list_contains(value, "*")) vary_star = true;
        break;
    default: break;
    }
}

bool heuristically_cacheable(int status) {
    switch (status) {
    case 200: case 203: case 204: case 206: case 300: case 301: case 308: case 404: case 405: case 410: case 414:
    case 501:
        return true;
    default:
        return false;
    }
}

const char* describe(NoStore r) {
    switch (r) {
    case NoStore::storable: return "storable";
    case NoStore::method: return "method";
    case NoStore::status: return "status";
    case NoStore::request_no_store: return "request no-store";
    case NoStore::response_no_store: return "response no-store";
    case NoStore::private_: return "private";
    case NoStore::authorization: return "authorization";
    case NoStore::vary_star: return "vary *";
    case NoStore::no_explicit: return "no explicit freshness";
    case NoStore::set_cookie: return "set-cookie";
    }
    return "?";
}

namespace {
// Statuses this cache understands and can store (final, and not partial content: it
// stores whole representations only).
bool understood(int status) {
    switch (status) {
    case 200: case 203: case 204: case 300: case 301: case 302: case 303: case 307: case 308:
    case 404: case 405: case 410: case 414: case 501:
        return true;
    default:
        return false;
    }
}
bool explicit_freshness(const ResponseFacts& r) {
    const CacheControl& c = r.effective();
    return c.max_age >= 0 || c.s_maxage >= 0 || (!r.cdn.any && r.has_expires);
}
}  // namespace

NoStore storable(std::string_view method, const CacheControl& req, bool has_authorization, const ResponseFacts& r,
                 const CachePolicy& p) {
    if (method != "GET") return NoStore::method;
    if (!understood(r.status)) return NoStore::status;
    if (req.no_store) return NoStore::request_no_store;
    const CacheControl& c = r.effective();
    if (c.no_store) return NoStore::response_no_store;
    if (c.private_) return NoStore::private_;
    if (has_authorization && !(c.public_ || c.s_maxage >= 0 || c.must_revalidate)) return NoStore::authorization;
    if (r.vary_star) return NoStore::vary_star;
    if (r.set_cookie && !p.store_set_cookie && !(c.public_ || c.s_maxage >= 0)) return NoStore::set_cookie;
    if (!explicit_freshness(r) && !c.public_ && !heuristically_cacheable(r.status)) return NoStore::no_explicit;
    return NoStore::storable;
}

int64_t freshness_lifetime(const ResponseFacts& r, const CachePolicy& p, bool* heuristic) {
    if (heuristic) *heuristic = false;
    const CacheControl& c = r.effective();
    if (c.s_maxage >= 0) return c.s_maxage;
    if (c.max_age >= 0) return c.max_age;
    if (!r.cdn.any && r.has_expires) {
        if (r.expires == 0) return 0;  // invalid Expires: already expired
        int64_t date = r.date >= 0 ? r.date : r.response_time;
        return std::max<int64_t>(0, r.expires - date);
    }
    // Heuristic freshness: only without explicit expiration, and only for statuses that
    // allow it (or "public"), and never with no-cache/must-revalidate-free checks here.
    if (!(heuristically_cacheable(r.status) || c.public_)) return 0;
    if (r.last_modified < 0) return 0;
    int64_t date = r.date >= 0 ? r.date : r.response_time;
    if (date <= r.last_modified) return 0;
    if (heuristic) *heuristic = true;
    auto h = static_cast<int64_t>(static_cast<double>(date - r.last_modified) * p.heuristic_fraction);
    return std::min(h, p.heuristic_max);
}

int64_t current_age(const ResponseFacts& r, int64_t now) {
    int64_t apparent = r.date >= 0 ? std::max<int64_t>(0, r.response_time - r.date) : 0;
    int64_t delay = std::max<int64_t>(0, r.response_time - r.request_time);
    int64_t corrected_age_value = r.age + delay;
    int64_t corrected_initial = std::max(apparent, corrected_age_value);
    int64_t resident = std::max<int64_t>(0, now - r.response_time);
    return corrected_initial + resident;
}

bool stale_forbidden(const ResponseFacts& r) {
    const CacheControl& c = r.effective();
    return c.no_cache || c.must_revalidate || c.proxy_revalidate || c.s_maxage >= 0;
}

Verdict evaluate(const ResponseFacts& r, const CacheControl& req, int64_t now, const CachePolicy& p) {
    Verdict v;
    v.age = current_age(r, now);
    v.lifetime = freshness_lifetime(r, p);
    const CacheControl& c = r.effective();
    if (c.no_cache || req.no_cache) {
        v.use = Use::revalidate;
        return v;
    }
    bool fresh = v.lifetime > v.age;
    if (req.max_age >= 0 && v.age > req.max_age) fresh = false;
    if (req.min_fresh >= 0 && v.lifetime - v.age < req.min_fresh) fresh = false;
    if (fresh) {
        v.use = Use::fresh;
        return v;
    }
    int64_t staleness = std::max<int64_t>(0, v.age - v.lifetime);
    if (stale_forbidden(r)) {
        v.use = Use::revalidate;
        return v;
    }
    // max-stale only widens what is acceptable past the lifetime; a request max-age or
    // min-fresh that made a fresh response unacceptable is not overridden.
    bool within_lifetime = v.lifetime > v.age;
    if (!within_lifetime && (req.max_stale_any || (req.max_stale >= 0 && staleness <= req.max_stale)) &&
        req.max_age < 0 && req.min_fresh < 0) {
        v.use = Use::stale_allowed;
        return v;
    }
    if (!within_lifetime && c.stale_while_revalidate >= 0 && staleness <= c.stale_while_revalidate && req.max_age < 0 &&
        req.min_fresh < 0) {
        v.use = Use::stale_revalidate;
        return v;
    }
    v.use = Use::revalidate;
    return v;
}

bool stale_if_error_ok(const ResponseFacts& r, const CacheControl& req, int64_t now, const CachePolicy& p) {
    if (stale_forbidden(r) && !r.effective().no_cache) return false;
    if (r.effective().must_revalidate || r.effective().proxy_revalidate || r.effective().s_maxage >= 0) return false;
    int64_t staleness = std::max<int64_t>(0, current_age(r, now) - freshness_lifetime(r, p));
    const CacheControl& c = r.effective();
    return (c.stale_if_error >= 0 && staleness <= c.stale_if_error) ||
           (req.stale_if_error >= 0 && staleness <= req.stale_if_error);
}

}  // namespace edge::http
