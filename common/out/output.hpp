// Where records go: stdout as text or JSON Lines (flushed per record, so pipes stream),
// and diagnostics on stderr prefixed with the tool name.
#pragma once
#include <cstdio>
#include <string_view>

#include <fmt/format.h>

#include "out/record.hpp"

namespace edge::out {

class Output {
public:
    explicit Output(bool json, std::FILE* f = stdout) : json_(json), f_(f) {}
    bool json() const { return json_; }
    void emit(const Record& r);
    // Text-mode only: a free-form line (tables, headings). Ignored in JSON mode.
    void line(std::string_view s);

private:
    bool json_;
    std::FILE* f_;
};

// Diagnostics on stderr. The tool name is set once by cli::Tool.
void set_program_name(std::string_view name);
std::string_view program_name();
void set_verbosity(int v);  // -1 quiet, 0 normal, 1+ verbose
int verbosity();
void warn(std::string_view msg);
void info(std::string_view msg);   // hidden with -q
void debug(std::string_view msg);  // shown with -v
// A daemon's event on stderr: a JSON Line with -j, else "tool: key=value ..."; hidden with -q.
void event(const Record& r, bool json);

}  // namespace edge::out
