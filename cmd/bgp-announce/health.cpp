#include "health.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include <fmt/format.h>

namespace bgp_announce {
namespace {

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::pair<bool, std::string> run_command(const std::string& cmd, int timeout_ms) {
    pid_t pid = fork();
    if (pid < 0) return {false, fmt::format("fork: {}", std::strerror(errno))};
    if (pid == 0) {
        setpgid(0, 0);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
        }
        execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    setpgid(pid, pid);
    int64_t deadline = now_ms() + timeout_ms;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) return {false, "waitpid failed"};
        if (now_ms() > deadline) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return {false, fmt::format("command timed out after {} ms", timeout_ms)};
        }
        usleep(5000);
    }
    if (WIFEXITED(status)) {
        int code = WEXITSTATUS(status);
        return {code == 0, fmt::format("exit {}", code)};
    }
    return {false, fmt::format("killed by signal {}", WTERMSIG(status))};
}

// Connected socket or -1 (+ why).
int tcp_connect(const net::Endpoint& ep, int timeout_ms, std::string& why) {
    int fd = socket(ep.addr.is_v4() ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        why = std::strerror(errno);
        return -1;
    }
    sockaddr_storage ss{};
    socklen_t len;
    if (ep.addr.is_v4()) {
        auto* s = reinterpret_cast<sockaddr_in*>(&ss);
        s->sin_family = AF_INET;
        s->sin_port = htons(ep.port);
        std::memcpy(&s->sin_addr, ep.addr.bytes().data(), 4);
        len = sizeof *s;
    } else {
        auto* s = reinterpret_cast<sockaddr_in6*>(&ss);
        s->sin6_family = AF_INET6;
        s->sin6_port = htons(ep.port);
        std::memcpy(&s->sin6_addr, ep.addr.bytes().data(), 16);
        len = sizeof *s;
    }
    if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS) {
        why = fmt::format("connect {}: {}", ep.to_string(), std::strerror(errno));
        close(fd);
        return -1;
    }
    pollfd p{fd, POLLOUT, 0};
    if (poll(&p, 1, timeout_ms) <= 0) {
        why = fmt::format("connect {}: timed out", ep.to_string());
        close(fd);
        return -1;
    }
    int e = 0;
    socklen_t l = sizeof e;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l);
    if (e) {
        why = fmt::format("connect {}: {}", ep.to_string(), std::strerror(e));
        close(fd);
        return -1;
    }
    return fd;
}

}  // namespace

std::pair<bool, std::string> HealthChecker::check_once(const HealthCheck& hc) {
    int timeout_ms = static_cast<int>(hc.timeout_s * 1000);
    if (hc.kind == HealthCheck::Kind::command) return run_command(hc.command, timeout_ms);
    std::string why;
    int64_t deadline = now_ms() + timeout_ms;
    int fd = tcp_connect(hc.target, timeout_ms, why);
    if (fd < 0) return {false, why};
    if (hc.kind == HealthCheck::Kind::tcp) {
        close(fd);
        return {true, "connected"};
    }
    std::string req = fmt::format("GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: bgp-announce\r\nConnection: close\r\n\r\n",
                                  hc.http_path, hc.http_host);
    if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
        close(fd);
        return {false, "HTTP request not sent"};
    }
    std::string resp;
    char buf[1024];
    while (resp.find('\n') == std::string::npos && resp.size() < 4096) {
        int left = static_cast<int>(deadline - now_ms());
        pollfd p{fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, left) <= 0) {
            close(fd);
            return {false, "HTTP response timed out"};
        }
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        resp.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    int status = 0;
    if (resp.size() < 12 || resp.compare(0, 5, "HTTP/") != 0 || sscanf(resp.c_str() + resp.find(' '), " %d", &status) != 1)
        return {false, "no HTTP status line"};
    return {status == hc.expect_status, fmt::format("HTTP {}", status)};
}

HealthChecker::HealthChecker(HealthCheck hc, std::function<void(bool, std::string)> report)
    : hc_(std::move(hc)), report_(std::move(report)) {
    t_ = std::thread([this] { run(); });
}

HealthChecker::~HealthChecker() {
    {
        std::lock_guard lk(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    t_.join();
}

void HealthChecker::run() {
    for (;;) {
        auto start = std::chrono::steady_clock::now();
        auto [ok, detail] = check_once(hc_);
        {
            std::lock_guard lk(mu_);
            if (stop_) return;
        }
        report_(ok, detail);
        std::unique_lock lk(mu_);
        auto next = start + std::chrono::milliseconds(static_cast<int64_t>(hc_.interval_s * 1000));
        if (cv_.wait_until(lk, next, [&] { return stop_; })) return;
    }
}

}  // namespace bgp_announce
