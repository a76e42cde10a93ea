// cache-proxy: a caching reverse proxy (RFC 9111, RFC 9213) — worker threads with their own
// epoll and SO_REUSEPORT listener, one shared upstream keep-alive pool, request coalescing,
// strict HTTP/1.1 parsing (llhttp plus anti-smuggling checks), reload on SIGHUP.
#include <llhttp.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "cli/error.hpp"
#include "config/toml.hpp"
#include "cli/tool.hpp"
#include "out/output.hpp"
#include "out/record.hpp"
#include "proxy.hpp"
#include "settings.hpp"

using namespace cache_proxy;

namespace {
void add_options(edge::cli::Tool& tool, Options& o) {
    CLI::App& a = tool.app();
    a.add_option("-l,--listen", o.listen, "Client listener ADDR:PORT (repeatable; [v6]:port)");
    a.add_option("-o,--origin", o.origin, "Origin server HOST:PORT");
    a.add_option("--origin-host", o.origin_host, "Host header sent upstream when the client sent none (default: --origin)");
    a.add_option("--admin", o.admin, "Admin listener ADDR:PORT: GET /metrics (Prometheus), GET /stats, PURGE");
    a.add_option("--admin-token", o.admin_token, "Token PURGE must carry (X-Purge-Token); required off loopback");
    a.add_option("-t,--threads", o.threads, "Worker threads (0 = one per core)");
    a.add_option("--cache-size", o.cache_size, "Memory tier byte limit (K, M, G suffixes)");
    a.add_option("--max-object-size", o.max_object_size, "Largest response body kept in the cache");
    a.add_option("--max-header-size", o.max_header_size, "Largest request header block (431 beyond)");
    a.add_option("--max-headers", o.max_headers, "Most header fields in a request (400 beyond)");
    a.add_option("--rate-limit", o.rate_limit, "Requests per second per client IP (token bucket, 429; 0 = off)");
    a.add_option("--rate-burst", o.rate_burst, "Token bucket size (default: the rate)");
    tool.file(a.add_option("--access-log", o.access_log, "JSON Lines access log file ('-' for stdout; reopened on SIGHUP)"));
    a.add_option("--upstream-timeout", o.upstream_timeout, "Seconds to wait for the origin (504 after)");
    a.add_option("--client-timeout", o.client_timeout, "Idle keep-alive and request header timeout, seconds");
    a.add_option("--drain-timeout", o.drain_timeout, "Seconds SIGTERM waits for open requests before closing");
    a.add_option("--upstream-max-idle", o.upstream_max_idle, "Idle origin connections kept in the shared pool");
    a.add_option("--heuristic-max", o.heuristic_max, "Cap on heuristic freshness (10% of the Last-Modified age), seconds");
    a.add_option("--sendfile-min", o.sendfile_min, "Bodies at least this large are kept in a sealed memfd and sent with sendfile (0 = never)");
    a.add_option("--splice-min", o.splice_min,
                 "Pass-through bodies (not stored, Content-Length, plain client) at least this large go origin -> pipe -> client with splice (0 = never)");
    tool.file(a.add_option("--disk-cache", o.disk_cache,
                           "Directory of the disk tier: objects evicted from memory are written there (LRU, kept across restarts)"));
    a.add_option("--disk-cache-size", o.disk_cache_size, "Byte limit of the disk tier (K, M, G suffixes)");
    tool.file(a.add_option("--upgrade-socket", o.upgrade_socket,
                           "Unix socket for binary upgrades: a new process started with the same path takes over the listeners"));
    a.add_flag("--proxy-protocol", o.proxy_protocol,
               "Client connections start with a PROXY protocol v2 header (behind an L4 balancer)");
    a.add_flag("--store-set-cookie", o.store_set_cookie, "Store responses with Set-Cookie even without public/s-maxage");
    a.add_option("--tls-listen", o.tls_listen, "TLS client listener ADDR:PORT (repeatable; needs --tls-cert and --tls-key)");
    tool.file(a.add_option("--tls-cert", o.tls_cert,
                           "PEM certificate chain (repeatable: several certificates are chosen by SNI, the first is the default)"));
    tool.file(a.add_option("--tls-key", o.tls_key, "PEM private key of the --tls-cert at the same position (repeatable)"));
    a.add_option("--tls-ticket-rotation", o.tls_ticket_rotation,
                 "Seconds between session ticket key rotations; a ticket lives two periods (0 = no tickets)");
    tool.choices(a.add_option("--tls-min-version", o.tls_min_version, "Oldest TLS version accepted"), {"1.2", "1.3"});
}

// Numbers, booleans and choices in -c FILE are converted by CLI11, whose errors cannot say
// where the value is: check them here first, so that they name FILE:LINE and the key too.
void precheck_config(int argc, char** argv) {
    std::string path;
    for (int i = 1; i < argc; i++) {
        std::string_view a = argv[i];
        if ((a == "-c" || a == "--config") && i + 1 < argc) path = argv[i + 1];
        else if (a.rfind("--config=", 0) == 0) path = std::string(a.substr(9));
        else if (a.size() > 2 && a.rfind("-c", 0) == 0) path = std::string(a.substr(2));
    }
    if (path.empty()) return;
    edge::config::Document doc;
    try {
        doc = edge::config::load(path);
    } catch (const edge::UsageError&) {
        return;  // unreadable or bad TOML: the CLI reports it with FILE:LINE
    }
    edge::config::Table t(doc);
    // A key also given on the command line is overridden: its file value does not matter.
    auto cli = ValueSource::from(path, argc, argv).command_line;
    auto given = [&](const char* key) { return std::find(cli.begin(), cli.end(), key) != cli.end(); };
    auto integer = [&](const char* key, int64_t lo, int64_t hi) {
        const toml::node* n = t.raw().get(key);
        if (!n || given(key)) return;
        if (n->is_string()) {
            std::string v = *n->value<std::string>();
            char* end = nullptr;
            errno = 0;
            long long x = std::strtoll(v.c_str(), &end, 10);
            if (v.empty() || *end || errno) t.fail(key, fmt::format("'{}' is not an integer", v));
            if (x < lo || x > hi) t.fail(key, fmt::format("{} is out of range {}..{}", x, lo, hi));
            return;
        }
        t.integer(key, lo, hi);
    };
    auto number = [&](const char* key) {
        const toml::node* n = t.raw().get(key);
        if (!n || given(key)) return;
        if (n->is_string()) {
            std::string v = *n->value<std::string>();
            char* end = nullptr;
            double x = std::strtod(v.c_str(), &end);
            if (v.empty() || *end) t.fail(key, fmt::format("'{}' is not a number", v));
            if (x < 0) t.fail(key, "must be >= 0");
            return;
        }
        if (auto x = t.real(key); x && *x < 0) t.fail(key, "must be >= 0");
    };
    auto boolean = [&](const char* key) {
        const toml::node* n = t.raw().get(key);
        if (n && !given(key) && !(n->is_boolean() || (n->is_string() && (*n->value<std::string>() == "true" || *n->value<std::string>() == "false"))))
            t.boolean(key);
    };
    integer("threads", 0, 256);
    integer("max-headers", 1, 1000);
    integer("upstream-timeout", 1, UINT32_MAX);
    integer("client-timeout", 1, UINT32_MAX);
    integer("drain-timeout", 0, UINT32_MAX);
    integer("upstream-max-idle", 0, UINT32_MAX);
    integer("heuristic-max", 0, INT64_MAX);
    integer("tls-ticket-rotation", 0, 7 * 86400);
    number("rate-limit");
    number("rate-burst");
    boolean("proxy-protocol");
    boolean("store-set-cookie");
    if (auto v = given("tls-min-version") ? std::nullopt : t.str("tls-min-version"); v && *v != "1.2" && *v != "1.3") t.fail("tls-min-version", fmt::format("'{}': expected \"1.2\" or \"1.3\"", *v));
}

std::string config_path(edge::cli::Tool& t) {
    if (!t.globals().config.empty()) return t.globals().config;
    if (auto* c = t.app().get_config_ptr(); c && c->count()) return c->as<std::string>();
    return {};
}

// SIGHUP: parse the same command line (and so the same -c FILE) again.
struct Reloader {
    int argc;
    char** argv;
    Settings operator()() const {
        edge::cli::Tool t("cache-proxy", "reload");
        Options o;
        add_options(t, o);
        t.app().add_subcommand("run", "");
        t.app().add_subcommand("check", "");
        precheck_config(argc, argv);
        try {
            t.app().parse(argc, argv);
        } catch (const CLI::ParseError& e) {
            throw edge::UsageError(e.what());
        }
        return resolve(o, ValueSource::from(config_path(t), argc, argv));
    }
};
}  // namespace

int main(int argc, char** argv) {
    edge::cli::Tool tool("cache-proxy", "cache-proxy: a caching reverse proxy (RFC 9111) with a shared origin connection pool");
    tool.add_library(fmt::format("llhttp {}.{}.{}", LLHTTP_VERSION_MAJOR, LLHTTP_VERSION_MINOR, LLHTTP_VERSION_PATCH));
    Options o;
    add_options(tool, o);
    auto settings = [&] { return resolve(o, ValueSource::from(config_path(tool), argc, argv)); };
    auto run = [&] { return serve(settings(), Reloader{argc, argv}, tool.globals().json); };
    tool.default_action(run);
    tool.command("run", "Run the proxy in the foreground (the default): SIGHUP reloads, SIGTERM drains", run);
    tool.command("check", "Validate the options and config file, print the effective settings", [&] {
        Settings s = settings();
        edge::out::Output out(tool.globals().json);
        edge::out::Record r("cache_proxy_config");
        std::vector<std::string> listen, tls_listen, tls_names;
        for (auto& l : s.listen) listen.push_back(l.text);
        for (auto& l : s.tls_listen) tls_listen.push_back(l.text);
        if (s.tls)
            for (auto& names : s.tls->names()) tls_names.push_back(fmt::format("{}", fmt::join(names, " ")));
        r.strings("listen", listen)
            .strings("tls_listen", tls_listen)
            .strings("tls_certificates", tls_names)
            .num("tls_ticket_rotation_s", s.tls_ticket_rotation)
            .str("origin", s.origin.text)
            .str("admin", s.has_admin ? s.admin.text : "")
            .num("threads", s.threads)
            .num("cache_bytes", s.cache_size)
            .num("max_object_bytes", s.max_object_size)
            .num("max_header_bytes", static_cast<uint64_t>(s.max_header_size))
            .real("rate_limit_rps", s.rate_limit)
            .str("access_log", s.access_log)
            .num("splice_min_bytes", s.splice_min)
            .str("disk_cache", s.disk_cache)
            .num("disk_cache_bytes", s.disk_cache.empty() ? uint64_t{0} : s.disk_cache_size);
        out.emit(r);
        return 0;
    });
    try {
        precheck_config(argc, argv);
    } catch (const edge::UsageError& e) {
        fmt::print(stderr, "cache-proxy: {}\n", e.what());
        return edge::exit_usage;
    }
    return tool.run(argc, argv);
}
