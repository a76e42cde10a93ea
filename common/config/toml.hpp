// TOML config files (toml++) with errors that name file:line and the key.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

namespace edge::config {

// A parsed file plus its name, so every error can point at file:line.
struct Document {
    std::string path;
    toml::table root;
};

// Reads and parses `path` ("-" is stdin). Throws edge::UsageError "FILE:LINE:COL: why".
Document load(const std::string& path);
Document parse(std::string_view text, std::string path);

// "FILE:LINE" for a node (or just FILE when toml++ has no position for it).
std::string where(const Document& doc, const toml::node& node);

// Typed access that fails with file:line, the dotted key and what was expected.
class Table {
public:
    Table(const Document& doc, const toml::table& t, std::string prefix)
        : doc_(&doc), t_(&t), prefix_(std::move(prefix)) {}
    explicit Table(const Document& doc) : Table(doc, doc.root, "") {}

    bool has(std::string_view key) const { return t_->contains(key); }
    std::optional<std::string> str(std::string_view key) const;
    std::optional<int64_t> integer(std::string_view key, int64_t min, int64_t max) const;
    std::optional<double> real(std::string_view key) const;
    std::optional<bool> boolean(std::string_view key) const;
    std::vector<std::string> strings(std::string_view key) const;  // a string or an array of strings
    std::optional<Table> table(std::string_view key) const;
    std::vector<Table> tables(std::string_view key) const;  // an array of tables
    // Fails naming the first key not in `allowed` (catches typos).
    void only(std::initializer_list<std::string_view> allowed) const;

    [[noreturn]] void fail(std::string_view key, std::string_view why) const;
    std::string key_path(std::string_view key) const;
    const toml::table& raw() const { return *t_; }
    const Document& doc() const { return *doc_; }

private:
    const toml::node* node(std::string_view key) const { return t_->get(key); }
    const Document* doc_;
    const toml::table* t_;
    std::string prefix_;
};

}  // namespace edge::config
