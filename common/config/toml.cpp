#include "config/toml.hpp"

#include <fstream>
#include <iostream>
#include <sstream>

#include <fmt/format.h>

#include "cli/error.hpp"

namespace edge::config {

namespace {
std::string read_all(const std::string& path) {
    if (path == "-") {
        std::ostringstream ss;
        ss << std::cin.rdbuf();
        return ss.str();
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) usage_error("cannot read config {}: {}", path, std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) usage_error("cannot read config {}: read error", path);
    return ss.str();
}

const char* type_name(const toml::node& n) {
    switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date/time";
    }
}
}  // namespace

Document parse(std::string_view text, std::string path) {
    try {
        return Document{path, toml::parse(text, path)};
    } catch (const toml::parse_error& e) {
        auto& b = e.source().begin;
        usage_error("{}:{}:{}: {}", path == "-" ? "<stdin>" : path, b.line, b.column, e.description());
    }
}

Document load(const std::string& path) { return parse(read_all(path), path); }

std::string where(const Document& doc, const toml::node& node) {
    auto& b = node.source().begin;
    std::string p = doc.path == "-" ? "<stdin>" : doc.path;
    if (b.line == 0) return p;
    return fmt::format("{}:{}", p, b.line);
}

std::string Table::key_path(std::string_view key) const {
    return prefix_.empty() ? std::string(key) : prefix_ + "." + std::string(key);
}

void Table::fail(std::string_view key, std::string_view why) const {
    const toml::node* n = node(key);
    std::string at = n ? where(*doc_, *n) : where(*doc_, *t_);
    usage_error("{}: {}: {}", at, key_path(key), why);
}

std::optional<std::string> Table::str(std::string_view key) const {
    auto* n = node(key);
    if (!n) return std::nullopt;
    if (auto v = n->value<std::string>(); v && n->is_string()) return *v;
    fail(key, fmt::format("expected a string, found {}", type_name(*n)));
}

std::optional<int64_t> Table::integer(std::string_view key, int64_t min, int64_t max) const {
    auto* n = node(key);
    if (!n) return std::nullopt;
    if (!n->is_integer()) fail(key, fmt::format("expected an integer, found {}", type_name(*n)));
    int64_t v = *n->value<int64_t>();
    if (v < min || v > max) fail(key, fmt::format("{} is out of range {}..{}", v, min, max));
    return v;
}

std::optional<double> Table::real(std::string_view key) const {
    auto* n = node(key);
    if (!n) return std::nullopt;
    if (!n->is_number()) fail(key, fmt::format("expected a number, found {}", type_name(*n)));
    return *n->value<double>();
}

std::optional<bool> Table::boolean(std::string_view key) const {
    auto* n = node(key);
    if (!n) return std::nullopt;
    if (!n->is_boolean()) fail(key, fmt::format("expected true or false, found {}", type_name(*n)));
    return *n->value<bool>();
}

std::vector<std::string> Table::strings(std::string_view key) const {
    auto* n = node(key);
    std::vector<std::string> out;
    if (!n) return out;
    if (n->is_string()) {
        out.push_back(*n->value<std::string>());
        return out;
    }
    auto* arr = n->as_array();
    if (!arr) fail(key, fmt::format("expected a string or an array of strings, found {}", type_name(*n)));
    for (auto& e : *arr) {
        if (!e.is_string()) fail(key, fmt::format("expected strings in the array, found {}", type_name(e)));
        out.push_back(*e.value<std::string>());
    }
    return out;
}

std::optional<Table> Table::table(std::string_view key) const {
    auto* n = node(key);
    if (!n) return std::nullopt;
    auto* t = n->as_table();
    if (!t) fail(key, fmt::format("expected a table, found {}", type_name(*n)));
    return Table(*doc_, *t, key_path(key));
}

std::vector<Table> Table::tables(std::string_view key) const {
    auto* n = node(key);
    std::vector<Table> out;
    if (!n) return out;
    auto* arr = n->as_array();
    if (!arr) fail(key, fmt::format("expected an array of tables ([[{}]]), found {}", key, type_name(*n)));
    size_t i = 0;
    for (auto& e : *arr) {
        auto* t = e.as_table();
        if (!t) fail(key, fmt::format("expected tables in the array, found {}", type_name(e)));
        out.emplace_back(*doc_, *t, fmt::format("{}[{}]", key_path(key), i++));
    }
    return out;
}

void Table::only(std::initializer_list<std::string_view> allowed) const {
    for (auto& [k, v] : *t_) {
        bool ok = false;
        for (auto a : allowed) ok = ok || a == k.str();
        if (!ok) {
            std::string list;
            for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
            usage_error("{}: {}: unknown key (expected one of: {})", where(*doc_, v), key_path(k.str()), list);
        }
    }
}

}  // namespace edge::config
