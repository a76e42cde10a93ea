// JSON Lines input (stdin or a file), parsed with json::Document. Bad lines are not fatal:
// the caller gets the line number and why, counts it, and reports a summary.
#pragma once
#include <cstdio>
#include <string>

#include "json/json.hpp"

namespace edge::jsonl {

class Reader {
public:
    // "-" is stdin. Throws edge::UsageError when the file cannot be opened.
    explicit Reader(const std::string& path);
    ~Reader();
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;

    enum class Status { record, bad_line, end };
    // On record: `doc` is a JSON object valid until the next call. On bad_line: error()
    // says why (not JSON, not an object, line too long, invalid UTF-8).
    Status next(json::Value& doc);
    uint64_t line_number() const { return line_no_; }
    const std::string& error() const { return error_; }
    const std::string& name() const { return name_; }

    static constexpr size_t max_line = 1 << 20;

private:
    std::FILE* f_;
    bool owned_;
    std::string name_;
    std::string line_;
    std::string error_;
    uint64_t line_no_ = 0;
    json::Document doc_;
};

// Small typed accessors that return false instead of throwing.
bool get_string(json::Value obj, const char* key, std::string_view& out);
bool get_uint(json::Value obj, const char* key, uint64_t& out);

}  // namespace edge::jsonl
