// HTTP caching rules (RFC 9111) for a shared cache, plus RFC 9213 CDN-Cache-Control:
// Cache-Control parsing, storability, freshness lifetime, Age, and what to do with a
// stored response for a given request.
#pragma once
#include <cstdint>
#include <string_view>

namespace edge::http {

// Cache-Control directives (request or response). Numbers are -1 when absent.
// Several header lines accumulate through parse(). Unknown extensions are ignored.
struct CacheControl {
    bool no_store = false, no_cache = false, private_ = false, public_ = false;
    bool must_revalidate = false, proxy_revalidate = false, only_if_cached = false;
    bool no_transform = false, immutable = false, must_understand = false;
    bool max_stale_any = false;  // "max-stale" without a value: any staleness
    int64_t max_age = -1, s_maxage = -1, max_stale = -1, min_fresh = -1;
    int64_t stale_while_revalidate = -1, stale_if_error = -1;
    bool any = false;  // at least one directive was seen

    void parse(std::string_view value);
    static CacheControl from(std::string_view value) {
        CacheControl c;
        c.parse(value);
        return c;
    }
};

// Status codes a cache may store with heuristic freshness (RFC 9110 §15.1).
bool heuristically_cacheable(int status);

// What a cache knows about a stored (or about to be stored) response.
struct ResponseFacts {
    int status = 200;
    CacheControl cc;             // Cache-Control
    CacheControl cdn;            // CDN-Cache-Control (RFC 9213), used when cdn.any
    bool has_expires = false;    // Expires present (an invalid value means "already expired")
    int64_t expires = 0;         // parsed Expires, or 0 when invalid
    int64_t date = -1;           // Date, -1 when absent or invalid
    int64_t age = 0;             // Age received from upstream
    int64_t last_modified = -1;  // Last-Modified, -1 when absent or invalid
    bool has_etag = false;
    bool vary_star = false;
    bool set_cookie = false;
    int64_t request_time = 0;   // when the request that got this response was sent
    int64_t response_time = 0;  // when the response was received

    // The directives that govern this cache: CDN-Cache-Control when present (and then
    // Cache-Control and Expires are ignored, RFC 9213 §2.1), else Cache-Control.
    const CacheControl& effective() const { return cdn.any ? cdn : cc; }
    // Feed each response header field (name, value) in order; fills the fields above.
    void add_header(std::string_view name, std::string_view value);
};

struct CachePolicy {
    double heuristic_fraction = 0.1;     // of (Date - Last-Modified), RFC 9111 §4.2.2
    int64_t heuristic_max = 86400;       // upper bound on heuristic lifetime, seconds
    bool store_set_cookie = false;       // responses with Set-Cookie need public/s-maxage unless set
};

enum class NoStore {
    storable,
    method,          // not GET
    status,          // not a final status this cache understands or can store
    request_no_store,
    response_no_store,
    private_,
    authorization,   // Authorization without public/s-maxage/must-revalidate
    vary_star,
    no_explicit,     // no explicit freshness and the status is not heuristically cacheable
    set_cookie,
};
const char* describe(NoStore r);

// RFC 9111 §3: may a shared cache store this response to this request?
NoStore storable(std::string_view method, const CacheControl& req, bool has_authorization, const ResponseFacts& r,
                 const CachePolicy& p = {});

// RFC 9111 §4.2.1 (shared cache): s-maxage, max-age, Expires - Date, else heuristic.
// `heuristic` is set when the lifetime came from the heuristic.
int64_t freshness_lifetime(const ResponseFacts& r, const CachePolicy& p = {}, bool* heuristic = nullptr);
// RFC 9111 §4.2.3.
int64_t current_age(const ResponseFacts& r, int64_t now);
// May a stale copy ever be served without revalidation? (no-cache, must-revalidate,
// proxy-revalidate and s-maxage forbid it in a shared cache.)
bool stale_forbidden(const ResponseFacts& r);

enum class Use {
    fresh,                 // serve it
    stale_allowed,         // stale but the request accepts it (max-stale)
    stale_revalidate,      // stale within stale-while-revalidate: serve and refresh in the background
    revalidate,            // must be validated with the origin (or fetched) first
};
struct Verdict {
    Use use;
    int64_t age;       // current age, seconds (the Age header value)
    int64_t lifetime;  // freshness lifetime, seconds
};
// RFC 9111 §4: can the stored response `r` satisfy a request with directives `req`?
Verdict evaluate(const ResponseFacts& r, const CacheControl& req, int64_t now, const CachePolicy& p = {});
// RFC 5861 stale-if-error: may `r` be served when the origin fails (5xx or unreachable)?
bool stale_if_error_ok(const ResponseFacts& r, const CacheControl& req, int64_t now, const CachePolicy& p = {});

}  // namespace edge::http
