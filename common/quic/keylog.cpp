#include "quic/keylog.hpp"

namespace edge::quic {

namespace {

int hexval(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool unhex(std::string_view s, std::vector<std::uint8_t>& out) {
    if (s.size() % 2 != 0 || s.empty()) return false;
    out.clear();
    out.reserve(s.size() / 2);
    for (std::size_t i = 0; i < s.size(); i += 2) {
        const int hi = hexval(s[i]), lo = hexval(s[i + 1]);
        if (hi < 0 || lo < 0) return false;
        out.push_back(static_cast<std::uint8_t>(hi << 4 | lo));
    }
    return true;
}

std::string_view next_field(std::string_view& line) {
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    std::size_t n = 0;
    while (n < line.size() && line[n] != ' ' && line[n] != '\t') ++n;
    std::string_view f = line.substr(0, n);
    line.remove_prefix(n);
    return f;
}

}  // namespace

std::size_t KeyLog::parse(std::string_view text) {
    std::size_t bad = 0;
    while (!text.empty()) {
        std::size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        ++lines_;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        std::string_view rest = line;
        std::string_view label = next_field(rest);
        if (label.empty() || label.front() == '#') continue;
        std::string_view random_hex = next_field(rest);
        std::string_view secret_hex = next_field(rest);
        std::vector<std::uint8_t> random, secret;
        if (!next_field(rest).empty() || !unhex(random_hex, random) || random.size() != 32 ||
            !unhex(secret_hex, secret) || secret.size() > 64) {
            ++bad;
            if (!first_bad_) first_bad_ = lines_;
            continue;
        }
        std::vector<std::uint8_t>* slot = nullptr;
        TlsSecrets& s = map_[std::string(random.begin(), random.end())];
        if (label == "CLIENT_EARLY_TRAFFIC_SECRET") slot = &s.client_early;
        else if (label == "CLIENT_HANDSHAKE_TRAFFIC_SECRET") slot = &s.client_handshake;
        else if (label == "SERVER_HANDSHAKE_TRAFFIC_SECRET") slot = &s.server_handshake;
        else if (label == "CLIENT_TRAFFIC_SECRET_0") slot = &s.client_app;
        else if (label == "SERVER_TRAFFIC_SECRET_0") slot = &s.server_app;
        if (slot) *slot = std::move(secret);  // other labels (TLS 1.2 CLIENT_RANDOM, EXPORTER_SECRET) are not needed
    }
    return bad;
}

const TlsSecrets* KeyLog::find(const std::array<std::uint8_t, 32>& client_random) const {
    auto it = map_.find(std::string(client_random.begin(), client_random.end()));
    return it == map_.end() ? nullptr : &it->second;
}

bool cipher_for_suite(std::uint16_t suite, Cipher& out) noexcept {
    switch (suite) {
        case 0x1301: out = Cipher::aes_128_gcm; return true;
        case 0x1302: out = Cipher::aes_256_gcm; return true;
        case 0x1303: out = Cipher::chacha20_poly1305; return true;
        default: return false;
    }
}

Result<std::vector<std::uint8_t>> next_traffic_secret(std::uint32_t version, Cipher cipher, Bytes secret) {
    const auto* info = version_info(version);
    if (!info) return Error::unsupported_version;
    return hkdf_expand_label(secret, info->ku_label, {}, secret.size(), cipher);
}

}  // namespace edge::quic
