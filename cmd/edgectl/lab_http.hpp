// edgectl lab: a minimal HTTP/1.1 client whose sockets live in a lab namespace
// (created while this thread is in it), for the demo's requests. Every read is bounded.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace edgectl::lab {

struct HttpResponse {
    int status = 0;
    std::string head, body;
    std::string header(const std::string& name) const;  // "" when absent
};

class HttpConn {
public:
    HttpConn(const std::string& ns, const std::string& addr, uint16_t port, double timeout_s = 3);
    ~HttpConn();
    HttpConn(const HttpConn&) = delete;
    HttpConn& operator=(const HttpConn&) = delete;
    HttpConn(HttpConn&& o) noexcept;

    bool connected() const { return fd_ >= 0; }
    const std::string& error() const { return error_; }
    uint16_t local_port() const { return local_port_; }
    // One request on this (keep-alive) connection; nullopt (and error()) on failure.
    std::optional<HttpResponse> get(const std::string& path, double timeout_s = 3, const std::string& extra_headers = "");
    void set_host(const std::string& host) { host_ = host; }  // the Host header (default ADDR:PORT)

private:
    int fd_ = -1;
    uint16_t local_port_ = 0;
    std::string host_, error_, buf_;
};

// One request on a new connection.
std::optional<HttpResponse> http_get(const std::string& ns, const std::string& addr, uint16_t port, const std::string& path,
                                     double timeout_s = 3, std::string* error = nullptr);

}  // namespace edgectl::lab
