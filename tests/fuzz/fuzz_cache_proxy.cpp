// cache-proxy's whole request path on hostile bytes from both sides: the real engine
// (cmd/cache-proxy/*.cpp but main.cpp, one worker thread) runs in this process on loopback;
// each input is what a client sends and what the origin answers:
//   CLIENT-BYTES [ "\n@@@\n" ORIGIN-RESPONSE ]...
// The client connection sends CLIENT-BYTES (any number of pipelined requests), half-closes
// and reads until the proxy closes. The n-th connection the proxy opens to the origin gets
// the n-th ORIGIN-RESPONSE (the last one again when there are fewer; nothing when there is
// none), then a half-close. Between inputs the cache is purged (admin PURGE *), and origin
// connections are never pooled (--upstream-max-idle 0), so one input replays the same way.
// The store limits are small (1 KiB memfd bodies, 2 KiB splice, 64 KiB objects, 256 KiB
// cache) so every body path and eviction run, and the access log (/dev/null) sees every
// request target. A proxy that does not close the client connection within 8 s (upstream
// and client timeouts are 3 s here) is a hang: the input is reported as a crash.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "proxy.hpp"
#include "settings.hpp"

namespace {
int g_origin = -1;
std::thread* g_proxy = nullptr;
uint16_t g_port = 0, g_admin = 0;
constexpr std::string_view k_sep = "\n@@@\n";

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
sockaddr_in loopback(uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}
int listener(uint16_t& port) {  // a bound, listening socket on 127.0.0.1 (port 0: any)
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a = loopback(port);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 64) != 0) {
        std::perror("fuzz_cache_proxy: listen");
        std::abort();
    }
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    return fd;
}
uint16_t free_port() {
    uint16_t p = 0;
    ::close(listener(p));
    return p;
}
// A connected socket to 127.0.0.1:port, or -1 with errno set. libFuzzer's timeout alarm
// (SIGALRM, no SA_RESTART) can interrupt connect() while the handshake is still in the
// kernel's backlog on a loaded machine: EINTR there is not a failure, the connection
// goes on, and we wait for it (seen once in CI as "admin listener gone").
int connect_to(uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_in a = loopback(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        int err = errno;
        if (err == EINTR || err == EINPROGRESS) {
            pollfd pf{fd, POLLOUT, 0};
            int64_t end = now_ms() + 5000;
            int n;
            while ((n = ::poll(&pf, 1, 100)) <= 0 && now_ms() < end)
                if (n < 0 && errno != EINTR) break;
            socklen_t len = sizeof err;
            if (n < 0 && errno != EINTR) err = errno;
            else if (n <= 0) err = ETIMEDOUT;
            else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        }
        if (err != 0) {
            ::close(fd);
            errno = err;
            return -1;
        }
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}
[[noreturn]] void hang(const char* what) {
    std::fprintf(stderr, "fuzz_cache_proxy: HANG: %s\n", what);
    std::abort();
}
[[noreturn]] void cannot_connect(const char* what) {
    std::fprintf(stderr, "fuzz_cache_proxy: HANG: %s (connect: %s)\n", what, std::strerror(errno));
    std::abort();
}

// One side of a conversation: bytes still to send, then a half-close; reads until EOF.
struct Peer {
    int fd = -1;
    std::string out;
    size_t sent = 0;
    bool shut = false, eof = false;
    std::string in;  // origin side: the request head seen so far
    bool answered = false;
    void pump_out() {
        while (sent < out.size()) {
            ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
            if (n > 0) {
                sent += static_cast<size_t>(n);
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
            sent = out.size();  // the proxy closed: nothing more to say
        }
        if (!shut) {
            ::shutdown(fd, SHUT_WR);
            shut = true;
        }
    }
    void drain(bool keep_head) {
        char b[16384];
        for (;;) {
            ssize_t n = ::recv(fd, b, sizeof b, 0);
            if (n > 0) {
                if (keep_head && in.size() < 65536) in.append(b, static_cast<size_t>(n));
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
            eof = true;  // EOF or reset
            return;
        }
    }
};

// PURGE everything (key prefix ""), so the next input starts with an empty cache.
void purge() {
    int fd = connect_to(g_admin);
    if (fd < 0) cannot_connect("admin listener gone");
    Peer p{fd, "PURGE * HTTP/1.0\r\n\r\n"};
    int64_t end = now_ms() + 5000;
    while (!p.eof) {
        p.pump_out();
        pollfd pf{fd, POLLIN, 0};
        if (now_ms() > end) hang("admin PURGE not answered");
        if (::poll(&pf, 1, 100) > 0) p.drain(false);
    }
    ::close(fd);
}

void start_proxy() {
    uint16_t origin_port = 0;
    g_origin = listener(origin_port);
    fcntl(g_origin, F_SETFL, fcntl(g_origin, F_GETFL) | O_NONBLOCK);
    g_port = free_port();
    g_admin = free_port();
    cache_proxy::Options o;
    o.listen = {"127.0.0.1:" + std::to_string(g_port)};
    o.origin = "127.0.0.1:" + std::to_string(origin_port);
    o.admin = "127.0.0.1:" + std::to_string(g_admin);
    o.threads = 1;
    o.cache_size = "256K";
    o.max_object_size = "64K";
    o.max_header_size = "8K";
    o.max_headers = 64;
    o.upstream_timeout = 3;
    o.client_timeout = 3;
    o.drain_timeout = 0;
    o.upstream_max_idle = 0;
    o.sendfile_min = "1K";
    o.splice_min = "2K";
    o.access_log = "/dev/null";
    cache_proxy::Settings s = cache_proxy::resolve(o);
    g_proxy = new std::thread([s]() mutable { cache_proxy::serve(std::move(s), [] { return cache_proxy::Settings{}; }, false); });
    // At exit the proxy drains and stops (SIGTERM to its signalfd) before static objects die.
    std::atexit([] {
        pthread_kill(g_proxy->native_handle(), SIGTERM);
        g_proxy->join();
    });
    for (int i = 0; i < 500; i++) {  // up within 5 s
        int fd = connect_to(g_admin);
        if (fd >= 0) {
            ::close(fd);
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    hang("the proxy did not start");
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    start_proxy();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    std::vector<std::string_view> parts;
    for (;;) {
        size_t p = in.find(k_sep);
        parts.push_back(in.substr(0, p));
        if (p == std::string_view::npos) break;
        in.remove_prefix(p + k_sep.size());
    }
    if (parts.size() > 17) parts.resize(17);

    Peer client;
    client.fd = connect_to(g_port);
    if (client.fd < 0) cannot_connect("client listener gone");
    client.out.assign(parts[0]);
    std::vector<Peer> origins;
    size_t next_response = 1;
    int64_t end = now_ms() + 8000;
    while (!client.eof) {
        if (now_ms() > end) hang("the proxy kept the client connection open for 8 s after the client's last byte");
        client.pump_out();
        std::vector<pollfd> pf{{client.fd, static_cast<short>(POLLIN | (client.shut ? 0 : POLLOUT)), 0}, {g_origin, POLLIN, 0}};
        for (auto& o : origins) pf.push_back({o.fd, static_cast<short>((o.eof ? 0 : POLLIN) | (o.answered && !o.shut ? POLLOUT : 0)), 0});
        if (::poll(pf.data(), pf.size(), 50) < 0) continue;
        if (pf[0].revents) client.drain(false);
        if (pf[1].revents & POLLIN) {
            for (;;) {
                int fd = ::accept4(g_origin, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) break;
                Peer o;
                o.fd = fd;
                origins.push_back(std::move(o));
            }
        }
        for (auto& o : origins) {
            if (o.fd < 0) continue;
            if (!o.eof) o.drain(!o.answered);
            // Answer once the request head is complete (or the proxy gave up on it).
            if (!o.answered && (o.in.find("\r\n\r\n") != std::string::npos || o.eof)) {
                o.answered = true;
                if (parts.size() > 1) o.out.assign(parts[std::min(next_response, parts.size() - 1)]);
                next_response++;
                o.in.clear();
            }
            if (o.answered) o.pump_out();
        }
    }
    ::close(client.fd);
    for (auto& o : origins) ::close(o.fd);
    // Origin connections still queued (a background revalidation) fail now, not in the next input.
    for (int fd; (fd = ::accept4(g_origin, nullptr, nullptr, SOCK_CLOEXEC)) >= 0;) ::close(fd);
    purge();
    return 0;
}
