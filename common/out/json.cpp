#include "out/json.hpp"

#include <cmath>

#include <fmt/format.h>

namespace edge::out {

size_t utf8_length(std::string_view s, size_t i) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) return 1;
    if ((c & 0xe0) == 0xc0) { n = 2; cp = c & 0x1f; }
    else if ((c & 0xf0) == 0xe0) { n = 3; cp = c & 0x0f; }
    else if ((c & 0xf8) == 0xf0) { n = 4; cp = c & 0x07; }
    else return 0;
    if (i + n > s.size()) return 0;
    for (size_t k = 1; k < n; k++) {
        auto cc = static_cast<unsigned char>(s[i + k]);
        if ((cc & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (cc & 0x3f);
    }
    // Reject overlong forms, surrogates and out-of-range code points.
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return 0;
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return n;
}

void append_json_string(std::string& dst, std::string_view s) {
    dst.push_back('"');
    for (size_t i = 0; i < s.size();) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            size_t n = utf8_length(s, i);
            if (n == 0) {
                dst.append("\xef\xbf\xbd");
                i++;
            } else {
                dst.append(s.substr(i, n));
                i += n;
            }
            continue;
        }
        switch (c) {
        case '"': dst.append("\\\""); break;
        case '\\': dst.append("\\\\"); break;
        case '\n': dst.append("\\n"); break;
        case '\r': dst.append("\\r"); break;
        case '\t': dst.append("\\t"); break;
        default:
            if (c < 0x20 || c == 0x7f)
                fmt::format_to(std::back_inserter(dst), "\\u{:04x}", c);
            else
                dst.push_back(static_cast<char>(c));
        }
        i++;
    }
    dst.push_back('"');
}

void append_json_number(std::string& dst, double v) {
    if (!std::isfinite(v)) {
        dst.append("null");
        return;
    }
    fmt::format_to(std::back_inserter(dst), "{}", v);
}

}  // namespace edge::out
