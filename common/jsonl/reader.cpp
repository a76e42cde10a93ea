#include "jsonl/reader.hpp"

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "cli/error.hpp"

namespace edge::jsonl {

Reader::Reader(const std::string& path) : name_(path == "-" ? "<stdin>" : path) {
    if (path == "-") {
        f_ = stdin;
        owned_ = false;
    } else {
        f_ = std::fopen(path.c_str(), "rb");
        if (!f_) usage_error("cannot open {}: {}", path, std::strerror(errno));
        owned_ = true;
    }
}

Reader::~Reader() {
    if (owned_) std::fclose(f_);
}

Reader::Status Reader::next(json::Value& doc) {
    while (true) {
        line_.clear();
        int c;
        bool too_long = false, got = false;
        while ((c = std::getc(f_)) != EOF) {
            got = true;
            if (c == '\n') break;
            if (line_.size() < max_line) line_.push_back(static_cast<char>(c));
            else too_long = true;
        }
        if (!got) {
            if (std::ferror(f_)) usage_error("read error on {}: {}", name_, std::strerror(errno));
            return Status::end;
        }
        line_no_++;
        if (!line_.empty() && line_.back() == '\r') line_.pop_back();
        if (line_.find_first_not_of(" \t") == std::string::npos) continue;  // blank lines are fine
        if (too_long) {
            error_ = fmt::format("line longer than {} bytes", max_line);
            return Status::bad_line;
        }
        if (!doc_.parse(line_)) {
            error_ = fmt::format("not JSON: {}", doc_.error());
            return Status::bad_line;
        }
        doc = doc_.root();
        if (!doc.is_object()) {
            error_ = "not a JSON object";
            return Status::bad_line;
        }
        return Status::record;
    }
}

bool get_string(json::Value obj, const char* key, std::string_view& out) { return obj[key].get(out); }

bool get_uint(json::Value obj, const char* key, uint64_t& out) { return obj[key].get(out); }

}  // namespace edge::jsonl
