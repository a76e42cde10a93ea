// CLI11 config formatter backed by toml++: `-c FILE` keys mirror long options, a
// [subcommand] table sets that subcommand's options, other tables are left to the tool
// (structured state). Unknown keys and TOML syntax errors name FILE:LINE.
#pragma once
#include <memory>

#include <CLI/CLI.hpp>

namespace edge::cli {

class TomlConfig : public CLI::Config {
public:
    TomlConfig(const CLI::App* app, const CLI::Option* config_opt) : app_(app), opt_(config_opt) {}
    std::string to_config(const CLI::App*, bool, bool, std::string) const override;
    std::vector<CLI::ConfigItem> from_config(std::istream& in) const override;

private:
    const CLI::App* app_;
    const CLI::Option* opt_;
};

}  // namespace edge::cli
