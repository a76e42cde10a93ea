// The bgp-announce command grammar (text and JSON lines from stdin, the control socket
// and scripts): every line either parses or is rejected with a message, never a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "commands.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static edge::json::Document parser;
    std::string_view s(reinterpret_cast<const char*>(data), size);
    while (!s.empty()) {
        auto nl = s.find('\n');
        auto line = s.substr(0, nl);
        auto r = bgp_announce::parse_line(line, parser);
        (void)r;
        (void)bgp_announce::parse_text(line);
        if (nl == std::string_view::npos) break;
        s.remove_prefix(nl + 1);
    }
    return 0;
}
