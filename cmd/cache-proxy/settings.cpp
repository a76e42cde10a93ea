#include "settings.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "cli/error.hpp"
#include "config/toml.hpp"

namespace cache_proxy {

uint64_t parse_size(const std::string& what, const std::string& s) {
    if (s.empty()) edge::usage_error("{}: empty size (use e.g. 512M, 4G or a byte count)", what);
    size_t i = 0;
    uint64_t v = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        if (v > (UINT64_MAX - 9) / 10) edge::usage_error("{}: '{}' is too large", what, s);
        v = v * 10 + static_cast<uint64_t>(s[i++] - '0');
    }
    if (i == 0) edge::usage_error("{}: '{}' is not a size (use e.g. 512M, 4G or a byte count)", what, s);
    std::string suf = s.substr(i);
    uint64_t mul = 1;
    if (suf.empty() || suf == "B") mul = 1;
    else if (suf == "K" || suf == "k" || suf == "KiB") mul = 1ULL << 10;
    else if (suf == "M" || suf == "MiB") mul = 1ULL << 20;
    else if (suf == "G" || suf == "GiB") mul = 1ULL << 30;
    else edge::usage_error("{}: unknown unit in '{}' (use K, M or G)", what, s);
    if (v > UINT64_MAX / mul) edge::usage_error("{}: '{}' is too large", what, s);
    return v * mul;
}

SockAddr parse_endpoint(const std::string& what, const std::string& s, bool resolve_names) {
    SockAddr a;
    a.text = s;
    std::string host, port;
    if (!s.empty() && s[0] == '[') {
        auto close = s.find(']');
        if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':')
            edge::usage_error("{}: '{}' is not [IPv6]:PORT", what, s);
        host = s.substr(1, close - 1);
        port = s.substr(close + 2);
    } else {
        auto colon = s.rfind(':');
        if (colon == std::string::npos || colon == 0) edge::usage_error("{}: '{}' is not HOST:PORT", what, s);
        host = s.substr(0, colon);
        port = s.substr(colon + 1);
    }
    char* end = nullptr;
    long p = std::strtol(port.c_str(), &end, 10);
    if (port.empty() || *end || p < 1 || p > 65535) edge::usage_error("{}: bad port in '{}' (1..65535)", what, s);
    auto* v4 = reinterpret_cast<sockaddr_in*>(&a.ss);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
    if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<uint16_t>(p));
        a.len = sizeof(sockaddr_in);
        return a;
    }
    std::memset(&a.ss, 0, sizeof a.ss);
    if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<uint16_t>(p));
        a.len = sizeof(sockaddr_in6);
        return a;
    }
    if (!resolve_names) edge::usage_error("{}: '{}' is not an IP address:port", what, s);
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
    if (rc != 0 || !res) edge::usage_error("{}: cannot resolve '{}': {}", what, host, gai_strerror(rc));
    std::memcpy(&a.ss, res->ai_addr, res->ai_addrlen);
    a.len = res->ai_addrlen;
    freeaddrinfo(res);
    return a;
}

ValueSource ValueSource::from(const std::string& config_path, int argc, char** argv) {
    ValueSource v;
    v.config = config_path;
    for (int i = 1; i < argc; i++) {
        std::string_view a = argv[i];
        if (a == "--") break;
        if (a.size() > 2 && a.substr(0, 2) == "--") {
            v.command_line.emplace_back(a.substr(2, a.find('=') == std::string_view::npos ? std::string_view::npos : a.find('=') - 2));
        } else if (a.size() >= 2 && a[0] == '-' && a[1] != '-') {
            switch (a[1]) {  // the short options that take values
            case 'l': v.command_line.emplace_back("listen"); break;
            case 'o': v.command_line.emplace_back("origin"); break;
            case 't': v.command_line.emplace_back("threads"); break;
            default: break;
            }
        }
    }
    return v;
}

namespace {
// "--NAME: why" or "--NAME VALUE: why" from a value that came from the config file becomes
// "FILE:LINE: NAME: why" (edge::config's format); anything else is thrown again unchanged.
[[noreturn]] void rethrow(const ValueSource& src, const std::string& msg) {
    if (!src.config.empty() && msg.size() > 2 && msg.compare(0, 2, "--") == 0) {
        size_t end = msg.find_first_of(": ", 2);
        std::string key = msg.substr(2, end == std::string::npos ? std::string::npos : end - 2);
        bool on_cli = std::find(src.command_line.begin(), src.command_line.end(), key) != src.command_line.end();
        if (!on_cli && end != std::string::npos) {
            std::string why = msg.substr(end);
            if (why.rfind(": ", 0) == 0) why = why.substr(2);
            else if (why.rfind(" ", 0) == 0) why = why.substr(1);
            auto doc = edge::config::load(src.config);
            edge::config::Table root(doc);
            if (root.has(key)) root.fail(key, why);
        }
    }
    throw edge::UsageError(msg);
}

Settings resolve_values(const Options& o);
}  // namespace

Settings resolve(const Options& o, const ValueSource& src) {
    try {
        return resolve_values(o);
    } catch (const edge::UsageError& e) {
        rethrow(src, e.what());
    }
}

namespace {
Settings resolve_values(const Options& o) {
    Settings s;
    if (o.origin.empty()) edge::usage_error("no origin: set --origin HOST:PORT (or origin = \"...\" in the config)");
    s.origin = parse_endpoint("--origin", o.origin, true);
    s.origin_host = o.origin_host.empty() ? o.origin : o.origin_host;
    if (o.listen.empty() && o.tls_listen.empty()) edge::usage_error("no listener: set --listen ADDR:PORT");
    for (auto& l : o.listen) s.listen.push_back(parse_endpoint("--listen", l, false));
    for (auto& l : o.tls_listen) {
        SockAddr a = parse_endpoint("--tls-listen", l, false);
        for (auto& p : s.listen)
            if (p.len == a.len && std::memcmp(&p.ss, &a.ss, a.len) == 0)
                edge::usage_error("--tls-listen: {} is also a plain --listen address (one port speaks one protocol)", l);
        s.tls_listen.push_back(a);
    }
    if (o.tls_cert.size() != o.tls_key.size())
        edge::usage_error("--tls-key: {} key(s) for {} certificate(s): give one --tls-key per --tls-cert, in the same order",
                          o.tls_key.size(), o.tls_cert.size());
    if (o.tls_ticket_rotation > 7 * 86400) edge::usage_error("--tls-ticket-rotation: {} is too long (0..604800 seconds)", o.tls_ticket_rotation);
    if (o.tls_min_version != "1.2" && o.tls_min_version != "1.3")
        edge::usage_error("--tls-min-version: '{}' is not 1.2 or 1.3", o.tls_min_version);
    s.tls_ticket_rotation = o.tls_ticket_rotation;
    if (!s.tls_listen.empty()) {
        if (o.tls_cert.empty()) edge::usage_error("--tls-listen: needs a certificate: set --tls-cert FILE and --tls-key FILE");
        std::vector<tls::CertKey> pairs;
        for (size_t i = 0; i < o.tls_cert.size(); i++) pairs.push_back({o.tls_cert[i], o.tls_key[i]});
        // Tickets stay valid for two rotation periods: the current key and the previous one.
        s.tls = tls::Context::load(pairs, o.tls_min_version, 2 * o.tls_ticket_rotation);
    } else if (!o.tls_cert.empty()) {
        edge::usage_error("--tls-cert: no --tls-listen to use it on");
    }
    if (!o.admin.empty()) {
        s.has_admin = true;
        s.admin = parse_endpoint("--admin", o.admin, false);
    }
    s.admin_token = o.admin_token;
    s.threads = o.threads ? o.threads : std::max(1u, std::thread::hardware_concurrency());
    if (s.threads > 256) edge::usage_error("--threads: {} is too many (1..256)", s.threads);
    s.cache_size = parse_size("--cache-size", o.cache_size);
    s.max_object_size = parse_size("--max-object-size", o.max_object_size);
    s.max_header_size = parse_size("--max-header-size", o.max_header_size);
    if (s.max_header_size < 256 || s.max_header_size > (1u << 20))
        edge::usage_error("--max-header-size: {} is out of range (256..1M)", o.max_header_size);
    if (o.max_headers < 1 || o.max_headers > 1000) edge::usage_error("--max-headers: {} is out of range (1..1000)", o.max_headers);
    s.max_headers = o.max_headers;
    if (o.rate_limit < 0) edge::usage_error("--rate-limit: must be >= 0 requests per second");
    if (o.rate_burst < 0) edge::usage_error("--rate-burst: must be >= 0");
    s.rate_limit = o.rate_limit;
    s.rate_burst = o.rate_burst > 0 ? o.rate_burst : std::max(1.0, o.rate_limit);
    s.access_log = o.access_log;
    if (o.upstream_timeout < 1) edge::usage_error("--upstream-timeout: must be at least 1 second");
    if (o.client_timeout < 1) edge::usage_error("--client-timeout: must be at least 1 second");
    s.upstream_timeout = o.upstream_timeout;
    s.client_timeout = o.client_timeout;
    s.drain_timeout = o.drain_timeout;
    s.upstream_max_idle = o.upstream_max_idle;
    s.sendfile_min = parse_size("--sendfile-min", o.sendfile_min);
    s.splice_min = parse_size("--splice-min", o.splice_min);
    s.disk_cache = o.disk_cache;
    s.disk_cache_size = parse_size("--disk-cache-size", o.disk_cache_size);
    if (!s.disk_cache.empty() && s.disk_cache_size < (1u << 20))
        edge::usage_error("--disk-cache-size: {} is too small (at least 1M)", o.disk_cache_size);
    s.upgrade_socket = o.upgrade_socket;
    s.proxy_protocol = o.proxy_protocol;
    if (s.upgrade_socket.size() >= 100) edge::usage_error("--upgrade-socket: path too long (< 100 characters)");
    if (o.heuristic_max < 0) edge::usage_error("--heuristic-max: must be >= 0 seconds");
    s.policy.heuristic_max = o.heuristic_max;
    s.policy.store_set_cookie = o.store_set_cookie;
    return s;
}
}  // namespace

}  // namespace cache_proxy
