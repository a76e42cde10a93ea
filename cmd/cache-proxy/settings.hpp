// cache-proxy settings: every key mirrors a long option (and a key in -c FILE).
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "http/cache.hpp"
#include "tls.hpp"

namespace cache_proxy {

// What the user typed (strings as given, parsed by resolve()).
struct Options {
    std::vector<std::string> listen{"127.0.0.1:8090"};
    std::string origin;
    std::string origin_host;  // Host header sent upstream when the client sent none
    std::string admin;
    std::string admin_token;
    unsigned threads = 0;
    std::string cache_size = "256M";
    std::string max_object_size = "16M";
    std::string max_header_size = "16K";
    unsigned max_headers = 100;
    double rate_limit = 0;
    double rate_burst = 0;
    std::string access_log;
    unsigned upstream_timeout = 30;
    unsigned client_timeout = 60;
    unsigned drain_timeout = 10;
    unsigned upstream_max_idle = 256;
    int64_t heuristic_max = 86400;
    bool store_set_cookie = false;
    std::string sendfile_min = "128K";
    std::string splice_min = "256K";
    std::string disk_cache;                // directory of the disk tier ("" = none)
    std::string disk_cache_size = "1G";
    std::string upgrade_socket;
    bool proxy_protocol = false;
    std::vector<std::string> tls_listen;
    std::vector<std::string> tls_cert, tls_key;  // paired by position
    unsigned tls_ticket_rotation = 3600;         // seconds; 0 = no session tickets
    std::string tls_min_version = "1.2";
};

// Where option values came from: the -c FILE (errors then name FILE:LINE and the key) or
// the command line (errors name --option).
struct ValueSource {
    std::string config;                    // the -c path, "" when none
    std::vector<std::string> command_line;  // long names given on the command line
    static ValueSource from(const std::string& config_path, int argc, char** argv);
};

struct SockAddr {
    sockaddr_storage ss{};
    socklen_t len = 0;
    std::string text;
};

// Validated, parsed settings shared (read-only) by every thread.
struct Settings {
    std::vector<SockAddr> listen;
    SockAddr origin;
    std::string origin_host;
    bool has_admin = false;
    SockAddr admin;
    std::string admin_token;
    unsigned threads = 1;
    uint64_t cache_size = 0;
    uint64_t max_object_size = 0;
    size_t max_header_size = 0;
    unsigned max_headers = 100;
    double rate_limit = 0, rate_burst = 0;
    std::string access_log;
    unsigned upstream_timeout = 30, client_timeout = 60, drain_timeout = 10;
    unsigned upstream_max_idle = 256;
    size_t sendfile_min = 0;
    uint64_t splice_min = 0;
    std::string disk_cache;
    uint64_t disk_cache_size = 0;
    std::string upgrade_socket;
    bool proxy_protocol = false;
    std::vector<SockAddr> tls_listen;
    std::shared_ptr<const tls::Context> tls;  // set when tls_listen is not empty
    unsigned tls_ticket_rotation = 3600;
    edge::http::CachePolicy policy;
};

// Throws edge::UsageError naming the option (or FILE:LINE and the key when the bad value
// came from the config file).
Settings resolve(const Options& o, const ValueSource& src = {});
uint64_t parse_size(const std::string& what, const std::string& s);
SockAddr parse_endpoint(const std::string& what, const std::string& s, bool resolve_names);

}  // namespace cache_proxy
