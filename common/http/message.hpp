// HTTP/1.1 message helpers shared by tools: case-insensitive tokens, list splitting,
// HTTP-dates, strict header-block checks against request smuggling, byte ranges.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace edge::http {

bool iequals(std::string_view a, std::string_view b);
std::string_view trim(std::string_view s);  // optional whitespace (SP, HTAB) both sides

// Calls f(element) for each non-empty element of a comma-separated list (RFC 9110 §5.6.1),
// trimmed; commas inside quoted strings do not split. Stops early when f returns false.
template <typename F>
void for_each_list_element(std::string_view v, F&& f) {
    size_t start = 0;
    bool quoted = false;
    for (size_t i = 0; i <= v.size(); i++) {
        if (i < v.size()) {
            char c = v[i];
            if (quoted) {
                if (c == '\\' && i + 1 < v.size()) i++;
                else if (c == '"') quoted = false;
                continue;
            }
            if (c == '"') { quoted = true; continue; }
            if (c != ',') continue;
        }
        std::string_view e = trim(v.substr(start, i - start));
        if (!e.empty() && !f(e)) return;
        start = i + 1;
    }
}
// True if the comma-separated list `v` contains `token` (case-insensitive).
bool list_contains(std::string_view v, std::string_view token);

// HTTP-date (RFC 9110 §5.6.7): IMF-fixdate, and the obsolete RFC 850 and asctime forms.
// Returns seconds since the epoch, or nullopt for anything else.
std::optional<int64_t> parse_date(std::string_view s);
// IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT" (always 29 characters).
std::string format_date(int64_t t);
constexpr size_t date_len = 29;
void format_date(int64_t t, char out[date_len]);

// A non-negative decimal (delta-seconds, Content-Length); nullopt on anything else.
// Values above `cap` saturate to `cap` (RFC 9111 §1.2.2 allows 2^31).
std::optional<uint64_t> parse_uint(std::string_view s, uint64_t cap = UINT64_MAX);

// Strict checks on a raw header block (from the first byte of the start line up to and
// including the empty line) that a lenient parser would let through. Each one is a
// request-smuggling vector; a proxy must answer 400 and close.
enum class Framing {
    ok,
    bare_lf,             // LF not preceded by CR
    bare_cr,             // CR not followed by LF
    obs_fold,            // a header line starting with SP/HTAB (RFC 9112 §5.2)
    space_before_colon,  // "Name : value" (RFC 9112 §5.1)
    bad_name,            // empty or non-token field name, or a line without a colon
    bad_value,           // NUL or other control characters in a value
    te_and_cl,           // Transfer-Encoding and Content-Length together (RFC 9112 §6.3)
    cl_mismatch,         // several Content-Length values that differ, or one that is not a number
    bad_te,              // Transfer-Encoding whose final coding is not chunked (requests)
    too_many_headers,
};
const char* describe(Framing f);
struct FramingInfo {
    Framing result = Framing::ok;
    bool has_cl = false, has_te = false;
    uint64_t content_length = 0;
    unsigned headers = 0;
};
// `request`: a request's Transfer-Encoding must end in chunked (RFC 9112 §6.3 item 4).
FramingInfo check_framing(std::string_view block, bool request, unsigned max_headers = 100);

// Position just past the CRLFCRLF ending a header block in `buf`, searching from `from`;
// 0 if not complete yet.
size_t header_block_end(std::string_view buf, size_t from = 0);

// Range: bytes=... (RFC 9110 §14). Only a single range is served; several ranges,
// other units or syntax errors are "ignore" (serve the whole representation).
struct ByteRange {
    uint64_t first = 0, last = 0;  // inclusive
};
enum class RangeResult { none, ok, unsatisfiable, ignore };
RangeResult parse_range(std::string_view header, uint64_t size, ByteRange& out);

// ETag comparison (RFC 9110 §8.8.3.2): weak compares opaque tags only.
bool etag_weak_equal(std::string_view a, std::string_view b);
// If-None-Match list (or "*") against a stored ETag, weak comparison.
bool if_none_match_matches(std::string_view header, std::string_view etag);

}  // namespace edge::http
