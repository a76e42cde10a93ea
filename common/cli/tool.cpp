#include "cli/tool.hpp"

#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include <CLI/Version.hpp>
#include <fmt/format.h>
#include <pcap/pcap.h>
// A weak reference: a tool that calls nothing else of libpcap (bgp-announce reads its
// captures itself) does not load libpcap and its D-Bus/systemd dependencies at start-up,
// and its -V leaves libpcap out.
#pragma weak pcap_lib_version
#include <toml++/toml.h>

#include "cli/error.hpp"
#include "cli/toml_config.hpp"
#include "out/output.hpp"

namespace edge::cli {

bool Globals::color_enabled(std::FILE* f) const {
    if (color == "always") return true;
    if (color == "never") return false;
    const char* nc = std::getenv("NO_COLOR");
    if (nc && *nc) return false;
    return isatty(fileno(f));
}

Tool::Tool(std::string name, std::string description) : name_(std::move(name)), app_(std::move(description), name_) {
    out::set_program_name(name_);
    app_.option_defaults()->always_capture_default();
    app_.fallthrough();  // global flags may follow the subcommand: `tool cmd -j`
    app_.set_help_flag("-h,--help", "Print this help and exit");
    app_.set_version_flag("-V,--version", [this] { return version_text(); }, "Print version and library versions and exit");
    app_.add_flag("-j,--json", g_.json, "Output JSON Lines (one record per line)");
    app_.add_flag("-v,--verbose", g_.verbose, "More diagnostics on stderr (repeatable)");
    app_.add_flag("-q,--quiet", g_.quiet, "Only errors on stderr");
    choices(app_.add_option("--color", g_.color, "Colour output: auto, always or never (NO_COLOR honoured)"),
            {"auto", "always", "never"});
    auto* cfg = app_.set_config("-c,--config", "", "TOML config file; keys mirror long options");
    cfg->type_name("FILE");
    files_[cfg] = true;
    app_.config_formatter(std::make_shared<TomlConfig>(&app_, cfg));
    auto* comp = app_.add_option("--completion", completion_shell_, "Print a shell completion script (bash, zsh, fish)");
    comp->group("");  // hidden: used to generate completions/
    comp->configurable(false);
    choices(comp, {"bash", "zsh", "fish"});
}

CLI::App* Tool::command(const std::string& name, const std::string& description, std::function<int()> action) {
    CLI::App* sub = app_.add_subcommand(name, description);
    actions_[sub] = std::move(action);
    return sub;
}

CLI::Option* Tool::choices(CLI::Option* opt, std::vector<std::string> values) {
    opt->check(CLI::IsMember(values));
    choices_[opt] = std::move(values);
    return opt;
}

CLI::Option* Tool::file(CLI::Option* opt) {
    opt->type_name("FILE");
    files_[opt] = true;
    return opt;
}

Tool::ValueKind Tool::value_kind(const CLI::Option* opt) const {
    if (opt->get_type_size_max() == 0 || opt->get_items_expected_max() == 0) return ValueKind::none;  // a flag
    if (choices_.count(opt)) return ValueKind::choice;
    if (files_.count(opt)) return ValueKind::file;
    return ValueKind::other;
}

const std::vector<std::string>* Tool::choice_values(const CLI::Option* opt) const {
    auto it = choices_.find(opt);
    return it == choices_.end() ? nullptr : &it->second;
}

std::string Tool::version_text() const {
    std::string libs = fmt::format("CLI11 {}, fmt {}.{}.{}, toml++ {}.{}.{}", CLI11_VERSION, FMT_VERSION / 10000,
                                   FMT_VERSION / 100 % 100, FMT_VERSION % 100, TOML_LIB_MAJOR, TOML_LIB_MINOR,
                                   TOML_LIB_PATCH);
    if (pcap_lib_version) libs += fmt::format(", {}", pcap_lib_version());
    for (auto& l : libs_) libs += ", " + l;
    return fmt::format("{} {} (edge toolkit)\nlibraries: {}", name_, EDGE_VERSION, libs);
}

int Tool::run(int argc, char** argv) {
    try {
        try {
            app_.parse(argc, argv);
        } catch (const CLI::ParseError& e) {
            if (e.get_exit_code() == 0) return app_.exit(e);  // --help, --version: stdout, exit 0
            std::string msg = e.what();
            while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
            fmt::print(stderr, "{}: {} (see {} --help)\n", name_, msg, name_);
            return exit_usage;
        }
        if (auto* c = app_.get_config_ptr(); c && c->count()) g_.config = c->as<std::string>();
        out::set_verbosity(g_.quiet ? -1 : g_.verbose);
        if (!completion_shell_.empty()) {
            std::string s = completion(completion_shell_);
            std::fwrite(s.data(), 1, s.size(), stdout);
            return exit_ok;
        }
        for (CLI::App* sub : app_.get_subcommands()) {
            auto it = actions_.find(sub);
            if (it != actions_.end()) return it->second();
        }
        if (default_action_) return default_action_();
        fmt::print(stderr, "{}: a command is required (see {} --help)\n", name_, name_);
        return exit_usage;
    } catch (const Error& e) {
        std::fflush(stdout);
        fmt::print(stderr, "{}: {}\n", name_, e.what());
        return e.code();
    } catch (const std::bad_alloc&) {
        fmt::print(stderr, "{}: out of memory\n", name_);
        return exit_failure;
    } catch (const std::exception& e) {
        fmt::print(stderr, "{}: {}\n", name_, e.what());
        return exit_failure;
    }
}

}  // namespace edge::cli
