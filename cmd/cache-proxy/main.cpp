// cache-proxy: a caching reverse proxy (RFC 9111, RFC 9213) — worker threads with their own
// epoll and SO_REUSEPORT listener, one shared upstream keep-alive pool, request coalescing,
// strict HTTP/1.1 parsing (llhttp plus anti-smuggling checks), reload on SIGHUP.
#include <llhttp.h>

#include "cli/error.hpp"
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
    tool.file(a.add_option("--upgrade-socket", o.upgrade_socket,
                           "Unix socket for binary upgrades: a new process started with the same path takes over the listeners"));
    a.add_flag("--proxy-protocol", o.proxy_protocol,
               "Client connections start with a PROXY protocol v2 header (behind an L4 balancer)");
    a.add_flag("--store-set-cookie", o.store_set_cookie, "Store responses with Set-Cookie even without public/s-maxage");
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
        try {
            t.app().parse(argc, argv);
        } catch (const CLI::ParseError& e) {
            throw edge::UsageError(e.what());
        }
        return resolve(o);
    }
};
}  // namespace

int main(int argc, char** argv) {
    edge::cli::Tool tool("cache-proxy", "cache-proxy: a caching reverse proxy (RFC 9111) with a shared origin connection pool");
    tool.add_library(fmt::format("llhttp {}.{}.{}", LLHTTP_VERSION_MAJOR, LLHTTP_VERSION_MINOR, LLHTTP_VERSION_PATCH));
    Options o;
    add_options(tool, o);
    auto run = [&] { return serve(resolve(o), Reloader{argc, argv}, tool.globals().json); };
    tool.default_action(run);
    tool.command("run", "Run the proxy in the foreground (the default): SIGHUP reloads, SIGTERM drains", run);
    tool.command("check", "Validate the options and config file, print the effective settings", [&] {
        Settings s = resolve(o);
        edge::out::Output out(tool.globals().json);
        edge::out::Record r("cache_proxy_config");
        std::vector<std::string> listen;
        for (auto& l : s.listen) listen.push_back(l.text);
        r.strings("listen", listen)
            .str("origin", s.origin.text)
            .str("admin", s.has_admin ? s.admin.text : "")
            .num("threads", s.threads)
            .num("cache_bytes", s.cache_size)
            .num("max_object_bytes", s.max_object_size)
            .num("max_header_bytes", static_cast<uint64_t>(s.max_header_size))
            .real("rate_limit_rps", s.rate_limit)
            .str("access_log", s.access_log);
        out.emit(r);
        return 0;
    });
    return tool.run(argc, argv);
}
