#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "cli/error.hpp"
#include "cli/tool.hpp"

namespace {
// Runs a Tool on argv, capturing stderr into `err`.
int run(edge::cli::Tool& t, std::vector<std::string> args, std::string* err = nullptr) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    std::fflush(stderr);
    std::FILE* tmp = std::tmpfile();
    int saved = dup(fileno(stderr));
    dup2(fileno(tmp), fileno(stderr));
    int rc = t.run(static_cast<int>(argv.size()), argv.data());
    std::fflush(stderr);
    dup2(saved, fileno(stderr));
    close(saved);
    if (err) {
        std::rewind(tmp);
        char buf[4096];
        size_t n = std::fread(buf, 1, sizeof buf, tmp);
        *err = std::string(buf, n);
    }
    std::fclose(tmp);
    return rc;
}

std::string write_tmp(const std::string& text) {
    char name[] = "/tmp/edge-cli-test-XXXXXX";
    int fd = mkstemp(name);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    close(fd);
    return name;
}
}  // namespace

TEST_CASE("actions run, errors map to exit codes with one line on stderr") {
    edge::cli::Tool t("demo", "demo tool");
    int size = 0;
    auto* cmd = t.command("go", "do it", [&] {
        if (size < 0) edge::usage_error("size {} is negative", size);
        if (size == 13) edge::failure("unlucky");
        if (size == 99) throw std::runtime_error("boom");
        return 0;
    });
    cmd->add_option("--size", size, "a size");
    std::string err;
    CHECK(run(t, {"demo", "go", "--size", "5"}) == 0);
    CHECK(size == 5);
    CHECK(run(t, {"demo", "go", "--size", "-1"}, &err) == 2);
    CHECK(err == "demo: size -1 is negative\n");
    CHECK(run(t, {"demo", "go", "--size", "13"}, &err) == 1);
    CHECK(err == "demo: unlucky\n");
    CHECK(run(t, {"demo", "go", "--size", "99"}, &err) == 1);
    CHECK(err == "demo: boom\n");
    CHECK(run(t, {"demo", "go", "--size", "x"}, &err) == 2);
    CHECK(err.find("demo: ") == 0);
    CHECK(std::count(err.begin(), err.end(), '\n') == 1);
    CHECK(run(t, {"demo"}, &err) == 2);
    CHECK(err == "demo: a command is required (see demo --help)\n");
}

TEST_CASE("global flags parse before or after the command") {
    edge::cli::Tool t("demo", "demo tool");
    t.command("go", "do it", [] { return 0; });
    CHECK(run(t, {"demo", "go", "-j", "-v", "-v"}) == 0);
    CHECK(t.globals().json);
    CHECK(t.globals().verbose == 2);
}

TEST_CASE("--color honours NO_COLOR and the choices") {
    edge::cli::Tool t("demo", "demo tool");
    t.command("go", "do it", [] { return 0; });
    CHECK(run(t, {"demo", "--color=always", "go"}) == 0);
    CHECK(t.globals().color_enabled(stdout));
    setenv("NO_COLOR", "1", 1);
    edge::cli::Tool t2("demo", "demo tool");
    t2.command("go", "do it", [] { return 0; });
    CHECK(run(t2, {"demo", "go"}) == 0);
    CHECK_FALSE(t2.globals().color_enabled(stdout));
    unsetenv("NO_COLOR");
    edge::cli::Tool t3("demo", "demo tool");
    t3.command("go", "do it", [] { return 0; });
    CHECK(run(t3, {"demo", "--color", "sometimes", "go"}) == 2);
}

TEST_CASE("config files: keys mirror long options, command tables, precedence, errors with file:line") {
    int size = 0;
    std::string name;
    edge::cli::Tool t("demo", "demo tool");
    auto* cmd = t.command("go", "do it", [] { return 0; });
    cmd->add_option("--size", size, "a size");
    cmd->add_option("--name", name, "a name");
    auto f = write_tmp("json = true\n[go]\nsize = 7\nname = \"x\"\n[structured]\nanything = 1\n");
    CHECK(run(t, {"demo", "-c", f, "go"}) == 0);
    CHECK(t.globals().json);
    CHECK(size == 7);
    CHECK(name == "x");
    CHECK(run(t, {"demo", "-c", f, "go", "--size", "9"}) == 0);
    CHECK(size == 9);  // the command line wins

    std::string err;
    edge::cli::Tool t2("demo", "demo tool");
    auto* c2 = t2.command("go", "do it", [] { return 0; });
    c2->add_option("--size", size, "a size");
    auto bad = write_tmp("[go]\nsize = 1\nsiez = 2\n");
    CHECK(run(t2, {"demo", "-c", bad, "go"}, &err) == 2);
    CHECK(err.find(bad + ":3: unknown key 'siez' in [go]") != std::string::npos);
    auto broken = write_tmp("[go\n");
    edge::cli::Tool t3("demo", "demo tool");
    t3.command("go", "do it", [] { return 0; });
    CHECK(run(t3, {"demo", "-c", broken, "go"}, &err) == 2);
    CHECK(err.find(broken + ":1:") != std::string::npos);
    std::remove(f.c_str());
    std::remove(bad.c_str());
    std::remove(broken.c_str());
}

TEST_CASE("completions list commands, options and choices") {
    edge::cli::Tool t("demo-tool", "demo tool");
    auto* cmd = t.command("go", "do it", [] { return 0; });
    std::string file;
    t.file(cmd->add_option("--input", file, "input file"));
    auto bash = t.completion("bash");
    CHECK(bash.find("complete -o filenames -F _demo_tool demo-tool") != std::string::npos);
    CHECK(bash.find("--input) COMPREPLY=($(compgen -f") != std::string::npos);
    CHECK(bash.find("--color) COMPREPLY=($(compgen -W \"auto always never\"") != std::string::npos);
    auto zsh = t.completion("zsh");
    CHECK(zsh.find("#compdef demo-tool") == 0);
    CHECK(zsh.find("'go:do it'") != std::string::npos);
    auto fish = t.completion("fish");
    CHECK(fish.find("complete -c demo-tool -n '__fish_seen_subcommand_from go' -l input -r -F") != std::string::npos);
    CHECK_THROWS_AS(t.completion("tcsh"), edge::UsageError);
}
