#include "out/record.hpp"

#include <fmt/format.h>

#include "out/json.hpp"

namespace edge::out {

Record::Record(std::string_view type) : type_(type) {}

void Record::key(std::string_view k) {
    if (!body_.empty()) body_.push_back(',');
    append_json_string(body_, k);
    body_.push_back(':');
}

Record& Record::str(std::string_view k, std::string_view v) {
    key(k);
    append_json_string(body_, v);
    text_fields_.emplace_back(k, v);
    return *this;
}

Record& Record::num(std::string_view k, int64_t v) {
    key(k);
    fmt::format_to(std::back_inserter(body_), "{}", v);
    text_fields_.emplace_back(k, fmt::format("{}", v));
    return *this;
}

Record& Record::num(std::string_view k, uint64_t v) {
    key(k);
    fmt::format_to(std::back_inserter(body_), "{}", v);
    text_fields_.emplace_back(k, fmt::format("{}", v));
    return *this;
}

Record& Record::real(std::string_view k, double v, int prec) {
    key(k);
    append_json_number(body_, v);
    text_fields_.emplace_back(k, fmt::format("{:.{}f}", v, prec));
    return *this;
}

Record& Record::boolean(std::string_view k, bool v) {
    key(k);
    body_.append(v ? "true" : "false");
    text_fields_.emplace_back(k, v ? "true" : "false");
    return *this;
}

Record& Record::null(std::string_view k) {
    key(k);
    body_.append("null");
    text_fields_.emplace_back(k, "-");
    return *this;
}

Record& Record::strings(std::string_view k, const std::vector<std::string>& vs) {
    key(k);
    body_.push_back('[');
    std::string joined;
    for (size_t i = 0; i < vs.size(); i++) {
        if (i) {
            body_.push_back(',');
            joined.push_back(',');
        }
        append_json_string(body_, vs[i]);
        joined += vs[i];
    }
    body_.push_back(']');
    text_fields_.emplace_back(k, joined);
    return *this;
}

Record& Record::object(std::string_view k, const Record& sub) {
    key(k);
    body_.push_back('{');
    body_ += sub.body_;
    body_.push_back('}');
    text_fields_.emplace_back(k, sub.text_line());
    return *this;
}

Record& Record::objects(std::string_view k, const std::vector<Record>& subs) {
    key(k);
    body_.push_back('[');
    for (size_t i = 0; i < subs.size(); i++) {
        if (i) body_.push_back(',');
        body_.push_back('{');
        body_ += subs[i].body_;
        body_.push_back('}');
    }
    body_.push_back(']');
    text_fields_.emplace_back(k, fmt::format("[{} items]", subs.size()));
    return *this;
}

std::string Record::json_body() const { return body_; }

std::string Record::json() const {
    std::string s = "{\"type\":";
    append_json_string(s, type_);
    if (!body_.empty()) {
        s.push_back(',');
        s += body_;
    }
    s.push_back('}');
    return s;
}

std::string Record::text_line() const {
    if (!text_.empty()) return text_;
    std::string s;
    for (auto& [k, v] : text_fields_) {
        if (!s.empty()) s.push_back(' ');
        s += k;
        s.push_back('=');
        s += v;
    }
    return s;
}

}  // namespace edge::out
