// edgectl lab: HTTP/1.1 GET over a socket made inside a namespace.
#include "lab_http.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <strings.h>

#include <fmt/format.h>

#include "lab_sys.hpp"

namespace edgectl::lab {

namespace {

// Waits until fd is ready for `ev` or the clock passes `end` (false). A signal that
// interrupts the wait is Ctrl-C's (Interrupted, from check_interrupt) or is waited out:
// it is not the server failing to answer. The wait is sliced so that a thread that
// blocks the signals (the demo's load clients) also sees Ctrl-C within 200 ms.
bool wait_ready(int fd, short ev, double end) {
    for (;;) {
        check_interrupt();
        const double left = end - now_s();
        if (left <= 0) return false;
        pollfd p{fd, ev, 0};
        const int n = poll(&p, 1, static_cast<int>(std::min(left, 0.2) * 1000) + 1);
        if (n > 0) return true;
        if (n < 0 && errno != EINTR) return false;
    }
}

}  // namespace

std::string HttpResponse::header(const std::string& name) const {
    size_t pos = 0;
    while ((pos = head.find("\r\n", pos)) != std::string::npos) {
        pos += 2;
        if (head.size() - pos > name.size() && strncasecmp(head.c_str() + pos, name.c_str(), name.size()) == 0 &&
            head[pos + name.size()] == ':') {
            size_t v = pos + name.size() + 1;
            while (v < head.size() && head[v] == ' ') v++;
            return head.substr(v, head.find("\r\n", v) - v);
        }
    }
    return "";
}

HttpConn::HttpConn(const std::string& ns, const std::string& addr, uint16_t port, double timeout_s)
    : host_(addr.find(':') != std::string::npos ? fmt::format("[{}]:{}", addr, port) : fmt::format("{}:{}", addr, port)) {
    sockaddr_storage ss{};
    socklen_t salen;
    int family;
    if (auto* s4 = reinterpret_cast<sockaddr_in*>(&ss); inet_pton(AF_INET, addr.c_str(), &s4->sin_addr) == 1) {
        family = s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        salen = sizeof(sockaddr_in);
    } else if (auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss); inet_pton(AF_INET6, addr.c_str(), &s6->sin6_addr) == 1) {
        family = s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        salen = sizeof(sockaddr_in6);
    } else {
        error_ = "bad address " + addr;
        return;
    }
    {
        Netns in(ns);
        fd_ = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    }
    if (fd_ < 0) {
        error_ = std::strerror(errno);
        return;
    }
    int rc = connect(fd_, reinterpret_cast<sockaddr*>(&ss), salen);
    if (rc != 0 && errno != EINPROGRESS) {
        error_ = fmt::format("connect: {}", std::strerror(errno));
    } else if (rc != 0) {
        bool ready;
        try {
            ready = wait_ready(fd_, POLLOUT, now_s() + timeout_s);
        } catch (...) {  // Ctrl-C: no destructor runs for an object never made
            close(fd_);
            throw;
        }
        int err = 0;
        socklen_t len = sizeof err;
        if (!ready) error_ = fmt::format("connect: no answer within {} s", timeout_s);
        else if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err) error_ = fmt::format("connect: {}", std::strerror(err));
    }
    if (!error_.empty()) {
        close(fd_);
        fd_ = -1;
        return;
    }
    sockaddr_storage me{};
    socklen_t len = sizeof me;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&me), &len);
    local_port_ = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&me)->sin_port : reinterpret_cast<sockaddr_in6*>(&me)->sin6_port);
}

HttpConn::HttpConn(HttpConn&& o) noexcept
    : fd_(o.fd_), local_port_(o.local_port_), host_(std::move(o.host_)), error_(std::move(o.error_)), buf_(std::move(o.buf_)) {
    o.fd_ = -1;
}

HttpConn::~HttpConn() {
    if (fd_ >= 0) close(fd_);
}

std::optional<HttpResponse> HttpConn::get(const std::string& path, double timeout_s, const std::string& extra_headers) {
    if (fd_ < 0) {
        if (error_.empty()) error_ = "not connected";
        return std::nullopt;
    }
    double end = now_s() + timeout_s;
    std::string req = fmt::format("GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: edgectl-lab\r\n{}\r\n", path, host_, extra_headers);
    size_t off = 0;
    auto fail = [&](std::string why) -> std::optional<HttpResponse> {
        error_ = std::move(why);
        close(fd_);
        fd_ = -1;
        return std::nullopt;
    };
    auto wait = [&](short ev) { return wait_ready(fd_, ev, end); };
    while (off < req.size()) {
        ssize_t n = send(fd_, req.data() + off, req.size() - off, MSG_NOSIGNAL);
        if (n > 0) off += static_cast<size_t>(n);
        else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (!wait(POLLOUT)) return fail("send: timed out");
        } else return fail(fmt::format("send: {}", std::strerror(errno)));
    }
    HttpResponse r;
    size_t need = std::string::npos;
    for (;;) {
        if (need == std::string::npos) {
            auto he = buf_.find("\r\n\r\n");
            if (he != std::string::npos) {
                r.head = buf_.substr(0, he + 2);
                if (sscanf(r.head.c_str(), "HTTP/1.%*d %d", &r.status) != 1) return fail("bad status line");
                auto cl = r.header("Content-Length");
                if (cl.empty()) return fail("no Content-Length in the answer");
                need = he + 4 + std::stoul(cl);
            }
        }
        if (need != std::string::npos && buf_.size() >= need) {
            r.body = buf_.substr(r.head.size() + 2, need - r.head.size() - 2);
            buf_.erase(0, need);
            return r;
        }
        char tmp[16384];
        ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
        if (n > 0) buf_.append(tmp, static_cast<size_t>(n));
        else if (n == 0) return fail("connection closed by the server");
        else if (errno == EAGAIN || errno == EINTR) {
            if (!wait(POLLIN)) return fail(fmt::format("no answer within {} s", timeout_s));
        } else return fail(fmt::format("recv: {}", std::strerror(errno)));
    }
}

std::optional<HttpResponse> http_get(const std::string& ns, const std::string& addr, uint16_t port, const std::string& path,
                                     double timeout_s, std::string* error) {
    HttpConn c(ns, addr, port, timeout_s);
    auto r = c.get(path, timeout_s);
    if (!r && error) *error = c.error();
    return r;
}

}  // namespace edgectl::lab
