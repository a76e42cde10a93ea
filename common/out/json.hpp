// Minimal streaming JSON text builder: the one place JSON is written.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace edge::out {

// Appends `s` as a JSON string literal. Invalid UTF-8 becomes U+FFFD, so output is
// always valid JSON even for hostile input (SNI, BGP text, HTTP headers).
void append_json_string(std::string& dst, std::string_view s);
void append_json_number(std::string& dst, double v);  // NaN/inf -> null

}  // namespace edge::out
