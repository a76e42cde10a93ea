// bgp-announce: a BGP-4 speaker for anycast — health-checked routes, scriptable over stdin
// (text or JSON Lines), RTBH and FlowSpec mitigations, a control socket and metrics.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "cli/error.hpp"
#include "json/json.hpp"
#include "cli/tool.hpp"
#include "config.hpp"
#include "decode.hpp"
#include "out/output.hpp"
#include "speaker.hpp"

using namespace bgp_announce;

namespace {

int run_ctl(const std::string& socket_path, const std::vector<std::string>& words, bool json) {
    if (words.empty()) edge::usage_error("ctl needs a command: status, routes, metrics, announce ..., withdraw ...");
    std::string line;
    for (auto& w : words) line += (line.empty() ? "" : " ") + w;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (socket_path.size() >= sizeof sa.sun_path) edge::usage_error("control socket path too long: {}", socket_path);
    std::strcpy(sa.sun_path, socket_path.c_str());
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
        edge::failure("cannot connect to {}: {} (is bgp-announce run with control_socket?)", socket_path, std::strerror(errno));
    line += '\n';
    if (send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size()))
        edge::failure("cannot send to {}: {}", socket_path, std::strerror(errno));
    shutdown(fd, SHUT_WR);
    std::string reply;
    char buf[65536];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        reply.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    int rc = 0;
    edge::json::Document parser;
    size_t start = 0;
    while (start < reply.size()) {
        auto nl = reply.find('\n', start);
        if (nl == std::string::npos) nl = reply.size();
        std::string_view l(reply.data() + start, nl - start);
        start = nl + 1;
        if (l.empty()) continue;
        bool is_json = !l.empty() && l[0] == '{' && parser.parse(l);
        const edge::json::Value doc = parser.root();
        if (!is_json) {  // metrics text
            fmt::print("{}\n", l);
            continue;
        }
        std::string_view type;
        if (doc["type"].get(type) && type == "ctl_result") {
            bool ok = false;
            if (!doc["ok"].get(ok)) ok = false;
            if (!ok) {
                std::string_view e;
                if (!doc["error"].get(e)) e = "error";
                if (!json) edge::usage_error("{}", e);
                rc = 2;
            }
        }
        if (json) {
            fmt::print("{}\n", l);
        } else {
            std::string t(type);
            for (auto [k, v] : doc.members()) {
                if (k == "type") continue;
                t += fmt::format(" {}={}", k, v.minify());
            }
            fmt::print("{}\n", t);
        }
    }
    std::fflush(stdout);
    return rc;
}

}  // namespace

int main(int argc, char** argv) {
    edge::cli::Tool tool("bgp-announce", "bgp-announce: a BGP-4 speaker for anycast, RTBH and FlowSpec");
    Options opt;
    bool check = false;
    auto* run = tool.command("run", "Run the speaker: sessions from -c FILE, commands on stdin, events on stdout", [&] {
        // Globals::config is not filled by cli::Tool: read the -c option itself.
        std::string path = tool.globals().config;
        if (auto* c = tool.app().get_config_ptr(); path.empty() && c && c->count()) path = c->as<std::string>();
        if (path.empty()) edge::usage_error("run needs -c FILE (the [speaker] and [[peer]] tables)");
        auto cfg = load_config(path);
        if (check) {
            edge::out::Output out(tool.globals().json);
            edge::out::Record r("bgp_config");
            r.str("config", cfg.path).num("peers", uint64_t{cfg.peers.size()}).num("groups", uint64_t{cfg.groups.size()});
            r.text(fmt::format("{}: {} peer(s), {} group(s): OK", cfg.path, cfg.peers.size(), cfg.groups.size()));
            out.emit(r);
            return 0;
        }
        // Block the shutdown signals before any thread starts: the loop reads them from a signalfd.
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, nullptr);
        signal(SIGPIPE, SIG_IGN);
        Speaker s(std::move(cfg), opt, tool.globals().json);
        return s.run();
    });
    tool.file(run->add_option("--control-socket", opt.control_socket, "Unix socket for 'bgp-announce ctl' (overrides [speaker] control_socket)"));
    run->add_option("--metrics", opt.metrics, "Serve Prometheus metrics over HTTP on ADDR:PORT");
    run->add_flag("--withdraw-on-eof", opt.withdraw_on_eof, "Withdraw the routes added by commands when stdin closes");
    run->add_flag("--check", check, "Validate the config file and exit");

    std::string sock;
    std::vector<std::string> words;
    auto* ctl = tool.command("ctl", "Talk to a running speaker: status, routes, metrics, announce ..., withdraw ...",
                             [&] { return run_ctl(sock, words, tool.globals().json); });
    tool.file(ctl->add_option("-s,--socket", sock, "The speaker's control socket")->required());
    ctl->add_option("words", words, "The command, e.g. status or announce route 192.0.2.0/24 community 65000:1");
    add_decode_command(tool);
    add_validate_command(tool);
    return tool.run(argc, argv);
}
