// A record: one line of output, rendered as text or as a JSON Line.
// Every record has a "type"; field names are snake_case and carry units (rtt_us, bytes).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace edge::out {

class Record {
public:
    explicit Record(std::string_view type);

    Record& str(std::string_view key, std::string_view value);
    Record& num(std::string_view key, int64_t value);
    Record& num(std::string_view key, uint64_t value);
    Record& num(std::string_view key, int value) { return num(key, int64_t{value}); }
    Record& num(std::string_view key, unsigned value) { return num(key, uint64_t{value}); }
    Record& real(std::string_view key, double value, int text_precision = 4);
    Record& boolean(std::string_view key, bool value);
    Record& null(std::string_view key);
    Record& strings(std::string_view key, const std::vector<std::string>& values);
    // A nested object (its own "type" is not written).
    Record& object(std::string_view key, const Record& sub);
    Record& objects(std::string_view key, const std::vector<Record>& subs);

    // Text rendering: if set, this line is printed in text mode instead of key=value pairs.
    Record& text(std::string line) {
        text_ = std::move(line);
        return *this;
    }

    std::string_view type() const { return type_; }
    std::string json() const;          // {"type":...,...} without newline
    std::string json_body() const;     // fields only, without type and braces
    std::string text_line() const;     // the text rendering, without newline
    const std::vector<std::pair<std::string, std::string>>& fields() const { return text_fields_; }

private:
    void key(std::string_view k);
    std::string type_;
    std::string body_;  // JSON fields, comma separated
    std::string text_;
    std::vector<std::pair<std::string, std::string>> text_fields_;
};

}  // namespace edge::out
