// quic-probe: pure helpers of the live probe (no sockets, no TLS): target and option
// parsing, the session file, the check names and the amplification verdict. Header-only
// so tests/unit/test_quic_probe.cpp can test them without the ngtcp2 stack.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "quic/version.hpp"

namespace quic_probe {

// HOST, HOST:PORT, [V6]:PORT, V6 (bare, more than one colon). Port defaults to 443.
struct Target {
    std::string host;
    std::uint16_t port = 443;
    std::string text;  // as given
};

// Parses one target; returns nullopt and sets `err` on bad input.
inline std::optional<Target> parse_target(std::string_view s, std::string& err, std::uint16_t default_port = 443) {
    Target t;
    t.text = std::string(s);
    t.port = default_port;
    auto port_of = [&](std::string_view p) -> bool {
        if (p.empty() || p.size() > 5 || !std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; }))
            return false;
        unsigned long v = std::strtoul(std::string(p).c_str(), nullptr, 10);
        if (v == 0 || v > 65535) return false;
        t.port = static_cast<std::uint16_t>(v);
        return true;
    };
    if (s.empty()) {
        err = "empty target";
        return std::nullopt;
    }
    if (s.front() == '[') {
        auto close = s.find(']');
        if (close == std::string_view::npos) {
            err = fmt::format("bad target '{}': missing ']'", s);
            return std::nullopt;
        }
        t.host = std::string(s.substr(1, close - 1));
        auto rest = s.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':' || !port_of(rest.substr(1))) {
                err = fmt::format("bad target '{}': expected [ADDRESS]:PORT", s);
                return std::nullopt;
            }
        }
    } else {
        auto colons = std::count(s.begin(), s.end(), ':');
        if (colons == 1) {
            auto c = s.find(':');
            t.host = std::string(s.substr(0, c));
            if (!port_of(s.substr(c + 1))) {
                err = fmt::format("bad target '{}': port must be 1-65535", s);
                return std::nullopt;
            }
        } else {
            t.host = std::string(s);  // a name, an IPv4 address, or a bare IPv6 address
        }
    }
    if (t.host.empty()) {
        err = fmt::format("bad target '{}': no host", s);
        return std::nullopt;
    }
    for (char c : t.host) {
        if (static_cast<unsigned char>(c) <= ' ' || c == '/' || c == '[' || c == ']') {
            err = fmt::format("bad target '{}': host contains '{}'", s, c);
            return std::nullopt;
        }
    }
    return t;
}

// Lines of a targets file: one target per line, '#' comments and blank lines skipped.
inline std::vector<std::string> target_lines(std::istream& in) {
    std::vector<std::string> out;
    std::string line;
    while (std::getline(in, line)) {
        auto hash = line.find('#');
        if (hash != std::string::npos) line.erase(hash);
        auto b = line.find_first_not_of(" \t\r");
        if (b == std::string::npos) continue;
        auto e = line.find_last_not_of(" \t\r");
        out.push_back(line.substr(b, e - b + 1));
    }
    return out;
}

// The checks, named as in quic-interop-runner.
inline const std::vector<std::string>& test_names() {
    static const std::vector<std::string> names{"handshake",    "versionnegotiation", "retry",     "resumption",
                                                "zerortt",      "keyupdate",          "chacha20",  "rebind",
                                                "migration",    "amplification",      "http3"};
    return names;
}

// "all" expands to every check; duplicates are dropped; order follows test_names().
inline std::optional<std::vector<std::string>> parse_tests(const std::vector<std::string>& in, std::string& err) {
    std::vector<std::string> want;
    for (const auto& t : in) {
        if (t == "all") {
            want = test_names();
            continue;
        }
        if (std::find(test_names().begin(), test_names().end(), t) == test_names().end()) {
            err = fmt::format("unknown test '{}' (one of: all, {})", t, fmt::join(test_names(), ", "));
            return std::nullopt;
        }
        if (std::find(want.begin(), want.end(), t) == want.end()) want.push_back(t);
    }
    std::vector<std::string> out;
    for (const auto& n : test_names())
        if (std::find(want.begin(), want.end(), n) != want.end()) out.push_back(n);
    return out;
}

// "v1", "v2draft"/"v2-draft", "draft-29", or a number ("0x709a50c4", "1").
inline std::optional<std::uint32_t> parse_version(std::string_view s) {
    if (s == "v1" || s == "1") return edge::quic::kVersion1;
    if (s == "v2draft" || s == "v2-draft") return edge::quic::kVersion2Draft;
    if (s == "draft-29" || s == "draft29") return edge::quic::kVersionDraft29;
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && s.size() <= 10) {
        char* end = nullptr;
        std::string str(s);
        unsigned long v = std::strtoul(str.c_str() + 2, &end, 16);
        if (end && *end == '\0') return static_cast<std::uint32_t>(v);
    }
    return std::nullopt;
}

// A reserved version (RFC 9000 15: 0x?a?a?a?a) to provoke Version Negotiation.
inline constexpr std::uint32_t kProbeReservedVersion = 0x1a2a3a4a;

// Amplification verdict: RFC 9000 8.1 allows 3x the bytes received before the
// client's address is validated.
struct AmplificationVerdict {
    double ratio = 0;
    bool exceeded = false;
    bool at_limit = false;  // sent exactly (or within one datagram of) the limit and stopped
};
inline AmplificationVerdict amplification_verdict(std::uint64_t sent, std::uint64_t received) {
    AmplificationVerdict v;
    if (sent == 0) return v;
    v.ratio = static_cast<double>(received) / static_cast<double>(sent);
    v.exceeded = received > 3 * sent;
    v.at_limit = !v.exceeded && received + 200 >= 3 * sent;
    return v;
}

// The session file: what a later probe needs to resume and send 0-RTT.
//   # quic-probe session
//   target 127.0.0.1:4433
//   alpn h3
//   version 1
//   tp initial_max_data 1048576 ...
//   token HEX          (NEW_TOKEN, optional)
//   ticket HEX         (GnuTLS session data)
struct SessionFile {
    std::string target;
    std::string alpn;
    std::uint32_t version = 0;
    std::vector<std::pair<std::string, std::uint64_t>> tp;
    std::vector<std::uint8_t> token;
    std::vector<std::uint8_t> ticket;

    std::optional<std::uint64_t> param(std::string_view name) const {
        for (auto& [k, v] : tp)
            if (k == name) return v;
        return std::nullopt;
    }
};

inline std::string to_hex(const std::uint8_t* p, std::size_t n) {
    static const char* d = "0123456789abcdef";
    std::string s;
    s.reserve(n * 2);
    for (std::size_t i = 0; i < n; ++i) {
        s.push_back(d[p[i] >> 4]);
        s.push_back(d[p[i] & 15]);
    }
    return s;
}

inline std::optional<std::vector<std::uint8_t>> from_hex(std::string_view s) {
    if (s.size() % 2) return std::nullopt;
    std::vector<std::uint8_t> out;
    out.reserve(s.size() / 2);
    auto nib = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    for (std::size_t i = 0; i < s.size(); i += 2) {
        int a = nib(s[i]), b = nib(s[i + 1]);
        if (a < 0 || b < 0) return std::nullopt;
        out.push_back(static_cast<std::uint8_t>(a << 4 | b));
    }
    return out;
}

inline std::string format_session(const SessionFile& s) {
    std::string out = "# quic-probe session (TLS ticket and server transport parameters)\n";
    out += fmt::format("target {}\nalpn {}\nversion {}\n", s.target, s.alpn, s.version);
    for (auto& [k, v] : s.tp) out += fmt::format("tp {} {}\n", k, v);
    if (!s.token.empty()) out += "token " + to_hex(s.token.data(), s.token.size()) + "\n";
    out += "ticket " + to_hex(s.ticket.data(), s.ticket.size()) + "\n";
    return out;
}

// Returns nullopt and sets err (with the line number) on a malformed file.
inline std::optional<SessionFile> parse_session(std::string_view text, std::string& err) {
    SessionFile s;
    std::istringstream in{std::string(text)};
    std::string line;
    int n = 0;
    bool have_ticket = false;
    while (std::getline(in, line)) {
        ++n;
        if (line.empty() || line[0] == '#') continue;
        std::istringstream ls(line);
        std::string key;
        ls >> key;
        auto bad = [&](std::string_view why) {
            err = fmt::format("line {}: {}", n, why);
            return std::nullopt;
        };
        if (key == "target") {
            ls >> s.target;
        } else if (key == "alpn") {
            ls >> s.alpn;
        } else if (key == "version") {
            if (!(ls >> s.version)) return bad("version must be a number");
        } else if (key == "tp") {
            std::string name;
            std::uint64_t v = 0;
            if (!(ls >> name >> v)) return bad("expected 'tp NAME NUMBER'");
            s.tp.emplace_back(name, v);
        } else if (key == "token" || key == "ticket") {
            std::string h;
            ls >> h;
            auto b = from_hex(h);
            if (!b) return bad(fmt::format("{} is not hex", key));
            if (key == "token") s.token = *b;
            else {
                s.ticket = *b;
                have_ticket = !b->empty();
            }
        } else {
            return bad(fmt::format("unknown key '{}'", key));
        }
    }
    if (!have_ticket) {
        err = "no ticket";
        return std::nullopt;
    }
    return s;
}

}  // namespace quic_probe
