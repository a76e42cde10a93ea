// The one CLI11 set-up every binary uses: standard flags, config files, exit codes,
// version text and shell completions.
//
//   edge::cli::Tool tool("maglev-calc", "Maglev consistent-hashing tables");
//   auto* t = tool.command("table", "build a table", [&] { return run_table(); });
//   t->add_option(...);
//   return tool.run(argc, argv);
#pragma once
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace edge::cli {

// The flags every tool has; filled by parsing.
struct Globals {
    bool json = false;
    int verbose = 0;
    bool quiet = false;
    std::string color = "auto";
    std::string config;
    // --color=auto|always|never, honouring NO_COLOR and whether `f` is a terminal.
    bool color_enabled(std::FILE* f) const;
};

class Tool {
public:
    Tool(std::string name, std::string description);

    CLI::App& app() { return app_; }
    const Globals& globals() const { return g_; }
    const std::string& name() const { return name_; }

    // A subcommand whose action runs after a successful parse; returns the exit code.
    CLI::App* command(const std::string& name, const std::string& description, std::function<int()> action);
    // The action when no subcommand is given (tools whose main job needs none).
    void default_action(std::function<int()> action) { default_action_ = std::move(action); }
    // Libraries shown by --version beside the ones every tool links.
    void add_library(std::string name_and_version) { libs_.push_back(std::move(name_and_version)); }
    // Allowed values: a validator, shown in --help and offered by completions.
    CLI::Option* choices(CLI::Option* opt, std::vector<std::string> values);
    // Mark an option's value as a file path for completions (also shown as FILE in --help).
    CLI::Option* file(CLI::Option* opt);

    // Parse, run the chosen action, map every error to an exit code. Never throws.
    int run(int argc, char** argv);

    std::string version_text() const;
    // Completion script for bash, zsh or fish, generated from the CLI definition.
    std::string completion(const std::string& shell) const;

    // What completions need to know about an option's value.
    enum class ValueKind { none, file, choice, other };
    ValueKind value_kind(const CLI::Option* opt) const;
    const std::vector<std::string>* choice_values(const CLI::Option* opt) const;

private:
    std::string name_;
    CLI::App app_;
    Globals g_;
    std::string completion_shell_;
    std::vector<std::string> libs_;
    std::map<const CLI::App*, std::function<int()>> actions_;
    std::function<int()> default_action_;
    std::map<const CLI::Option*, std::vector<std::string>> choices_;
    std::map<const CLI::Option*, bool> files_;
};

}  // namespace edge::cli
