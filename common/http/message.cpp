#include "http/message.hpp"

#include <cstring>

namespace edge::http {

namespace {
char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

bool is_tchar(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != 0;
}

// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

const char* const k_months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
const char* const k_days[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};  // 1970-01-01 was a Thursday

int month_index(std::string_view m) {
    for (int i = 0; i < 12; i++)
        if (m.size() == 3 && iequals(m, k_months[i])) return i + 1;
    return 0;
}

bool digits(std::string_view s, size_t n, int& out) {
    if (s.size() != n) return false;
    int v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + (c - '0');
    }
    out = v;
    return true;
}

bool parse_time(std::string_view t, int& h, int& mi, int& s) {
    return t.size() == 8 && t[2] == ':' && t[5] == ':' && digits(t.substr(0, 2), 2, h) && digits(t.substr(3, 2), 2, mi) &&
           digits(t.substr(6, 2), 2, s) && h < 24 && mi < 60 && s <= 60;
}

std::optional<int64_t> make_time(int y, int mon, int d, int h, int mi, int s) {
    if (mon < 1 || mon > 12 || d < 1 || d > 31) return std::nullopt;
    return days_from_civil(y, static_cast<unsigned>(mon), static_cast<unsigned>(d)) * 86400 + h * 3600 + mi * 60 + s;
}
}  // namespace

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); i++)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool list_contains(std::string_view v, std::string_view token) {
    bool found = false;
    for_each_list_element(v, [&](std::string_view e) {
        if (iequals(e, token)) found = true;
        return !found;
    });
    return found;
}

std::optional<int64_t> parse_date(std::string_view s) {
    s = trim(s);
    int d = 0, y = 0, h = 0, mi = 0, sec = 0;
    // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
    if (s.size() == 29 && s[3] == ',' && s[4] == ' ' && s[7] == ' ' && s[11] == ' ' && s[16] == ' ' && s[25] == ' ' &&
        s.substr(26) == "GMT") {
        int mon = month_index(s.substr(8, 3));
        if (!mon || !digits(s.substr(5, 2), 2, d) || !digits(s.substr(12, 4), 4, y) || !parse_time(s.substr(17, 8), h, mi, sec))
            return std::nullopt;
        return make_time(y, mon, d, h, mi, sec);
    }
    // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
    if (auto comma = s.find(", "); comma != std::string_view::npos && comma >= 6 && s.size() == comma + 24 &&
                                   s[comma + 4] == '-' && s[comma + 8] == '-' && s.substr(s.size() - 4) == " GMT") {
        auto r = s.substr(comma + 2);
        int mon = month_index(r.substr(3, 3));
        if (!mon || !digits(r.substr(0, 2), 2, d) || !digits(r.substr(7, 2), 2, y) || r[9] != ' ' ||
            !parse_time(r.substr(10, 8), h, mi, sec))
            return std::nullopt;
        y += y < 70 ? 2000 : 1900;  // RFC 9110: two-digit years more than 50 years ahead are in the past
        return make_time(y, mon, d, h, mi, sec);
    }
    // asctime: "Sun Nov  6 08:49:37 1994"
    if (s.size() == 24 && s[3] == ' ' && s[7] == ' ' && s[10] == ' ' && s[19] == ' ') {
        int mon = month_index(s.substr(4, 3));
        std::string_view dd = s.substr(8, 2);
        if (dd[0] == ' ') dd.remove_prefix(1);
        if (!mon || !digits(dd, dd.size(), d) || !parse_time(s.substr(11, 8), h, mi, sec) || !digits(s.substr(20, 4), 4, y))
            return std::nullopt;
        return make_time(y, mon, d, h, mi, sec);
    }
    return std::nullopt;
}

void format_date(int64_t t, char out[date_len]) {
    int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
    int64_t secs = t - days * 86400;
    // civil_from_days
    int64_t z = days + 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = static_cast<int64_t>(yoe) + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned d = doy - (153 * mp + 2) / 5 + 1;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    int wd = static_cast<int>(((days % 7) + 7) % 7);
    int h = static_cast<int>(secs / 3600), mi = static_cast<int>(secs / 60 % 60), s = static_cast<int>(secs % 60);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s, %02u %s %04d %02d:%02d:%02d GMT", k_days[wd], d, k_months[m - 1],
                  static_cast<int>(y % 10000), h, mi, s);
    std::memcpy(out, buf, date_len);
}

std::string format_date(int64_t t) {
    char b[date_len];
    format_date(t, b);
    return std::string(b, date_len);
}

std::optional<uint64_t> parse_uint(std::string_view s, uint64_t cap) {
    if (s.empty()) return std::nullopt;
    uint64_t v = 0;
    bool sat = false;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        if (!sat) {
            unsigned dgt = static_cast<unsigned>(c - '0');
            if (v > (cap - dgt) / 10) sat = true;
            else v = v * 10 + dgt;
        }
    }
    return sat ? cap : v;
}

const char* describe(Framing f) {
    switch (f) {
    case Framing::ok: return "ok";
    case Framing::bare_lf: return "bare LF line ending";
    case Framing::bare_cr: return "bare CR in header block";
    case Framing::obs_fold: return "obsolete line folding";
    case Framing::space_before_colon: return "whitespace between field name and colon";
    case Framing::bad_name: return "invalid header field name";
    case Framing::bad_value: return "control character in header value";
    case Framing::te_and_cl: return "both Transfer-Encoding and Content-Length";
    case Framing::cl_mismatch: return "conflicting or invalid Content-Length";
    case Framing::bad_te: return "Transfer-Encoding not ending in chunked";
    case Framing::too_many_headers: return "too many header fields";
    }
    return "?";
}

FramingInfo check_framing(std::string_view block, bool request, unsigned max_headers) {
    FramingInfo info;
    auto fail = [&](Framing f) {
        info.result = f;
        return info;
    };
    // Line endings first: every LF must follow a CR, every CR must precede an LF.
    for (size_t i = 0; i < block.size(); i++) {
        char c = block[i];
        if (c == '\n' && (i == 0 || block[i - 1] != '\r')) return fail(Framing::bare_lf);
        if (c == '\r' && (i + 1 >= block.size() || block[i + 1] != '\n')) return fail(Framing::bare_cr);
    }
    size_t pos = block.find("\r\n");
    if (pos == std::string_view::npos) return info;
    pos += 2;  // skip the start line
    bool te_last_chunked = false;
    bool cl_seen = false;
    while (pos < block.size()) {
        size_t eol = block.find("\r\n", pos);
        if (eol == std::string_view::npos) break;
        std::string_view line = block.substr(pos, eol - pos);
        pos = eol + 2;
        if (line.empty()) break;  // end of headers
        if (line[0] == ' ' || line[0] == '\t') return fail(Framing::obs_fold);
        if (++info.headers > max_headers) return fail(Framing::too_many_headers);
        size_t colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) return fail(Framing::bad_name);
        std::string_view name = line.substr(0, colon);
        if (name.back() == ' ' || name.back() == '\t') return fail(Framing::space_before_colon);
        for (unsigned char c : name)
            if (!is_tchar(c)) return fail(Framing::bad_name);
        std::string_view value = trim(line.substr(colon + 1));
        for (unsigned char c : value)
            if ((c < 0x20 && c != '\t') || c == 0x7f) return fail(Framing::bad_value);
        if (iequals(name, "content-length")) {
            // "Content-Length: 5, 5" and repeated fields are allowed only when all agree.
            bool bad = false;
            for_each_list_element(value, [&](std::string_view e) {
                auto n = parse_uint(e);
                if (!n || e.size() > 18) bad = true;
                else if (cl_seen && *n != info.content_length) bad = true;
                else {
                    cl_seen = true;
                    info.content_length = *n;
                }
                return !bad;
            });
            if (bad || value.empty()) return fail(Framing::cl_mismatch);
            info.has_cl = true;
        } else if (iequals(name, "transfer-encoding")) {
            info.has_te = true;
            for_each_list_element(value, [&](std::string_view e) {
                te_last_chunked = iequals(e, "chunked");
                return true;
            });
        }
    }
    if (info.has_te && info.has_cl) return fail(Framing::te_and_cl);
    if (request && info.has_te && !te_last_chunked) return fail(Framing::bad_te);
    return info;
}

size_t header_block_end(std::string_view buf, size_t from) {
    if (from >= 3) from -= 3;
    else from = 0;
    auto p = buf.find("\r\n\r\n", from);
    return p == std::string_view::npos ? 0 : p + 4;
}

RangeResult parse_range(std::string_view h, uint64_t size, ByteRange& out) {
    h = trim(h);
    if (h.empty()) return RangeResult::none;
    if (h.size() < 6 || !iequals(h.substr(0, 6), "bytes=")) return RangeResult::ignore;
    std::string_view spec = trim(h.substr(6));
    if (spec.find(',') != std::string_view::npos) return RangeResult::ignore;  // multipart: whole body
    size_t dash = spec.find('-');
    if (dash == std::string_view::npos) return RangeResult::ignore;
    std::string_view a = trim(spec.substr(0, dash)), b = trim(spec.substr(dash + 1));
    if (a.empty()) {  // suffix: last N bytes
        auto n = parse_uint(b);
        if (!n) return RangeResult::ignore;
        if (*n == 0 || size == 0) return RangeResult::unsatisfiable;
        out.first = *n >= size ? 0 : size - *n;
        out.last = size - 1;
        return RangeResult::ok;
    }
    auto f = parse_uint(a);
    if (!f) return RangeResult::ignore;
    uint64_t l = UINT64_MAX;
    if (!b.empty()) {
        auto lv = parse_uint(b);
        if (!lv || *lv < *f) return RangeResult::ignore;
        l = *lv;
    }
    if (*f >= size) return RangeResult::unsatisfiable;
    out.first = *f;
    out.last = l >= size ? size - 1 : l;
    return RangeResult::ok;
}

bool etag_weak_equal(std::string_view a, std::string_view b) {
    a = trim(a);
    b = trim(b);
    if (a.size() >= 2 && a.substr(0, 2) == "W/") a.remove_prefix(2);
    if (b.size() >= 2 && b.substr(0, 2) == "W/") b.remove_prefix(2);
    return !a.empty() && a == b;
}

bool if_none_match_matches(std::string_view header, std::string_view etag) {
    if (etag.empty()) return false;
    if (trim(header) == "*") return true;
    bool m = false;
    for_each_list_element(header, [&](std::string_view e) {
        m = etag_weak_equal(e, etag);
        return !m;
    });
    return m;
}

}  // namespace edge::http
