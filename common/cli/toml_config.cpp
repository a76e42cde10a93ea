#include "cli/toml_config.hpp"

#include <sstream>

#include <fmt/format.h>

#include "cli/error.hpp"
#include "config/toml.hpp"

namespace edge::cli {

namespace {
bool scalar_text(const toml::node& n, std::string& out) {
    if (auto s = n.value<std::string>(); s && n.is_string()) out = *s;
    else if (n.is_integer()) out = std::to_string(*n.value<int64_t>());
    else if (n.is_floating_point()) out = fmt::format("{}", *n.value<double>());
    else if (n.is_boolean()) out = *n.value<bool>() ? "true" : "false";
    else return false;
    return true;
}

const CLI::Option* find_option(const CLI::App* app, const std::string& key) {
    for (const CLI::Option* o : app->get_options()) {
        for (auto& l : o->get_lnames())
            if (l == key) return o;
    }
    return nullptr;
}

const CLI::App* find_sub(const CLI::App* app, const std::string& name) {
    for (const CLI::App* s : app->get_subcommands([](const CLI::App*) { return true; }))
        if (s->get_name() == name) return s;
    return nullptr;
}

void flatten(const config::Document& doc, const CLI::App* app, const toml::table& t,
             std::vector<std::string> parents, std::vector<CLI::ConfigItem>& items) {
    for (auto& [k, v] : t) {
        std::string key(k.str());
        if (auto* sub = v.as_table()) {
            if (const CLI::App* s = find_sub(app, key)) {
                auto p = parents;
                p.push_back(key);
                flatten(doc, s, *sub, p, items);
            }
            continue;  // not a subcommand: structured state the tool reads itself
        }
        if (v.is_array() && v.as_array()->is_array_of_tables()) continue;  // structured state
        const CLI::Option* opt = find_option(app, key);
        if (!opt) {
            // Keys of a parent (global options) may sit at top level only.
            usage_error("{}: unknown key '{}'{} (keys mirror the long options in --help)",
                        config::where(doc, v), key,
                        parents.empty() ? "" : fmt::format(" in [{}]", fmt::join(parents, ".")));
        }
        if (!opt->get_configurable())
            usage_error("{}: '{}' cannot be set from a config file", config::where(doc, v), key);
        CLI::ConfigItem item;
        item.parents = parents;
        item.name = key;
        std::string s;
        if (auto* arr = v.as_array()) {
            for (auto& e : *arr) {
                if (!scalar_text(e, s))
                    usage_error("{}: '{}': expected an array of plain values", config::where(doc, e), key);
                item.inputs.push_back(s);
            }
        } else if (scalar_text(v, s)) {
            item.inputs.push_back(s);
        } else {
            usage_error("{}: '{}': unsupported value type", config::where(doc, v), key);
        }
        items.push_back(std::move(item));
    }
}
}  // namespace

std::string TomlConfig::to_config(const CLI::App*, bool, bool, std::string) const { return {}; }

std::vector<CLI::ConfigItem> TomlConfig::from_config(std::istream& in) const {
    std::ostringstream ss;
    ss << in.rdbuf();
    std::string path = "config";
    if (opt_ && opt_->count() > 0) path = opt_->as<std::string>();
    auto doc = config::parse(ss.str(), path);
    std::vector<CLI::ConfigItem> result;
    flatten(doc, app_, doc.root, {}, result);
    return result;
}

}  // namespace edge::cli
