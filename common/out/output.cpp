#include "out/output.hpp"

#include <string>

namespace edge::out {

void Output::emit(const Record& r) {
    std::string s = json_ ? r.json() : r.text_line();
    s.push_back('\n');
    std::fwrite(s.data(), 1, s.size(), f_);
    std::fflush(f_);
}

void Output::line(std::string_view s) {
    if (json_) return;
    std::fwrite(s.data(), 1, s.size(), f_);
    std::fputc('\n', f_);
    std::fflush(f_);
}

namespace {
std::string g_name = "edge";
int g_verbosity = 0;
void say(std::string_view level, std::string_view msg) {
    std::string s = g_name;
    s += ": ";
    if (!level.empty()) {
        s += level;
        s += ": ";
    }
    s += msg;
    s.push_back('\n');
    std::fwrite(s.data(), 1, s.size(), stderr);
}
void say_raw(std::string_view line) {
    std::string s(line);
    s.push_back('\n');
    std::fwrite(s.data(), 1, s.size(), stderr);
}
}  // namespace

void set_program_name(std::string_view name) { g_name = name; }
std::string_view program_name() { return g_name; }
void set_verbosity(int v) { g_verbosity = v; }
int verbosity() { return g_verbosity; }
void warn(std::string_view msg) { say("warning", msg); }
void info(std::string_view msg) {
    if (g_verbosity >= 0) say("", msg);
}
void event(const Record& r, bool json) {
    if (g_verbosity < 0) return;
    if (json) say_raw(r.json());
    else say("", r.text_line());
    std::fflush(stderr);
}

void debug(std::string_view msg) {
    if (g_verbosity > 0) say("debug", msg);
}

}  // namespace edge::out
