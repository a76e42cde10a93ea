#include "backends.hpp"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/error.hpp"

namespace maglev_calc {

using edge::maglev::Backend;

namespace {
uint32_t parse_weight(std::string_view w, const std::string& where, std::string_view name) {
    int64_t v = 0;
    auto [p, ec] = std::from_chars(w.data(), w.data() + w.size(), v);
    if (ec != std::errc() || p != w.data() + w.size())
        edge::usage_error("{}bad weight '{}' for backend '{}': expected a whole number 1..1000000", where, w, name);
    if (v <= 0) edge::usage_error("{}backend '{}' has weight {}: weights must be 1..1000000", where, name, v);
    if (v > 1000000) edge::usage_error("{}backend '{}' has weight {}: the maximum is 1000000", where, name, v);
    return static_cast<uint32_t>(v);
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}
}  // namespace

std::vector<Backend> parse_backend_list(const std::string& list) {
    std::vector<Backend> out;
    std::string_view rest = list;
    while (true) {
        auto comma = rest.find(',');
        std::string_view item = trim(rest.substr(0, comma));
        if (item.empty()) edge::usage_error("empty backend name in list '{}'", list);
        Backend b;
        auto eq = item.rfind('=');
        if (eq != std::string_view::npos) {
            b.name = std::string(trim(item.substr(0, eq)));
            b.weight = parse_weight(trim(item.substr(eq + 1)), "", b.name);
        } else {
            b.name = std::string(item);
        }
        if (b.name.empty()) edge::usage_error("empty backend name in list '{}'", list);
        out.push_back(std::move(b));
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
    }
    return out;
}

std::vector<Backend> read_backend_file(const std::string& path) {
    std::ifstream file;
    std::istream* in = &std::cin;
    std::string name = path == "-" ? "<stdin>" : path;
    if (path != "-") {
        file.open(path);
        if (!file) edge::usage_error("cannot open backends file {}: {}", path, std::strerror(errno));
        in = &file;
    }
    std::vector<Backend> out;
    std::string line;
    size_t n = 0;
    while (std::getline(*in, line)) {
        n++;
        std::string_view s = line;
        if (auto h = s.find('#'); h != std::string_view::npos) s = s.substr(0, h);
        s = trim(s);
        if (s.empty()) continue;
        std::string where = fmt::format("{}:{}: ", name, n);
        auto sp = s.find_first_of(" \t");
        Backend b;
        b.name = std::string(s.substr(0, sp));
        if (sp != std::string_view::npos) {
            auto w = trim(s.substr(sp));
            if (w.find_first_of(" \t") != std::string_view::npos)
                edge::usage_error("{}expected 'NAME [WEIGHT]', found '{}'", where, s);
            b.weight = parse_weight(w, where, b.name);
        }
        for (auto& prev : out)
            if (prev.name == b.name) edge::usage_error("{}duplicate backend name '{}'", where, b.name);
        out.push_back(std::move(b));
    }
    if (in->bad()) edge::usage_error("read error on {}", name);
    if (out.empty()) edge::usage_error("{}: no backends in the file (one 'NAME [WEIGHT]' per line)", name);
    return out;
}

}  // namespace maglev_calc
