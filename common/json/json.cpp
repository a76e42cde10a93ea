#include "json/json.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "out/json.hpp"

namespace edge::json {

namespace {

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

void put_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xc0 | cp >> 6));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xe0 | cp >> 12));
        out.push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3f)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
        out.push_back(static_cast<char>(0xf0 | cp >> 18));
        out.push_back(static_cast<char>(0x80 | (cp >> 12 & 0x3f)));
        out.push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3f)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
}

}  // namespace

// ---------------------------------------------------------------- parsing

bool Document::fail(std::string_view what) {
    error_.assign(what);
    error_ += pos_ < in_.size() ? " at byte " + std::to_string(pos_ + 1) : " at the end of the input";
    return false;
}

void Document::skip_ws() noexcept {
    while (pos_ < in_.size() && (in_[pos_] == ' ' || in_[pos_] == '\n' || in_[pos_] == '\r' || in_[pos_] == '\t')) ++pos_;
}

bool Document::parse(std::string_view text) {
    in_ = text;
    pos_ = 0;
    nodes_.clear();
    strings_.clear();
    error_.clear();
    skip_ws();
    bool ok = value(0);
    if (ok) {
        skip_ws();
        if (pos_ != in_.size()) ok = fail("more after the JSON value");
    }
    if (!ok) nodes_.clear();
    return ok;
}

bool Document::literal(std::string_view word, Type t, bool b) {
    if (in_.substr(pos_, word.size()) != word) return fail("not a JSON value");
    pos_ += word.size();
    Node& n = nodes_.emplace_back();
    n.type = t;
    n.b = b;
    n.end = static_cast<uint32_t>(nodes_.size());
    return true;
}

bool Document::number() {
    // RFC 8259 6: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
    const std::size_t start = pos_;
    const bool neg = in_[pos_] == '-';
    if (neg) ++pos_;
    if (pos_ >= in_.size() || !is_digit(in_[pos_])) return fail("invalid number");
    if (in_[pos_] == '0') {
        ++pos_;
        if (pos_ < in_.size() && is_digit(in_[pos_])) return fail("invalid number (leading zero)");
    } else {
        while (pos_ < in_.size() && is_digit(in_[pos_])) ++pos_;
    }
    bool integer = true;
    if (pos_ < in_.size() && in_[pos_] == '.') {
        integer = false;
        ++pos_;
        if (pos_ >= in_.size() || !is_digit(in_[pos_])) return fail("invalid number (no digit after '.')");
        while (pos_ < in_.size() && is_digit(in_[pos_])) ++pos_;
    }
    if (pos_ < in_.size() && (in_[pos_] == 'e' || in_[pos_] == 'E')) {
        integer = false;
        ++pos_;
        if (pos_ < in_.size() && (in_[pos_] == '+' || in_[pos_] == '-')) ++pos_;
        if (pos_ >= in_.size() || !is_digit(in_[pos_])) return fail("invalid number (no digit in the exponent)");
        while (pos_ < in_.size() && is_digit(in_[pos_])) ++pos_;
    }
    const char* b = in_.data() + start;
    const char* e = in_.data() + pos_;
    Node n;
    n.end = static_cast<uint32_t>(nodes_.size() + 1);
    if (integer) {
        // Integers keep their exact value where 64 bits hold it; larger ones are doubles.
        uint64_t mag = 0;
        auto r = std::from_chars(b + neg, e, mag);
        if (r.ec == std::errc() && r.ptr == e) {
            if (!neg && mag <= uint64_t(std::numeric_limits<int64_t>::max())) {
                n.type = Type::int64;
                n.i = static_cast<int64_t>(mag);
            } else if (!neg) {
                n.type = Type::uint64;
                n.u = mag;
            } else if (mag <= uint64_t(std::numeric_limits<int64_t>::max()) + 1) {
                n.type = Type::int64;
                n.i = static_cast<int64_t>(0 - mag);
            } else {
                integer = false;
            }
        } else {
            integer = false;
        }
    }
    if (!integer) {
        double d = 0;
        auto r = std::from_chars(b, e, d);
        if (r.ec == std::errc::result_out_of_range && r.ptr == e) {
            // Too small for a double is 0 (or the nearest denormal); too large is an error
            // (RFC 8259 leaves both to the reader).
            const std::string copy(b, e);
            d = std::strtod(copy.c_str(), nullptr);
            if (std::isinf(d)) {
                pos_ = start;
                return fail("number out of range");
            }
        } else if (r.ec != std::errc() || r.ptr != e) {
            pos_ = start;
            return fail("invalid number");
        }
        n.type = Type::number;
        n.d = d;
    }
    nodes_.push_back(n);
    return true;
}

bool Document::string() {
    ++pos_;  // the opening quote
    const std::size_t first = strings_.size();
    const std::size_t n = in_.size();
    while (true) {
        // A run of plain ASCII is copied at once.
        std::size_t run = pos_;
        while (run < n) {
            const auto c = static_cast<unsigned char>(in_[run]);
            if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') break;
            ++run;
        }
        strings_.append(in_.data() + pos_, run - pos_);
        pos_ = run;
        if (pos_ >= n) return fail("unterminated string");
        const auto c = static_cast<unsigned char>(in_[pos_]);
        if (c == '"') {
            ++pos_;
            break;
        }
        if (c < 0x20) return fail("control character in a string");
        if (c >= 0x80) {
            const std::size_t k = out::utf8_length(in_, pos_);
            if (k == 0) return fail("invalid UTF-8 in a string");
            strings_.append(in_.data() + pos_, k);
            pos_ += k;
            continue;
        }
        // A backslash escape.
        if (pos_ + 1 >= n) return fail("unterminated string");
        const char e = in_[pos_ + 1];
        pos_ += 2;
        switch (e) {
        case '"': strings_.push_back('"'); break;
        case '\\': strings_.push_back('\\'); break;
        case '/': strings_.push_back('/'); break;
        case 'b': strings_.push_back('\b'); break;
        case 'f': strings_.push_back('\f'); break;
        case 'n': strings_.push_back('\n'); break;
        case 'r': strings_.push_back('\r'); break;
        case 't': strings_.push_back('\t'); break;
        case 'u': {
            auto unit = [&](uint32_t& u) {
                if (pos_ + 4 > n) return false;
                u = 0;
                for (int k = 0; k < 4; ++k) {
                    const int h = hex_value(in_[pos_ + k]);
                    if (h < 0) return false;
                    u = u << 4 | uint32_t(h);
                }
                pos_ += 4;
                return true;
            };
            uint32_t u;
            if (!unit(u)) return fail("invalid \\u escape");
            if (u >= 0xdc00 && u <= 0xdfff) return fail("invalid \\u escape (a lone low surrogate)");
            if (u >= 0xd800 && u <= 0xdbff) {
                uint32_t lo;
                if (pos_ + 2 > n || in_[pos_] != '\\' || in_[pos_ + 1] != 'u') return fail("invalid \\u escape (a lone high surrogate)");
                pos_ += 2;
                if (!unit(lo) || lo < 0xdc00 || lo > 0xdfff) return fail("invalid \\u escape (a lone high surrogate)");
                u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
            }
            put_utf8(strings_, u);
            break;
        }
        default:
            pos_ -= 2;
            return fail("invalid escape in a string");
        }
    }
    if (strings_.size() > std::numeric_limits<uint32_t>::max()) return fail("input too large");
    Node& node = nodes_.emplace_back();
    node.type = Type::string;
    node.s = {static_cast<uint32_t>(first), static_cast<uint32_t>(strings_.size() - first)};
    node.end = static_cast<uint32_t>(nodes_.size());
    return true;
}

bool Document::value(std::size_t depth) {
    if (pos_ >= in_.size()) return fail("no JSON value");
    if (nodes_.size() >= std::numeric_limits<uint32_t>::max() - 1) return fail("input too large");
    const char c = in_[pos_];
    if (c == '"') return string();
    if (c == '{' || c == '[') {
        if (depth >= max_depth) return fail("nested more than 1024 deep");
        const bool obj = c == '{';
        const char close = obj ? '}' : ']';
        const auto me = static_cast<uint32_t>(nodes_.size());
        nodes_.emplace_back().type = obj ? Type::object : Type::array;
        ++pos_;
        skip_ws();
        uint32_t count = 0;
        if (pos_ < in_.size() && in_[pos_] == close) {
            ++pos_;
        } else {
            while (true) {
                if (obj) {
                    if (pos_ >= in_.size() || in_[pos_] != '"') return fail("expected a member name in quotes");
                    if (!string()) return false;  // the member's name
                    skip_ws();
                    if (pos_ >= in_.size() || in_[pos_] != ':') return fail("expected ':' after a member name");
                    ++pos_;
                    skip_ws();
                }
                if (!value(depth + 1)) return false;
                ++count;
                skip_ws();
                if (pos_ < in_.size() && in_[pos_] == ',') {
                    ++pos_;
                    skip_ws();
                    continue;
                }
                if (pos_ < in_.size() && in_[pos_] == close) {
                    ++pos_;
                    break;
                }
                return fail(obj ? "expected ',' or '}' in an object" : "expected ',' or ']' in an array");
            }
        }
        nodes_[me].count = count;
        nodes_[me].end = static_cast<uint32_t>(nodes_.size());
        return true;
    }
    if (c == 't') return literal("true", Type::boolean, true);
    if (c == 'f') return literal("false", Type::boolean, false);
    if (c == 'n') return literal("null", Type::null, false);
    if (c == '-' || is_digit(c)) return number();
    return fail("not a JSON value");
}

// ---------------------------------------------------------------- reading

Type Value::type() const noexcept { return doc_->nodes_[i_].type; }

bool Value::is_number() const noexcept {
    if (!doc_) return false;
    const Type t = type();
    return t == Type::int64 || t == Type::uint64 || t == Type::number;
}

bool Value::get(std::string_view& out) const noexcept {
    if (!is_string()) return false;
    out = doc_->str(doc_->nodes_[i_]);
    return true;
}

bool Value::get(int64_t& out) const noexcept {
    if (!doc_) return false;
    const auto& n = doc_->nodes_[i_];
    if (n.type == Type::int64) {
        out = n.i;
        return true;
    }
    return false;  // uint64 values are above int64's range
}

bool Value::get(uint64_t& out) const noexcept {
    if (!doc_) return false;
    const auto& n = doc_->nodes_[i_];
    if (n.type == Type::uint64) {
        out = n.u;
        return true;
    }
    if (n.type == Type::int64 && n.i >= 0) {
        out = static_cast<uint64_t>(n.i);
        return true;
    }
    return false;
}

bool Value::get(double& out) const noexcept {
    if (!doc_) return false;
    const auto& n = doc_->nodes_[i_];
    switch (n.type) {
    case Type::int64: out = static_cast<double>(n.i); return true;
    case Type::uint64: out = static_cast<double>(n.u); return true;
    case Type::number: out = n.d; return true;
    default: return false;
    }
}

bool Value::get(bool& out) const noexcept {
    if (!doc_ || type() != Type::boolean) return false;
    out = doc_->nodes_[i_].b;
    return true;
}

Value Value::operator[](std::string_view key) const noexcept {
    for (auto [k, v] : members())
        if (k == key) return v;
    return {};
}

std::size_t Value::size() const noexcept { return is_array() || is_object() ? doc_->nodes_[i_].count : 0; }

Value::Range<Value::ElementIter> Value::elements() const noexcept {
    if (!is_array()) return {{nullptr, 0}, {nullptr, 0}};
    return {{doc_, i_ + 1}, {doc_, doc_->nodes_[i_].end}};
}

Value::Range<Value::MemberIter> Value::members() const noexcept {
    if (!is_object()) return {{nullptr, 0}, {nullptr, 0}};
    return {{doc_, i_ + 1}, {doc_, doc_->nodes_[i_].end}};
}

Value::ElementIter& Value::ElementIter::operator++() noexcept {
    i_ = d_->nodes_[i_].end;
    return *this;
}

std::pair<std::string_view, Value> Value::MemberIter::operator*() const noexcept {
    return {d_->str(d_->nodes_[i_]), Value(d_, i_ + 1)};
}

Value::MemberIter& Value::MemberIter::operator++() noexcept {
    i_ = d_->nodes_[i_ + 1].end;  // past the key and its value
    return *this;
}

std::string Value::minify() const {
    std::string out;
    if (!doc_) return out;
    const auto& n = doc_->nodes_[i_];
    char buf[32];
    switch (n.type) {
    case Type::null: out = "null"; break;
    case Type::boolean: out = n.b ? "true" : "false"; break;
    case Type::int64: out.assign(buf, std::to_chars(buf, buf + sizeof buf, n.i).ptr); break;
    case Type::uint64: out.assign(buf, std::to_chars(buf, buf + sizeof buf, n.u).ptr); break;
    case Type::number:
        // Negative zero keeps a fraction: "-0" reads back as the integer 0.
        if (n.d == 0 && std::signbit(n.d)) out = "-0.0";
        else out.assign(buf, std::to_chars(buf, buf + sizeof buf, n.d).ptr);
        break;
    case Type::string: edge::out::append_json_string(out, doc_->str(n)); break;
    case Type::array: {
        out.push_back('[');
        bool first = true;
        for (Value e : elements()) {
            if (!first) out.push_back(',');
            first = false;
            out += e.minify();
        }
        out.push_back(']');
        break;
    }
    case Type::object: {
        out.push_back('{');
        bool first = true;
        for (auto [k, v] : members()) {
            if (!first) out.push_back(',');
            first = false;
            edge::out::append_json_string(out, k);
            out.push_back(':');
            out += v.minify();
        }
        out.push_back('}');
        break;
    }
    }
    return out;
}

}  // namespace edge::json
