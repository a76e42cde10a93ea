// Minimal streaming JSON text builder: the one place JSON is written.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace edge::out {

// Appends `s` as a JSON string literal. Invalid UTF-8 becomes U+FFFD, so output is
// always valid JSON even for hostile input (SNI, BGP text, HTTP headers).
void append_json_string(std::string& dst, std::string_view s);
void append_json_number(std::string& dst, double v);  // NaN/inf -> null
// Length of the well-formed UTF-8 sequence at s[i] (1 for ASCII), or 0: truncated, a bad
// continuation, overlong, a surrogate or past U+10FFFF. JSON input checks with it too.
size_t utf8_length(std::string_view s, size_t i);

}  // namespace edge::out
