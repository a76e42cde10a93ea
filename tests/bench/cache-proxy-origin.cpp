// A scripted HTTP/1.1 origin for cache-proxy tests: the query string decides the response
// headers, so every caching rule can be exercised with exact headers.
//   cache-proxy-test-origin [PORT]        prints "port N" when ready (PORT 0: any free port)
// Query parameters: cc, cdn (CDN-Cache-Control), etag, lm (Last-Modified, seconds before start),
// expires (seconds from now), date (Date offset), age, age1 (Age on the first response only), status, vary, size (body bytes),
// delay (ms), chunked=1, close=1, loc (Location), h=Name:Value (repeatable).
// The default body is "TARGET #N" where N counts the requests for that target.
// Control paths: /__count (all requests), /__hits/TARGET, /__reset, /__mode/500, /__mode/ok,
// /__echo (the request head as the body).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http/message.hpp"

namespace {
std::mutex mu;
std::map<std::string, int> hits;
std::atomic<int> total{0};
std::atomic<bool> fail_mode{false};
const int64_t started = std::time(nullptr);  // lm=N means N seconds before the origin started

std::string url_decode(std::string_view s) {
    std::string o;
    for (size_t i = 0; i < s.size(); i++) {
        if (s[i] == '%' && i + 2 < s.size()) {
            o.push_back(static_cast<char>(std::strtol(std::string(s.substr(i + 1, 2)).c_str(), nullptr, 16)));
            i += 2;
        } else if (s[i] == '+') {
            o.push_back(' ');
        } else {
            o.push_back(s[i]);
        }
    }
    return o;
}

bool send_all(int fd, const std::string& s) {
    size_t p = 0;
    while (p < s.size()) {
        ssize_t n = ::send(fd, s.data() + p, s.size() - p, MSG_NOSIGNAL);
        if (n <= 0) return false;
        p += static_cast<size_t>(n);
    }
    return true;
}

void serve(int fd) {
    std::string buf;
    char tmp[65536];
    for (;;) {
        size_t end;
        while ((end = edge::http::header_block_end(buf)) == 0) {
            ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
            if (n <= 0) {
                ::close(fd);
                return;
            }
            buf.append(tmp, static_cast<size_t>(n));
        }
        std::string head = buf.substr(0, end);
        buf.erase(0, end);
        // Request line and fields.
        size_t eol = head.find("\r\n");
        std::string line = head.substr(0, eol);
        auto sp1 = line.find(' '), sp2 = line.rfind(' ');
        std::string method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1);
        std::multimap<std::string, std::string> f;
        size_t pos = eol + 2;
        while (pos < head.size()) {
            size_t e = head.find("\r\n", pos);
            if (e == pos) break;
            std::string l = head.substr(pos, e - pos);
            pos = e + 2;
            auto c = l.find(':');
            std::string n = l.substr(0, c);
            for (auto& ch : n) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            f.insert({n, std::string(edge::http::trim(std::string_view(l).substr(c + 1)))});
        }
        auto get = [&](const std::string& n) {
            auto it = f.find(n);
            return it == f.end() ? std::string() : it->second;
        };
        // Request body: Content-Length or chunked.
        std::string body;
        if (auto cl = get("content-length"); !cl.empty()) {
            size_t want = std::strtoull(cl.c_str(), nullptr, 10);
            while (buf.size() < want) {
                ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
                if (n <= 0) { ::close(fd); return; }
                buf.append(tmp, static_cast<size_t>(n));
            }
            body = buf.substr(0, want);
            buf.erase(0, want);
        } else if (edge::http::list_contains(get("transfer-encoding"), "chunked")) {
            for (;;) {
                size_t e;
                while ((e = buf.find("\r\n")) == std::string::npos) {
                    ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
                    if (n <= 0) { ::close(fd); return; }
                    buf.append(tmp, static_cast<size_t>(n));
                }
                size_t sz = std::strtoull(buf.substr(0, e).c_str(), nullptr, 16);
                while (buf.size() < e + 2 + sz + 2) {
                    ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
                    if (n <= 0) { ::close(fd); return; }
                    buf.append(tmp, static_cast<size_t>(n));
                }
                body.append(buf, e + 2, sz);
                buf.erase(0, e + 2 + sz + 2);
                if (sz == 0) break;
            }
        }
        std::string path = target.substr(0, target.find('?'));
        std::string query = target.find('?') == std::string::npos ? "" : target.substr(target.find('?') + 1);
        std::vector<std::pair<std::string, std::string>> q;
        for (size_t s = 0; s <= query.size() && !query.empty();) {
            size_t a = query.find('&', s);
            if (a == std::string::npos) a = query.size();
            std::string kv = query.substr(s, a - s);
            auto eq = kv.find('=');
            q.push_back({kv.substr(0, eq), eq == std::string::npos ? "" : url_decode(kv.substr(eq + 1))});
            s = a + 1;
        }
        auto qv = [&](const char* k) {
            for (auto& [a, b] : q)
                if (a == k) return b;
            return std::string();
        };
        int64_t now = std::time(nullptr);
        std::string resp_body, extra;
        int status = 200;
        bool chunked = false, close_conn = false;
        if (path == "/__count") {
            resp_body = std::to_string(total.load());
        } else if (path.rfind("/__hits/", 0) == 0) {
            std::lock_guard lk(mu);
            resp_body = std::to_string(hits[target.substr(7)]);
        } else if (path == "/__reset") {
            std::lock_guard lk(mu);
            hits.clear();
            total = 0;
            resp_body = "ok";
        } else if (path == "/__mode/500") {
            fail_mode = true;
            resp_body = "ok";
        } else if (path == "/__mode/ok") {
            fail_mode = false;
            resp_body = "ok";
        } else if (path == "/__echo") {
            resp_body = head + body;
        } else {
            int n;
            {
                std::lock_guard lk(mu);
                n = ++hits[target];
                total++;
            }
            if (auto d = qv("delay"); !d.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(d.c_str())));
            if (auto s = qv("status"); !s.empty()) status = std::atoi(s.c_str());
            if (fail_mode) status = 500;
            if (method == "PURGE") status = 405;
            if (auto v = qv("cc"); !v.empty()) extra += "Cache-Control: " + v + "\r\n";
            if (auto v = qv("cdn"); !v.empty()) extra += "CDN-Cache-Control: " + v + "\r\n";
            std::string etag = qv("etag");
            if (!etag.empty() && etag[0] != '"' && etag[0] != 'W') etag = "\"" + etag + "\"";
            if (!etag.empty()) extra += "ETag: " + etag + "\r\n";
            std::string lm;
            if (auto v = qv("lm"); !v.empty()) {
                lm = edge::http::format_date(started - std::atoll(v.c_str()));
                extra += "Last-Modified: " + lm + "\r\n";
            }
            if (auto v = qv("expires"); !v.empty()) extra += "Expires: " + edge::http::format_date(now + std::atoll(v.c_str())) + "\r\n";
            extra += "Date: " + edge::http::format_date(now + std::atoll(qv("date").c_str())) + "\r\n";
            if (auto v = qv("age"); !v.empty()) extra += "Age: " + v + "\r\n";
            if (auto v = qv("age1"); !v.empty() && n == 1) extra += "Age: " + v + "\r\n";  // first response only
            if (auto v = qv("vary"); !v.empty()) extra += "Vary: " + v + "\r\n";
            if (auto v = qv("loc"); !v.empty()) extra += "Location: " + v + "\r\n";
            for (auto& [k, v] : q)
                if (k == "h") extra += v + "\r\n";
            chunked = qv("chunked") == "1";
            close_conn = qv("close") == "1";
            if (auto v = qv("size"); !v.empty()) {
                size_t sz = std::strtoull(v.c_str(), nullptr, 10);
                resp_body.resize(sz);
                for (size_t i = 0; i < sz; i++) resp_body[i] = static_cast<char>('a' + (i % 26));
            } else if (method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE") {
                resp_body = method + " " + target + " #" + std::to_string(n) + " got " + std::to_string(body.size()) + " bytes: " + body + "\n";
            } else {
                resp_body = target + " #" + std::to_string(n) + "\n";
                if (auto vv = qv("vary"); !vv.empty()) {
                    std::string lname = vv;
                    for (auto& ch : lname) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
                    resp_body += "vary value: " + get(lname) + "\n";
                }
            }
            // Conditional requests.
            std::string inm = get("if-none-match"), ims = get("if-modified-since");
            if (status == 200 && !etag.empty() && !inm.empty() && edge::http::if_none_match_matches(inm, etag)) status = 304;
            else if (status == 200 && inm.empty() && !lm.empty() && !ims.empty()) {
                auto a = edge::http::parse_date(ims), b = edge::http::parse_date(lm);
                if (a && b && *b <= *a) status = 304;
            }
            if (status == 304) resp_body.clear();
        }
        std::string r = "HTTP/1.1 " + std::to_string(status) + " X\r\n" + extra;
        if (close_conn) r += "Connection: close\r\n";
        bool no_body = method == "HEAD" || status == 304 || status == 204;
        if (chunked) r += "Transfer-Encoding: chunked\r\n\r\n";
        else r += "Content-Length: " + std::to_string(resp_body.size()) + "\r\n\r\n";
        if (!no_body) {
            if (chunked) {
                for (size_t p = 0; p < resp_body.size(); p += 1000) {
                    size_t k = std::min<size_t>(1000, resp_body.size() - p);
                    char hx[32];
                    std::snprintf(hx, sizeof hx, "%zx\r\n", k);
                    r += hx + resp_body.substr(p, k) + "\r\n";
                }
                r += "0\r\n\r\n";
            } else {
                r += resp_body;
            }
        }
        if (!send_all(fd, r) || close_conn) {
            ::close(fd);
            return;
        }
    }
}
}  // namespace

int main(int argc, char** argv) {
    signal(SIGPIPE, SIG_IGN);
    int port = argc > 1 ? std::atoi(argv[1]) : 0;
    int ls = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(ls, 1024) != 0) {
        std::perror("cache-proxy-test-origin: bind");
        return 1;
    }
    socklen_t l = sizeof a;
    getsockname(ls, reinterpret_cast<sockaddr*>(&a), &l);
    std::printf("port %d\n", ntohs(a.sin_port));
    std::fflush(stdout);
    for (;;) {
        int fd = ::accept(ls, nullptr, nullptr);
        if (fd < 0) continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        std::thread(serve, fd).detach();
    }
}
