// HTTP helpers on hostile input: framing checks, Cache-Control, dates, ranges, freshness.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/cache.hpp"
#include "http/message.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace edge::http;
    std::string_view s(reinterpret_cast<const char*>(data), size);
    (void)check_framing(s, true);
    (void)check_framing(s, false);
    (void)header_block_end(s);
    auto cc = CacheControl::from(s);
    (void)parse_date(s);
    ByteRange r;
    (void)parse_range(s, 1000, r);
    (void)if_none_match_matches(s, "\"x\"");
    ResponseFacts f;
    size_t nl = s.find('\n');
    f.add_header(s.substr(0, nl == s.npos ? s.size() : nl), nl == s.npos ? "" : s.substr(nl + 1));
    (void)evaluate(f, cc, 1000000);
    (void)stale_if_error_ok(f, cc, 1000000);
    return 0;
}
