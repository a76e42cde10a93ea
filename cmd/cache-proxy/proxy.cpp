#include "proxy.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <thread>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>
#include <llhttp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "cli/error.hpp"
#include "http/cache.hpp"
#include "http/message.hpp"
#include "out/json.hpp"
#include "out/output.hpp"
#include "disk.hpp"
#include "store.hpp"
#include "tls.hpp"

namespace cache_proxy {

using namespace edge::http;
namespace {

int64_t mono_us() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}
int64_t wall_s() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return ts.tv_sec;
}

bool lc_equals(std::string_view a, std::string_view lower) { return iequals(a, lower); }

// ---------------------------------------------------------------------------------------------
// Shared state

struct Msg {
    uint64_t conn;
    bool stored;
};

class Worker;

class UpstreamPool {
public:
    void configure(const SockAddr& a, unsigned max_idle) {
        std::lock_guard lk(mu_);
        if (addr_.len != a.len || std::memcmp(&addr_.ss, &a.ss, a.len) != 0) {
            for (auto& i : idle_) ::close(i.fd);
            idle_.clear();
        }
        addr_ = a;
        max_idle_ = max_idle;
    }
    SockAddr addr() {
        std::lock_guard lk(mu_);
        return addr_;
    }
    // An idle connection that is still open, or -1.
    int take(int64_t now_s, unsigned idle_timeout) {
        for (;;) {
            int fd;
            int64_t since;
            {
                std::lock_guard lk(mu_);
                if (idle_.empty()) return -1;
                fd = idle_.back().fd;
                since = idle_.back().since;
                idle_.pop_back();
            }
            char c;
            ssize_t r = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && now_s - since < idle_timeout) return fd;
            ::close(fd);  // closed by the origin, unexpected bytes, or idle too long
        }
    }
    void give(int fd, int64_t now_s) {
        std::lock_guard lk(mu_);
        if (idle_.size() >= max_idle_) {
            ::close(fd);
            return;
        }
        idle_.push_back({fd, now_s});
    }
    size_t idle() {
        std::lock_guard lk(mu_);
        return idle_.size();
    }
    ~UpstreamPool() {
        for (auto& i : idle_) ::close(i.fd);
    }

private:
    struct Idle {
        int fd;
        int64_t since;
    };
    std::mutex mu_;
    std::vector<Idle> idle_;
    SockAddr addr_;
    unsigned max_idle_ = 256;
};

class RateLimiter {
public:
    // True if the client may go ahead.
    bool allow(const sockaddr_storage& ss, double rate, double burst, int64_t now_us) {
        Key k = key_of(ss);
        Shard& s = shards_[(k.hi * 31 + k.lo) % 16];
        std::lock_guard lk(s.mu);
        auto [it, fresh] = s.map.try_emplace(k, Bucket{burst, now_us});
        Bucket& b = it->second;
        if (!fresh) {
            b.tokens = std::min(burst, b.tokens + rate * static_cast<double>(now_us - b.last_us) / 1e6);
            b.last_us = now_us;
        }
        if (b.tokens < 1.0) return false;
        b.tokens -= 1.0;
        return true;
    }
    void prune(int64_t now_us) {
        for (auto& s : shards_) {
            std::lock_guard lk(s.mu);
            if (s.map.size() < 4096) continue;
            for (auto it = s.map.begin(); it != s.map.end();)
                it = now_us - it->second.last_us > 60000000 ? s.map.erase(it) : std::next(it);
        }
    }

private:
    struct Key {
        uint64_t hi = 0, lo = 0;
        bool operator==(const Key&) const = default;
    };
    struct KeyHash {
        size_t operator()(const Key& k) const { return std::hash<uint64_t>{}(k.hi ^ (k.lo * 0x9e3779b97f4a7c15ULL)); }
    };
    struct Bucket {
        double tokens;
        int64_t last_us;
    };
    struct Shard {
        std::mutex mu;
        std::unordered_map<Key, Bucket, KeyHash> map;
    };
    static Key key_of(const sockaddr_storage& ss) {
        Key k;
        if (ss.ss_family == AF_INET) {
            k.lo = reinterpret_cast<const sockaddr_in&>(ss).sin_addr.s_addr;
        } else if (ss.ss_family == AF_INET6) {
            std::memcpy(&k.hi, &reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr, 8);
            std::memcpy(&k.lo, reinterpret_cast<const char*>(&reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr) + 8, 8);
        }
        return k;
    }
    Shard shards_[16];
};

struct Shared {
    std::mutex cfg_mu;
    std::shared_ptr<const Settings> cfg;
    std::atomic<uint64_t> cfg_gen{0};
    std::atomic<bool> draining{false};
    Store store;
    std::unique_ptr<DiskTier> disk;  // --disk-cache (fixed at start)
    UpstreamPool pool;
    RateLimiter limiter;
    std::vector<std::unique_ptr<Worker>> workers;
    std::vector<std::unique_ptr<Counters>> counters;
    std::atomic<int> log_fd{-1};
    int64_t started = 0;
    explicit Shared(std::shared_ptr<const Settings> s) : cfg(std::move(s)), store(cfg->cache_size) {}
    std::shared_ptr<const Settings> settings() {
        std::lock_guard lk(cfg_mu);
        return cfg;
    }
};

// ---------------------------------------------------------------------------------------------
// Connections

struct Handler {
    virtual void on_event(uint32_t ev) = 0;
    virtual ~Handler() = default;
};

constexpr unsigned k_max_headers = 1000;

struct Field {
    std::string_view name, value;
};

struct Request {
    std::string_view method, url;
    Field* h = nullptr;
    unsigned n = 0, cap = 0;
    unsigned major = 1, minor = 1;
    bool keep_alive = true, complete = false, in_headers = false, chunked = false, has_body = false;
    uint64_t content_length = 0;
    std::string_view get(std::string_view lname) const {
        for (unsigned i = 0; i < n; i++)
            if (h[i].name.size() == lname.size() && lc_equals(h[i].name, lname)) return h[i].value;
        return {};
    }
};

class Client;
class Fetch;
void admin_request(Client& c);

// Hop-by-hop fields (RFC 9110 §7.6.1) and the ones a proxy re-frames itself.
bool hop_by_hop(std::string_view n) {
    switch (n.size()) {
    case 2: return lc_equals(n, "te");
    case 7: return lc_equals(n, "trailer") || lc_equals(n, "upgrade");
    case 10: return lc_equals(n, "connection") || lc_equals(n, "keep-alive");
    case 14: return lc_equals(n, "content-length");
    case 16: return lc_equals(n, "proxy-connection");
    case 17: return lc_equals(n, "transfer-encoding");
    default: return false;
    }
}

class Worker {
public:
    Worker(Shared& sh, unsigned index) : sh_(sh), index_(index), ctr_(*sh.counters[index]) {}
    ~Worker();
    void setup(const std::vector<int>& listen_fds, const std::vector<int>& tls_fds, int admin_fd);
    void run();
    void post(Msg m) {
        {
            std::lock_guard lk(inbox_mu_);
            inbox_.push_back(m);
        }
        wake();
    }
    struct Handoff {
        int fd;
        bool tls;
        sockaddr_storage ss;
    };
    void hand_off(const Handoff& h) {
        {
            std::lock_guard lk(inbox_mu_);
            handoffs_.push_back(h);
        }
        wake();
    }
    bool handoffs_pending() {
        std::lock_guard lk(inbox_mu_);
        return !handoffs_.empty();
    }
    void wake() {
        uint64_t one = 1;
        ssize_t r = ::write(efd_, &one, sizeof one);
        (void)r;
    }

    Shared& sh_;
    unsigned index_;
    Counters& ctr_;
    const Settings* cfg_ = nullptr;
    std::shared_ptr<const Settings> cfg_hold_;
    uint64_t cfg_gen_ = ~0ULL;
    int ep_ = -1, tfd_ = -1, efd_ = -1;
    std::vector<int> listeners_, tls_listeners_;
    int admin_fd_ = -1;
    int64_t now_s_ = 0;
    uint64_t next_id_ = 1;
    std::unordered_map<uint64_t, Client*> clients_;
    std::vector<Fetch*> fetches_;
    std::vector<Handler*> graveyard_;
    std::mutex inbox_mu_;
    std::vector<Msg> inbox_;
    std::vector<Msg> inbox_work_;
    std::vector<Handoff> handoffs_, handoffs_work_;  // connections accepted by another worker
    std::string log_;
    std::vector<char> scratch_ = std::vector<char>(256 * 1024);
    std::vector<char> tls_out_ = std::vector<char>(256 * 1024);  // plaintext gathered for one SSL_write
    std::string tls_ct_;  // records encrypted for one send()
    bool draining_ = false;
    int64_t drain_deadline_ = 0;
    llhttp_settings_t req_settings_{}, resp_settings_{};

    void add(int fd, Handler* h, uint32_t ev) {
        epoll_event e{};
        e.events = ev;
        e.data.ptr = h;
        if (epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &e) != 0) edge::failure("epoll_ctl: {}", std::strerror(errno));
    }
    void del(int fd) { epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr); }
    void accept_all(int lfd, bool admin, bool tls = false);
    void adopt(int fd, const sockaddr_storage& ss, bool admin, bool tls);
    void tick();
    void drain_inbox();
    void refresh_config();
    void start_drain();
    void flush_log();
    void remove_fetch(Fetch* f);
    void notify(const std::string& key, bool stored) {
        for (Waiter w : sh_.store.release(key)) sh_.workers[w.worker]->post({w.conn, stored});
    }
};

struct FdHandler : Handler {
    std::function<void(uint32_t)> f;
    explicit FdHandler(std::function<void(uint32_t)> fn) : f(std::move(fn)) {}
    void on_event(uint32_t ev) override { f(ev); }
};

// ---------------------------------------------------------------------------------------------
// Upstream fetch: one request to the origin on a pooled or new connection.

class Fetch : public Handler {
public:
    Worker& w;
    Client* client = nullptr;
    int fd = -1;
    bool reused = false, connecting = false, retried = false, done = false, failed_ = false;
    std::string req;  // serialized request (headers + body framing as it streams)
    size_t req_pos = 0;
    bool req_complete = false;  // the whole request (body included) is in req
    bool req_trimmed = false;   // bytes before req_pos were dropped: no retry possible
    llhttp_t parser;
    std::string head;  // the response header block (raw)
    bool head_done = false, got_bytes = false, msg_done = false, skip_body = false, discard = false;
    std::vector<Field> fields;
    std::string reason;
    int status = 0;
    // Cache side
    std::string key;
    bool leader = false, storable_req = false, head_req = false;
    ObjectPtr stale;  // for revalidation / stale-if-error
    FieldLookup* vary_src = nullptr;
    std::vector<std::pair<std::string, std::string>> vary_values;
    ResponseFacts facts;
    bool capture = false;
    std::string body;
    int64_t request_time = 0, deadline = 0, start_us = 0;
    bool paused = false;
    // Pass-through body spliced origin -> pipe -> client (no copy through user space).
    bool splicing = false;
    int pipe_r = -1, pipe_w = -1;
    uint64_t splice_left = 0;  // body bytes still to take from the origin
    size_t in_pipe = 0;         // bytes in the pipe not yet sent to the client
    size_t pipe_cap = 0;

    explicit Fetch(Worker& wk) : w(wk) { llhttp_init(&parser, HTTP_RESPONSE, &w.resp_settings_); parser.data = this; }
    ~Fetch() override {
        if (fd >= 0) ::close(fd);
        if (pipe_r >= 0) ::close(pipe_r);
        if (pipe_w >= 0) ::close(pipe_w);
    }
    bool can_splice() const;
    void start_splice();
    void do_splice();
    void start();
    void on_event(uint32_t ev) override;
    void write_req();
    void read_resp();
    void fail(bool timeout);
    void finish();
    void detach_client();
    void resume() {
        if (paused) {
            paused = false;
            read_resp();
        }
    }
    // llhttp
    int on_header_field(const char* at, size_t n) {
        fields.push_back({{at, n}, {}});
        return 0;
    }
    int on_header_value(const char* at, size_t n) {
        if (!fields.empty()) {
            auto& v = fields.back().value;
            v = v.empty() ? std::string_view(at, n) : std::string_view(v.data(), static_cast<size_t>(at + n - v.data()));
        }
        return 0;
    }
    int on_status(const char* at, size_t n) {
        reason.append(at, n);
        return 0;
    }
    int on_headers_complete();
    int on_body(const char* at, size_t n);
    int on_message_complete() {
        msg_done = true;
        return HPE_PAUSED;
    }
};

// ---------------------------------------------------------------------------------------------
// Client connection

class Client : public Handler {
public:
    Worker& w;
    int fd;
    uint64_t id;
    bool admin;
    sockaddr_storage peer{};
    char peer_ip[INET6_ADDRSTRLEN] = "?";
    std::unique_ptr<char[]> buf;
    size_t cap = 0, start = 0, end = 0, scan = 0;
    llhttp_t parser;
    Request req;
    std::vector<Field> fields_storage;
    bool readable = true, writable = true, closed = false;
    bool active = false;      // a request is being served
    bool waiting = false;     // queued behind a coalesced fetch
    bool body_left = false;   // request body still arriving
    bool body_paused = false;
    bool response_complete = false, close_after = false, no_coalesce = false, peer_eof = false;
    bool stream_chunked = false, head_only = false, lingering = false;
    bool rdhup = false;  // the client's FIN has arrived: a short read does not mean drained
    bool need_proxy_header = false;  // PROXY protocol v2 expected first
    SSL* ssl = nullptr;              // TLS listener: the session (nullptr on plain ones)
    bool handshaking = false;
    bool tls_batch = false;   // the write BIO appends records to the worker's tls_ct_
    std::string tls_pend;     // ciphertext the socket did not take yet (goes out first)
    size_t tls_pend_pos = 0;
    std::shared_ptr<const cache_proxy::tls::Context> tls_ctx;  // keeps SNI callbacks valid across reloads
    size_t consumed = 0;  // end of the current request's bytes in buf
    // Output: iovecs (zero-copy from a stored object) then a stream buffer.
    iovec iov[4];
    int niov = 0, iov_i = 0;
    int file_fd = -1;  // then a sendfile segment of a stored body (held by `hold`)
    off_t file_off = 0;
    size_t file_left = 0;
    ObjectPtr hold;
    std::string dyn;
    std::string stream;
    size_t stream_pos = 0;
    Fetch* fetch = nullptr;
    int64_t deadline = 0;
    // Per request, for the access log.
    std::string key;
    std::string log_method, log_target;
    int64_t t0 = 0, upstream_us = -1;
    int64_t accepted_us = mono_us();
    uint64_t served = 0;  // requests answered on this connection
    int status = 0;
    uint64_t bytes = 0;
    const char* cache = "BYPASS";

    Client(Worker& wk, int f, uint64_t i, bool adm) : w(wk), fd(f), id(i), admin(adm) {
        cap = std::max<size_t>(16384, w.cfg_->max_header_size + 4096);
        buf.reset(new char[cap]);
        fields_storage.resize(w.cfg_->max_headers + 1);
        req.h = fields_storage.data();
        req.cap = static_cast<unsigned>(fields_storage.size());
        llhttp_init(&parser, HTTP_REQUEST, &w.req_settings_);
        parser.data = this;
        deadline = w.now_s_ + w.cfg_->client_timeout;
    }
    ~Client() override {
        if (ssl) SSL_free(ssl);
        if (fd >= 0) ::close(fd);
    }

    void linger_read() {
        char tmp[4096];
        for (;;) {
            ssize_t n = ::read(fd, tmp, sizeof tmp);
            if (n > 0) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
            close();
            return;
        }
    }
    void on_event(uint32_t ev) override {
        if (closed) return;
        if (lingering) {
            linger_read();
            return;
        }
        if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) readable = true;
        if (ev & (EPOLLRDHUP | EPOLLHUP)) rdhup = true;
        if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) writable = true;
        pump();
    }
    void close() {
        if (closed) return;
        closed = true;
        if (fetch) fetch->detach_client();
        fetch = nullptr;
        w.del(fd);
        if (ssl) {
            SSL_free(ssl);
            ssl = nullptr;
        }
        ::close(fd);
        fd = -1;
        w.clients_.erase(id);
        w.ctr_.active.fetch_sub(1, std::memory_order_relaxed);
        w.graveyard_.push_back(this);
    }
    bool has_plain_output() const { return iov_i < niov || file_left || stream_pos < stream.size(); }
    bool has_output() const { return has_plain_output() || tls_pend_pos < tls_pend.size(); }
    size_t stream_backlog() const { return stream.size() - stream_pos; }

    void pump();
    bool flush();
    bool flush_tls();
    void consume_output(size_t n);
    bool handshake();
    int read_proxy_header_raw();
    ssize_t io_read(char* p, size_t n);
    bool read_more();
    int try_request();
    int parse_proxy_header();
    void dispatch();
    void handle_cacheable(const CacheControl& cc);
    void end_request();
    void feed_body();

    // Responses
    void simple(int code, std::string_view text, std::string_view extra_headers = {}, bool close_conn = false,
                std::string_view body = {});
    void serve(const ObjectPtr& o, const char* status_word, int64_t age);
    void start_stream(std::string h, bool chunked, bool head) {
        stream.append(h);
        stream_chunked = chunked;
        head_only = head;
        pump_out();
    }
    void stream_body(const char* p, size_t n) {
        if (head_only || n == 0) return;
        if (stream_chunked) {
            char hex[24];
            int k = std::snprintf(hex, sizeof hex, "%zx\r\n", n);
            stream.append(hex, static_cast<size_t>(k));
        }
        stream.append(p, n);
        bytes += n;
        if (stream_chunked) stream.append("\r\n");
    }
    void stream_end() {
        if (stream_chunked && !head_only) stream.append("0\r\n\r\n");
        response_complete = true;
        fetch = nullptr;
        pump();
    }
    void pump_out() {
        if (has_output()) flush();
    }
    void wake_from_wait(bool stored) {
        if (!waiting || closed) return;
        waiting = false;
        if (!stored) no_coalesce = true;
        dispatch();
        pump();
    }
    std::string_view field(std::string_view lname) const { return req.get(lname); }
    bool keep_alive() const { return !close_after && req.keep_alive && !w.draining_; }
    void conn_headers(std::string& out) const {
        if (!keep_alive()) out.append("Connection: close\r\n");
        else if (req.major == 1 && req.minor == 0) out.append("Connection: keep-alive\r\n");
    }
    void build_upstream_request(std::string& out, const Object* validators, bool strip_conditionals) const;
};

// ---------------------------------------------------------------------------------------------
// llhttp callbacks

Client* C(llhttp_t* p) { return static_cast<Client*>(p->data); }
Fetch* F(llhttp_t* p) { return static_cast<Fetch*>(p->data); }

int req_on_message_begin(llhttp_t* p) {
    Client* c = C(p);
    c->req.n = 0;
    c->req.url = {};
    c->req.complete = false;
    c->req.in_headers = true;
    return 0;
}
int req_on_url(llhttp_t* p, const char* at, size_t n) {
    auto& u = C(p)->req.url;
    u = u.empty() ? std::string_view(at, n) : std::string_view(u.data(), static_cast<size_t>(at + n - u.data()));
    return 0;
}
int req_on_header_field(llhttp_t* p, const char* at, size_t n) {
    Request& r = C(p)->req;
    if (r.n >= r.cap) return HPE_USER;
    r.h[r.n++] = {{at, n}, {}};
    return 0;
}
int req_on_header_value(llhttp_t* p, const char* at, size_t n) {
    Request& r = C(p)->req;
    if (r.n == 0) return 0;
    auto& v = r.h[r.n - 1].value;
    v = v.empty() ? std::string_view(at, n) : std::string_view(v.data(), static_cast<size_t>(at + n - v.data()));
    return 0;
}
int req_on_headers_complete(llhttp_t* p) {
    Request& r = C(p)->req;
    r.in_headers = false;
    r.method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
    r.major = p->http_major;
    r.minor = p->http_minor;
    r.keep_alive = llhttp_should_keep_alive(p) != 0;
    r.chunked = (p->flags & F_CHUNKED) != 0;
    r.has_body = r.chunked || ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0);
    r.content_length = p->content_length;
    for (unsigned i = 0; i < r.n; i++) r.h[i].value = trim(r.h[i].value);
    return 0;
}
int req_on_body(llhttp_t* p, const char* at, size_t n) {
    Client* c = C(p);
    if (c->fetch) {
        Fetch* f = c->fetch;
        if (c->req.chunked) {
            char hex[24];
            int k = std::snprintf(hex, sizeof hex, "%zx\r\n", n);
            f->req.append(hex, static_cast<size_t>(k));
            f->req.append(at, n);
            f->req.append("\r\n");
        } else {
            f->req.append(at, n);
        }
    }
    return 0;
}
int req_on_message_complete(llhttp_t* p) {
    Client* c = C(p);
    c->req.complete = true;
    if (c->body_left) {
        c->body_left = false;
        if (c->fetch) {
            if (c->req.chunked) c->fetch->req.append("0\r\n\r\n");
            c->fetch->req_complete = true;
        }
    }
    return HPE_PAUSED;  // one message at a time: pipelined requests wait their turn
}

int resp_on_status(llhttp_t* p, const char* at, size_t n) { return F(p)->on_status(at, n); }
int resp_on_header_field(llhttp_t* p, const char* at, size_t n) { return F(p)->on_header_field(at, n); }
int resp_on_header_value(llhttp_t* p, const char* at, size_t n) { return F(p)->on_header_value(at, n); }
int resp_on_headers_complete(llhttp_t* p) { return F(p)->on_headers_complete(); }
int resp_on_body(llhttp_t* p, const char* at, size_t n) { return F(p)->on_body(at, n); }
int resp_on_message_complete(llhttp_t* p) { return F(p)->on_message_complete(); }

// ---------------------------------------------------------------------------------------------
// Client implementation

void Client::pump() {
    if (ssl && need_proxy_header && read_proxy_header_raw() <= 0) return;
    if (handshaking && !handshake()) return;
    for (int guard = 0; guard < 10000 && !closed; guard++) {
        if (has_output()) {
            if (!flush()) return;
            if (fetch && fetch->paused && stream_backlog() < (256u << 10)) fetch->resume();
            if (closed) return;
        }
        if (fetch && fetch->splicing) {
            if (!writable) return;  // the next EPOLLOUT continues it
            Fetch* f = fetch;
            f->do_splice();
            if (closed) return;
            if (fetch == f) return;  // still splicing: waiting for the origin or the client
            continue;
        }
        if (active && response_complete && !has_output()) {
            end_request();
            continue;
        }
        if (!active) {
            // Draining: idle connections close; one accepted just before (its request may
            // still be on the way) gets a second to send it.
            if (w.draining_ && start == end && (served > 0 || mono_us() - accepted_us > 1000000)) {
                close();
                return;
            }
            int r = try_request();
            if (r < 0 || closed) return;
            if (r > 0) continue;
            if (!read_more()) return;
            continue;
        }
        if (body_left) {
            if (fetch && fetch->req.size() - fetch->req_pos > (1u << 20)) {
                body_paused = true;
                return;
            }
            body_paused = false;
            if (start < end) {
                feed_body();
                continue;
            }
            if (!read_more()) return;
            continue;
        }
        if (peer_eof && !has_output() && waiting) {
            close();
            return;
        }
        return;
    }
}

// TLS: the PROXY header precedes the ClientHello, so it is read raw (peeked, then exactly
// its length consumed). 1 done, 0 wait, -1 closed.
int Client::read_proxy_header_raw() {
    ssize_t n = ::recv(fd, buf.get(), cap, MSG_PEEK);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        close();
        return -1;
    }
    if (n < 0) {
        readable = false;
        return 0;
    }
    start = scan = 0;
    end = static_cast<size_t>(n);
    int r = parse_proxy_header();
    if (r > 0) {
        size_t used = start;
        while (used) {  // the peeked bytes are there: this read does not block
            ssize_t k = ::read(fd, buf.get(), used);
            if (k <= 0) {
                close();
                return -1;
            }
            used -= static_cast<size_t>(k);
        }
    }
    if (!closed) start = end = scan = 0;
    return r;
}

bool Client::handshake() {
    ERR_clear_error();
    int r = SSL_do_handshake(ssl);
    if (r == 1) {
        handshaking = false;
        w.ctr_.tls_handshakes.fetch_add(1, std::memory_order_relaxed);
        if (SSL_session_reused(ssl)) w.ctr_.tls_resumed.fetch_add(1, std::memory_order_relaxed);
        deadline = w.now_s_ + w.cfg_->client_timeout;
        return true;
    }
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        readable = false;
        return false;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        writable = false;
        return false;
    }
    ERR_clear_error();
    w.ctr_.tls_failed.fetch_add(1, std::memory_order_relaxed);  // garbage, no shared version/cipher/ALPN, reset
    close();
    return false;
}

ssize_t Client::io_read(char* p, size_t n) {
    if (!ssl) return ::read(fd, p, n);
    ERR_clear_error();
    int r = SSL_read(ssl, p, static_cast<int>(std::min<size_t>(n, 1u << 30)));
    if (r > 0) return r;
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    ERR_clear_error();
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0)) return 0;  // close_notify or EOF
    errno = EPROTO;
    return -1;
}

// `n` bytes of output were sent: advance over the iovecs, the file segment, the stream.
void Client::consume_output(size_t n) {
    w.ctr_.bytes_out.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
    size_t left = n;
    while (left && iov_i < niov) {
        if (left >= iov[iov_i].iov_len) {
            left -= iov[iov_i].iov_len;
            iov_i++;
        } else {
            iov[iov_i].iov_base = static_cast<char*>(iov[iov_i].iov_base) + left;
            iov[iov_i].iov_len -= left;
            left = 0;
        }
    }
    if (left && file_left) {
        size_t k = std::min(left, file_left);
        file_left -= k;
        file_off += static_cast<off_t>(k);
        left -= k;
        if (!file_left) file_fd = -1;
    }
    stream_pos += left;
}

// TLS output: gather the next plaintext (iovecs, then the file segment, then the stream) into
// one buffer and encrypt it as records into the worker's ciphertext buffer (the write BIO
// only appends while `tls_batch` is set), then send up to 256 KiB of records with one send():
// one syscall per 16 records instead of one per record. What the socket does not take waits
// in `tls_pend` (sent before anything else). SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER allows the
// gathered plaintext to come from a new address each call.
constexpr size_t k_tls_record = 16384;  // the largest TLS plaintext record

bool Client::flush_tls() {
    char* b = w.tls_out_.data();
    const size_t bcap = w.tls_out_.size();
    std::string& ct = w.tls_ct_;
    for (;;) {
        while (tls_pend_pos < tls_pend.size()) {
            ssize_t n = ::send(fd, tls_pend.data() + tls_pend_pos, tls_pend.size() - tls_pend_pos, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    writable = false;
                    return false;
                }
                close();
                return false;
            }
            tls_pend_pos += static_cast<size_t>(n);
        }
        if (tls_pend.capacity() > (1u << 20)) std::string().swap(tls_pend);
        tls_pend.clear();
        tls_pend_pos = 0;
        if (!has_plain_output()) break;
        ct.clear();
        tls_batch = true;  // records go to `ct`
        const size_t batch = bcap;  // ciphertext per send(): 16 records
        while (has_plain_output() && ct.size() < batch) {
            const char* src;
            size_t len = 0;
            if (iov_i < niov && iov[iov_i].iov_len >= k_tls_record) {  // a stored body: encrypt from it
                src = static_cast<const char*>(iov[iov_i].iov_base);
                len = std::min<size_t>(iov[iov_i].iov_len, batch);
            } else if (iov_i == niov && !file_left) {  // only the stream: write from it directly
                src = stream.data() + stream_pos;
                len = std::min<size_t>(stream.size() - stream_pos, bcap);
            } else {
                bool full = false;  // a source did not fit: nothing after it may be taken (byte order)
                for (int i = iov_i; i < niov && !full; i++) {
                    // A large body after the head: only what fills the first record is copied.
                    size_t room = i > iov_i && iov[i].iov_len >= k_tls_record ? (len < k_tls_record ? k_tls_record - len : 0) : bcap - len;
                    size_t k = std::min(room, iov[i].iov_len);
                    std::memcpy(b + len, iov[i].iov_base, k);
                    len += k;
                    full = k < iov[i].iov_len;
                }
                if (!full && file_left) {
                    ssize_t k = ::pread(file_fd, b + len, std::min(bcap - len, file_left), file_off);
                    if (k <= 0) {
                        tls_batch = false;
                        close();
                        return false;
                    }
                    len += static_cast<size_t>(k);
                    full = static_cast<size_t>(k) < file_left;
                }
                if (!full && stream_pos < stream.size()) {
                    size_t k = std::min(bcap - len, stream.size() - stream_pos);
                    std::memcpy(b + len, stream.data() + stream_pos, k);
                    len += k;
                }
                src = b;
            }
            // Partial-write mode returns after each record: write the whole gathered buffer
            // before gathering again (nothing is appended to the output meanwhile).
            for (size_t off = 0; off < len;) {
                ERR_clear_error();
                int r = SSL_write(ssl, src + off, static_cast<int>(len - off));
                if (r <= 0) {  // the batching BIO never blocks: a real error
                    tls_batch = false;
                    ERR_clear_error();
                    close();
                    return false;
                }
                off += static_cast<size_t>(r);
                consume_output(static_cast<size_t>(r));
            }
            if (stream_pos == stream.size() && stream_pos) {
                stream.clear();
                stream_pos = 0;
            }
        }
        tls_batch = false;
        size_t off = 0;
        while (off < ct.size()) {
            ssize_t n = ::send(fd, ct.data() + off, ct.size() - off, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                close();
                return false;
            }
            off += static_cast<size_t>(n);
        }
        if (off < ct.size()) {
            tls_pend.assign(ct.data() + off, ct.size() - off);
            writable = false;
            if (iov_i == niov && !file_left) {
                niov = iov_i = 0;
                hold.reset();
            }
            return false;
        }
    }
    if (iov_i == niov && !file_left) {
        niov = iov_i = 0;
        hold.reset();
    }
    return true;
}

// The write BIO of a TLS client: appends to the batch while flush_tls() encrypts, queues
// behind unsent ciphertext, else writes to the socket (handshake flights, alerts).
int tls_bio_write(BIO* bio, const char* d, int n) {
    auto* c = static_cast<Client*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    if (n <= 0) return 0;
    if (c->tls_batch) {
        c->w.tls_ct_.append(d, static_cast<size_t>(n));
        return n;
    }
    if (c->tls_pend_pos < c->tls_pend.size()) {
        c->tls_pend.append(d, static_cast<size_t>(n));
        return n;
    }
    ssize_t r = ::send(c->fd, d, static_cast<size_t>(n), MSG_NOSIGNAL);
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_write(bio);
        return -1;
    }
    return static_cast<int>(r);
}
long tls_bio_ctrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

BIO_METHOD* tls_bio_method() {
    static BIO_METHOD* m = [] {
        BIO_METHOD* x = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "cache-proxy batch");
        if (x) {
            BIO_meth_set_write(x, tls_bio_write);
            BIO_meth_set_ctrl(x, tls_bio_ctrl);
        }
        return x;
    }();
    return m;
}

// Replaces the socket write BIO of `c`'s SSL with the batching one (false: out of memory).
bool install_tls_bio(Client* c) {
    BIO_METHOD* m = tls_bio_method();
    BIO* b = m ? BIO_new(m) : nullptr;
    if (!b) return false;
    BIO_set_data(b, c);
    BIO_set_init(b, 1);
    SSL_set0_wbio(c->ssl, b);
    return true;
}

bool Client::flush() {
    if (ssl) return flush_tls();
    while (has_output()) {
        ssize_t n;
        bool to_file = false;
        if (iov_i < niov) {
            msghdr mh{};
            mh.msg_iov = iov + iov_i;
            mh.msg_iovlen = static_cast<size_t>(niov - iov_i);
            n = ::sendmsg(fd, &mh, MSG_NOSIGNAL | (file_left ? MSG_MORE : 0));
        } else if (file_left) {
            n = ::sendfile(fd, file_fd, &file_off, std::min<size_t>(file_left, 4u << 20));
            to_file = true;
        } else {
            n = ::send(fd, stream.data() + stream_pos, stream.size() - stream_pos, MSG_NOSIGNAL);
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                writable = false;
                return false;
            }
            close();
            return false;
        }
        if (to_file) {
            w.ctr_.bytes_out.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
            file_left -= static_cast<size_t>(n);  // sendfile advanced file_off
            if (!file_left) file_fd = -1;
            continue;
        }
        consume_output(static_cast<size_t>(n));  // sendmsg covers the iovecs only, send the stream only
        if (stream_pos == stream.size() && stream_pos) {
            stream.clear();
            stream_pos = 0;
        }
    }
    if (iov_i == niov && !file_left) {
        niov = iov_i = 0;
        hold.reset();
    }
    return true;
}

bool Client::read_more() {
    if (!readable || peer_eof) return false;
    if (start == end) start = end = 0;
    if (!active && start > 0 && end == cap) {  // compact before a new request (no spans are live)
        std::memmove(buf.get(), buf.get() + start, end - start);
        scan -= start;
        end -= start;
        start = 0;
    }
    if (active && body_left && start == end) start = end = scan = 0;
    if (end == cap) {
        if (!active) {  // header block larger than the limit
            simple(431, "Request Header Fields Too Large", {}, true);
            w.ctr_.bad_requests.fetch_add(1, std::memory_order_relaxed);
            return false;
        }
        return false;
    }
    ssize_t n = io_read(buf.get() + end, cap - end);
    if (n > 0) {
        // Drained: the next edge will tell (not with TLS: a read returns one record at most).
        if (!ssl && !rdhup && static_cast<size_t>(n) < cap - end) readable = false;
        end += static_cast<size_t>(n);
        deadline = w.now_s_ + w.cfg_->client_timeout;
        return true;
    }
    if (n == 0) {
        peer_eof = true;
        readable = false;
        if (!active || body_left || waiting) close();
        return false;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        readable = false;
        return false;
    }
    if (errno == EINTR) return true;
    close();
    return false;
}

// Parses the next request from the buffer: 1 started, 0 needs more bytes, -1 closed.
// PROXY protocol v2 (haproxy.org/download/2.9/doc/proxy-protocol.txt): 1 parsed, 0 need
// more bytes, -1 invalid (connection closed).
int Client::parse_proxy_header() {
    static const unsigned char sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
    size_t have = end - start;
    const unsigned char* p = reinterpret_cast<const unsigned char*>(buf.get() + start);
    if (std::memcmp(p, sig, std::min<size_t>(have, 12)) != 0 || (have >= 13 && (p[12] & 0xf0) != 0x20)) {
        w.ctr_.bad_requests.fetch_add(1, std::memory_order_relaxed);
        close();  // not a PROXY v2 header: nothing here speaks HTTP to this client
        return -1;
    }
    if (have < 16) return 0;
    size_t len = (static_cast<size_t>(p[14]) << 8) | p[15];
    if (have < 16 + len) return 0;
    unsigned cmd = p[12] & 0x0f, fam = p[13];
    if (cmd == 1) {  // PROXY: the original client; LOCAL (0) keeps the real peer
        if (fam == 0x11 && len >= 12) {
            auto& a = reinterpret_cast<sockaddr_in&>(peer);
            peer = {};
            a.sin_family = AF_INET;
            std::memcpy(&a.sin_addr, p + 16, 4);
            std::memcpy(&a.sin_port, p + 24, 2);
            inet_ntop(AF_INET, &a.sin_addr, peer_ip, sizeof peer_ip);
        } else if (fam == 0x21 && len >= 36) {
            auto& a = reinterpret_cast<sockaddr_in6&>(peer);
            peer = {};
            a.sin6_family = AF_INET6;
            std::memcpy(&a.sin6_addr, p + 16, 16);
            std::memcpy(&a.sin6_port, p + 48, 2);
            inet_ntop(AF_INET6, &a.sin6_addr, peer_ip, sizeof peer_ip);
        }
    }
    start += 16 + len;
    scan = start;
    need_proxy_header = false;
    return 1;
}

int Client::try_request() {
    if (need_proxy_header) {
        if (start == end) return 0;
        int r = parse_proxy_header();
        if (r <= 0) return r;
    }
    // Skip empty lines before a request (RFC 9112 §2.2).
    while (start + 1 < end && buf[start] == '\r' && buf[start + 1] == '\n') start += 2;
    if (scan < start) scan = start;
    if (start == end) return 0;
    std::string_view data(buf.get() + start, end - start);
    size_t from = scan - start;
    // Bare LF anywhere in the header block: reject before waiting for a CRLFCRLF that never comes.
    size_t blk = header_block_end(data, from);
    size_t limit = blk ? blk : data.size();
    for (size_t i = from; i < limit; i++) {
        if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r')) {
            w.ctr_.bad_requests.fetch_add(1, std::memory_order_relaxed);
            simple(400, "Bad Request", {}, true, "bare LF in request header\n");
            t0 = mono_us();
            return closed ? -1 : 1;
        }
    }
    if (!blk) {
        scan = end;
        if (data.size() >= w.cfg_->max_header_size) {
            w.ctr_.bad_requests.fetch_add(1, std::memory_order_relaxed);
            simple(431, "Request Header Fields Too Large", {}, true);
            return 1;
        }
        return 0;
    }
    if (blk > w.cfg_->max_header_size) {
        w.ctr_.bad_requests.fetch_add(1, std::memory_order_relaxed);
        simple(431, "Request Header Fields Too Large", {}, true);
        return 1;
    }
    std::string_view block = data.substr(0, blk);
    t0 = mono_us();
    active = true;
    response_complete = false;
    status = 0;
    bytes = 0;
    upstream_us = -1;
    cache = "BYPASS";
    log_method.clear();
    log_target.clear();
    consumed = start + blk;
    auto fr = check_framing(block, true, w.cfg_->max_headers);
    if (fr.result != Framing::ok) {
        w.ctr_.bad_requests.fetch_add(1, std::memory_order_relaxed);
        std::string msg = fmt::format("{}\n", describe(fr.result));
        simple(400, "Bad Request", {}, true, msg);
        return 1;
    }
    llhttp_errno_t e = llhttp_execute(&parser, block.data(), block.size());
    if (e == HPE_PAUSED) {
        llhttp_resume(&parser);
    } else if (e != HPE_OK || req.in_headers) {
        w.ctr_.bad_requests.fetch_add(1, std::memory_order_relaxed);
        std::string msg = fmt::format("{}\n", e == HPE_OK ? "incomplete request" : llhttp_errno_name(e));
        simple(400, "Bad Request", {}, true, msg);
        return 1;
    }
    start = consumed;
    scan = consumed;
    body_left = req.has_body && !req.complete;
    dispatch();
    return closed ? -1 : 1;
}

void Client::feed_body() {
    size_t n = end - start;
    llhttp_errno_t e = llhttp_execute(&parser, buf.get() + start, n);
    size_t used = n;
    if (e == HPE_PAUSED) {
        used = static_cast<size_t>(llhttp_get_error_pos(&parser) - (buf.get() + start));
        llhttp_resume(&parser);
    } else if (e != HPE_OK) {
        // Malformed body framing: the stream cannot be trusted any more.
        w.ctr_.bad_requests.fetch_add(1, std::memory_order_relaxed);
        close_after = true;
        body_left = false;
        if (fetch) {
            fetch->detach_client();
            fetch = nullptr;
        }
        if (!has_output() && status == 0) simple(400, "Bad Request", {}, true, "bad request body\n");
        else close();
        return;
    }
    start += used;
    scan = start;
    consumed = start;
    if (fetch) fetch->write_req();
}

void Client::simple(int code, std::string_view text, std::string_view extra, bool close_conn, std::string_view body) {
    if (close_conn) close_after = true;
    if (!active) {  // errors before a request started (431 on an endless header)
        active = true;
        t0 = mono_us();
        consumed = end;
    }
    status = code;
    stream.append(fmt::format("HTTP/1.1 {} {}\r\n", code, text));
    stream.append(extra);
    stream.append(fmt::format("Content-Length: {}\r\nContent-Type: text/plain\r\n", body.size()));
    if (close_conn || !keep_alive()) stream.append("Connection: close\r\n");
    stream.append("\r\n");
    if (!(req.method == "HEAD")) stream.append(body);
    bytes += body.size();
    response_complete = true;
    if (close_conn) body_left = false;
}

void Client::serve(const ObjectPtr& o, const char* word, int64_t age) {
    cache = word;
    bool head = req.method == "HEAD";
    // Conditional requests against the stored validators (RFC 9110 §13.2).
    std::string_view inm = field("if-none-match"), ims = field("if-modified-since");
    bool not_modified = false;
    if (o->status == 200) {
        if (!inm.empty()) not_modified = if_none_match_matches(inm, o->etag);
        else if (!ims.empty() && !o->last_modified.empty()) {
            auto t = parse_date(ims);
            auto lm = parse_date(o->last_modified);
            not_modified = t && lm && *lm <= *t;
        }
    }
    dyn.clear();
    fmt::format_to(std::back_inserter(dyn), "Age: {}\r\nX-Cache-Status: {}\r\n", age, word);
    conn_headers(dyn);
    dyn.append("\r\n");
    hold = o;
    niov = iov_i = 0;
    auto add = [&](const void* p, size_t n) {
        if (n) iov[niov++] = {const_cast<void*>(p), n};
    };
    auto add_body = [&](const Body& b, uint64_t off, uint64_t n) {
        if (b.fd >= 0 && ssl && b.map) {  // TLS encrypts from memory: the mapped memfd, no pread copy
            add(b.map + off, n);
        } else if (b.fd >= 0) {
            file_fd = b.fd;
            file_off = static_cast<off_t>(off);
            file_left = n;
        } else {
            add(b.data.data() + off, n);
        }
    };
    if (not_modified) {
        status = 304;
        stream.append("HTTP/1.1 304 Not Modified\r\n");
        std::string_view lines(o->head.data() + o->lines_begin, o->lines_end - o->lines_begin);
        size_t pos = 0;
        while (pos < lines.size()) {
            size_t eol = lines.find("\r\n", pos);
            std::string_view line = lines.substr(pos, eol - pos + 2);
            pos = eol + 2;
            std::string_view name = line.substr(0, line.find(':'));
            if (lc_equals(name, "etag") || lc_equals(name, "cache-control") || lc_equals(name, "expires") ||
                lc_equals(name, "date") || lc_equals(name, "vary") || lc_equals(name, "content-location") ||
                lc_equals(name, "last-modified") || lc_equals(name, "cdn-cache-control"))
                stream.append(line);
        }
        stream.append(dyn);
        dyn.clear();
        hold.reset();
        response_complete = true;
        return;
    }
    uint64_t size = o->body ? o->body->size : 0;
    ByteRange r;
    RangeResult rr = RangeResult::none;
    std::string_view range = field("range");
    if (!range.empty() && o->status == 200 && req.method == "GET") {
        rr = parse_range(range, size, r);
        std::string_view if_range = field("if-range");
        if (!if_range.empty() && rr != RangeResult::none) {
            // If-Range with a strong ETag or a date: only a match keeps the range.
            bool match = (if_range.front() == '"' && if_range == o->etag) || (if_range == o->last_modified && !o->last_modified.empty());
            if (!match) rr = RangeResult::ignore;
        }
    }
    if (rr == RangeResult::ok || rr == RangeResult::unsatisfiable) {
        bool ok = rr == RangeResult::ok;
        std::string h = ok ? "HTTP/1.1 206 Partial Content\r\n" : "HTTP/1.1 416 Range Not Satisfiable\r\n";
        h.append(o->head, o->lines_begin, o->lines_end - o->lines_begin);
        if (ok)
            fmt::format_to(std::back_inserter(h), "Content-Range: bytes {}-{}/{}\r\nContent-Length: {}\r\n", r.first, r.last,
                           size, r.last - r.first + 1);
        else
            fmt::format_to(std::back_inserter(h), "Content-Range: bytes */{}\r\nContent-Length: 0\r\n", size);
        h.append(dyn);
        dyn = std::move(h);
        add(dyn.data(), dyn.size());
        status = ok ? 206 : 416;
        if (ok) {
            add_body(*o->body, r.first, r.last - r.first + 1);
            bytes = r.last - r.first + 1;
        }
        response_complete = true;
        return;
    }
    status = o->status;
    add(o->head.data(), o->head.size());
    add(dyn.data(), dyn.size());
    if (!head && size) {
        add_body(*o->body, 0, size);
        bytes = size;
    }
    response_complete = true;
}

void Client::end_request() {
    // Stats and access log.
    auto& c = w.ctr_;
    c.requests.fetch_add(1, std::memory_order_relaxed);
    switch (cache[0]) {
    case 'H': c.hit.fetch_add(1, std::memory_order_relaxed); break;
    case 'M': c.miss.fetch_add(1, std::memory_order_relaxed); break;
    case 'S': c.stale.fetch_add(1, std::memory_order_relaxed); break;
    case 'R': c.revalidated.fetch_add(1, std::memory_order_relaxed); break;
    default: c.bypass.fetch_add(1, std::memory_order_relaxed); break;
    }
    if (status >= 500) c.s5xx.fetch_add(1, std::memory_order_relaxed);
    else if (status >= 400) c.s4xx.fetch_add(1, std::memory_order_relaxed);
    else if (status >= 300) c.s3xx.fetch_add(1, std::memory_order_relaxed);
    else c.s2xx.fetch_add(1, std::memory_order_relaxed);
    if (w.sh_.log_fd.load(std::memory_order_relaxed) >= 0) {
        std::string& l = w.log_;
        int64_t us = mono_us() - t0;
        l.append("{\"type\":\"access\",\"ts\":");
        fmt::format_to(std::back_inserter(l), "{},\"client\":", wall_s());
        edge::out::append_json_string(l, peer_ip);
        l.append(",\"method\":");
        edge::out::append_json_string(l, log_method.empty() ? std::string_view(req.method) : std::string_view(log_method));
        l.append(",\"target\":");
        edge::out::append_json_string(l, log_target.empty() ? req.url : std::string_view(log_target));
        fmt::format_to(std::back_inserter(l), ",\"status\":{},\"bytes\":{},\"cache\":\"{}\",\"upstream_us\":{},\"total_us\":{}}}\n",
                       status, bytes, cache, upstream_us, us);
        if (l.size() > 65536) w.flush_log();
    }
    active = false;
    served++;
    waiting = false;
    response_complete = false;
    no_coalesce = false;
    hold.reset();
    if (body_left || !keep_alive()) {
        // Unread request body or "Connection: close": the stream ends here. Lingering
        // close: send FIN, then read and drop what the client still sends, so that the
        // kernel does not answer unread bytes with a RST that would destroy the response.
        if (peer_eof) {
            close();
            return;
        }
        if (ssl) {
            ERR_clear_error();
            SSL_shutdown(ssl);  // close_notify (best effort: the socket is non-blocking)
            ERR_clear_error();
        }
        ::shutdown(fd, SHUT_WR);
        lingering = true;
        deadline = w.now_s_ + 2;
        linger_read();
        return;
    }
    start = consumed;
    scan = start;
    if (start == end) start = end = scan = 0;
    deadline = w.now_s_ + w.cfg_->client_timeout;
    if (peer_eof && start == end) close();
}

void Client::build_upstream_request(std::string& out, const Object* validators, bool strip_conditionals) const {
    out.clear();
    out.append(req.method);
    out.push_back(' ');
    out.append(req.url);
    out.append(" HTTP/1.1\r\n");
    std::string_view connection = field("connection");
    bool host = false;
    std::string_view xff;
    for (unsigned i = 0; i < req.n; i++) {
        std::string_view n = req.h[i].name, v = req.h[i].value;
        if (hop_by_hop(n) || lc_equals(n, "expect") || lc_equals(n, "proxy-authorization")) continue;
        if (!connection.empty() && list_contains(connection, n)) continue;
        if (lc_equals(n, "x-forwarded-for")) {
            xff = v;
            continue;
        }
        if (strip_conditionals && (lc_equals(n, "if-none-match") || lc_equals(n, "if-modified-since") ||
                                   lc_equals(n, "range") || lc_equals(n, "if-range") || lc_equals(n, "if-match") ||
                                   lc_equals(n, "if-unmodified-since")))
            continue;
        if (lc_equals(n, "host")) host = true;
        out.append(n);
        out.append(": ");
        out.append(v);
        out.append("\r\n");
    }
    if (!host) fmt::format_to(std::back_inserter(out), "Host: {}\r\n", w.cfg_->origin_host);
    out.append(req.minor == 0 ? "Via: 1.0 cache-proxy\r\n" : "Via: 1.1 cache-proxy\r\n");  // RFC 9110 §7.6.3
    out.append("X-Forwarded-For: ");
    if (!xff.empty()) {
        out.append(xff);
        out.append(", ");
    }
    out.append(peer_ip);
    out.append("\r\n");
    if (ssl) out.append("X-Forwarded-Proto: https\r\n");
    if (validators) {
        if (!validators->etag.empty()) fmt::format_to(std::back_inserter(out), "If-None-Match: {}\r\n", validators->etag);
        if (!validators->last_modified.empty())
            fmt::format_to(std::back_inserter(out), "If-Modified-Since: {}\r\n", validators->last_modified);
    }
    if (req.has_body) {
        if (req.chunked) out.append("Transfer-Encoding: chunked\r\n");
        else fmt::format_to(std::back_inserter(out), "Content-Length: {}\r\n", req.content_length);
    }
    out.append("\r\n");
}

bool unsafe_method(std::string_view m) {
    return !(m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "TRACE");
}

void Client::dispatch() {
    if (w.sh_.log_fd.load(std::memory_order_relaxed) >= 0 && body_left) {
        log_method.assign(req.method);  // the spans die when the body streams through the buffer
        log_target.assign(req.url);
    }
    const Settings& cfg = *w.cfg_;
    if (req.major != 1) {
        simple(505, "HTTP Version Not Supported", {}, true);
        return;
    }
    std::string_view host = field("host");
    if (req.minor >= 1 && host.empty()) {
        simple(400, "Bad Request", {}, true, "missing Host\n");
        return;
    }
    if (admin) {
        // Admin listener: metrics, stats, purge.
        admin_request(*this);
        return;
    }
    if (cfg.rate_limit > 0 && !w.sh_.limiter.allow(peer, cfg.rate_limit, cfg.rate_burst, mono_us())) {
        w.ctr_.rate_limited.fetch_add(1, std::memory_order_relaxed);
        simple(429, "Too Many Requests", "Retry-After: 1\r\n", body_left, "rate limit exceeded\n");
        return;
    }
    std::string_view expect = field("expect");
    if (!expect.empty()) {
        if (!iequals(expect, "100-continue")) {
            simple(417, "Expectation Failed", {}, body_left);
            return;
        }
        if (body_left && start == end) stream.append("HTTP/1.1 100 Continue\r\n\r\n");
    }
    // The cache key: scheme-less host (lower case) + request target.
    key.clear();
    std::string_view url = req.url;
    if (url.size() > 7 && iequals(url.substr(0, 7), "http://")) {  // absolute form
        auto slash = url.find('/', 7);
        host = url.substr(7, slash == std::string_view::npos ? std::string_view::npos : slash - 7);
        url = slash == std::string_view::npos ? std::string_view("/") : url.substr(slash);
    }
    for (char ch : host) key.push_back(static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch));
    key.append(url);

    bool get_or_head = req.method == "GET" || req.method == "HEAD";
    if (get_or_head && !req.has_body) {
        CacheControl cc;
        std::string_view ccv = field("cache-control");
        if (!ccv.empty()) cc.parse(ccv);
        else if (list_contains(field("pragma"), "no-cache")) cc.no_cache = true;
        handle_cacheable(cc);
        return;
    }
    // Everything else goes to the origin; unsafe methods invalidate (RFC 9111 §4.4).
    cache = "BYPASS";
    auto* f = new Fetch(w);
    f->client = this;
    fetch = f;
    f->key = key;
    build_upstream_request(f->req, nullptr, false);
    f->req_complete = !body_left;
    f->head_req = req.method == "HEAD";
    if (unsafe_method(req.method)) f->storable_req = false;
    f->start();
}

void Client::handle_cacheable(const CacheControl& cc) {
    Store& st = w.sh_.store;
    FieldLookup lookup = [this](std::string_view n) { return field(n); };
    ObjectPtr o = st.lookup(key, lookup);
    const Settings& cfg = *w.cfg_;
    ObjectPtr stale;
    if (o) {
        Verdict v = evaluate(o->facts, cc, w.now_s_, cfg.policy);
        switch (v.use) {
        case Use::fresh: serve(o, "HIT", v.age); return;
        case Use::stale_allowed: serve(o, "STALE", v.age); return;
        case Use::stale_revalidate:
            serve(o, "STALE", v.age);
            if (st.claim(key, {w.index_, 0})) {  // refresh in the background, once
                w.ctr_.background_revalidations.fetch_add(1, std::memory_order_relaxed);
                auto* f = new Fetch(w);
                f->key = key;
                f->leader = true;
                f->storable_req = true;
                f->stale = o;
                build_upstream_request(f->req, o.get(), true);
                f->req_complete = true;
                for (auto& n : o->vary) f->vary_values.push_back(n);
                f->start();
            }
            return;
        case Use::revalidate: stale = o; break;
        }
    }
    if (cc.only_if_cached) {
        simple(504, "Gateway Timeout", {}, false, "not in cache (only-if-cached)\n");
        cache = "MISS";
        return;
    }
    bool head = req.method == "HEAD";
    bool leader = false;
    if (!head && !no_coalesce) {
        if (!st.claim(key, {w.index_, id})) {
            waiting = true;
            w.ctr_.coalesced.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        leader = true;
    }
    auto* f = new Fetch(w);
    f->client = this;
    fetch = f;
    f->key = key;
    f->leader = leader;
    f->storable_req = !head;
    f->head_req = head;
    f->stale = stale;
    build_upstream_request(f->req, stale.get(), !head);
    f->req_complete = true;
    cache = "MISS";
    f->start();
}

// ---------------------------------------------------------------------------------------------
// Fetch implementation

void Worker::remove_fetch(Fetch* f) {
    auto it = std::find(fetches_.begin(), fetches_.end(), f);
    if (it != fetches_.end()) {
        *it = fetches_.back();
        fetches_.pop_back();
    }
    graveyard_.push_back(f);
}

void Fetch::start() {
    w.fetches_.push_back(this);
    start_us = mono_us();
    request_time = w.now_s_;
    deadline = w.now_s_ + w.cfg_->upstream_timeout;
    w.ctr_.upstream_requests.fetch_add(1, std::memory_order_relaxed);
    fd = retried ? -1 : w.sh_.pool.take(w.now_s_, 60);
    if (fd >= 0) {
        reused = true;
        w.ctr_.upstream_reused.fetch_add(1, std::memory_order_relaxed);
        w.add(fd, this, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
        write_req();
        return;
    }
    reused = false;
    SockAddr a = w.sh_.pool.addr();
    fd = ::socket(a.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail(false);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    w.ctr_.upstream_new.fetch_add(1, std::memory_order_relaxed);
    int r = ::connect(fd, reinterpret_cast<const sockaddr*>(&a.ss), a.len);
    if (r < 0 && errno != EINPROGRESS) {
        fail(false);
        return;
    }
    connecting = r < 0;
    w.add(fd, this, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
    if (!connecting) write_req();
}

void Fetch::on_event(uint32_t ev) {
    if (done) return;
    if (connecting) {
        if (ev & (EPOLLERR | EPOLLHUP)) {
            fail(false);
            return;
        }
        if (ev & EPOLLOUT) {
            int err = 0;
            socklen_t l = sizeof err;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
            if (err) {
                fail(false);
                return;
            }
            connecting = false;
        } else {
            return;
        }
    }
    if (ev & EPOLLOUT) write_req();
    if (done) return;
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) read_resp();
}

void Fetch::write_req() {
    if (connecting || done || fd < 0) return;
    while (req_pos < req.size()) {
        ssize_t n = ::send(fd, req.data() + req_pos, req.size() - req_pos, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            fail(false);
            return;
        }
        req_pos += static_cast<size_t>(n);
    }
    if (!req_complete && req_pos > (64u << 10)) {  // streamed body: drop what was sent
        req.erase(0, req_pos);
        req_pos = 0;
        req_trimmed = true;
    }
    if (client && client->body_paused && req.size() - req_pos < (256u << 10)) {
        client->body_paused = false;
        client->pump();
    }
}

void Fetch::read_resp() {
    if (done || connecting || fd < 0) return;
    if (splicing) {
        do_splice();
        return;
    }
    char* s = w.scratch_.data();
    for (;;) {
        if (client && client->stream_backlog() > (1u << 20)) {
            paused = true;  // the client is slow: stop reading the origin until it drains
            return;
        }
        ssize_t n = ::read(fd, s, w.scratch_.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            fail(false);
            return;
        }
        if (n == 0) {
            if (head_done && !msg_done) {
                llhttp_errno_t e = llhttp_finish(&parser);
                if (e == HPE_OK || e == HPE_PAUSED) msg_done = true;
            }
            if (msg_done) {
                ::close(fd);
                w.del(fd);
                fd = -1;
                finish();
            } else {
                fail(false);
            }
            return;
        }
        got_bytes = true;
        deadline = w.now_s_ + w.cfg_->upstream_timeout;  // an idle timeout once the origin answers
        const char* p = s;
        size_t len = static_cast<size_t>(n);
        while (len && !done) {
            if (!head_done) {
                size_t old = head.size();
                head.append(p, len);
                size_t blk = header_block_end(head, old);
                if (!blk) {
                    if (head.size() > 65536) {
                        fail(false);
                        return;
                    }
                    len = 0;
                    break;
                }
                size_t extra = head.size() - blk;
                head.resize(blk);
                p += len - extra;
                len = extra;
                auto fr = check_framing(head, false);
                if (fr.result != Framing::ok) {  // response smuggling / garbage from the origin
                    fail(false);
                    return;
                }
                fields.clear();
                reason.clear();
                llhttp_errno_t e = llhttp_execute(&parser, head.data(), head.size());
                if (e == HPE_PAUSED) {
                    llhttp_resume(&parser);
                } else if (e != HPE_OK) {
                    fail(false);
                    return;
                }
                if (status >= 100 && status < 200) {  // interim response: skip it
                    head.clear();
                    head_done = false;
                    msg_done = false;
                    status = 0;
                    continue;
                }
                if (done) return;
                if (msg_done) {
                    finish();
                    return;
                }
                continue;
            }
            llhttp_errno_t e = llhttp_execute(&parser, p, len);
            if (e == HPE_PAUSED) {
                size_t used = static_cast<size_t>(llhttp_get_error_pos(&parser) - p);
                llhttp_resume(&parser);
                if (used < len) {
                    // Bytes after the response: the connection is out of sync; don't reuse it.
                    w.del(fd);
                    ::close(fd);
                    fd = -1;
                }
                len = 0;
            } else if (e != HPE_OK) {
                fail(false);
                return;
            } else {
                len = 0;
            }
            if (msg_done) {
                finish();
                return;
            }
        }
        if (done) return;
        if (client) {
            client->pump_out();
            if (done) return;
        }
        if (can_splice()) {
            start_splice();
            return;
        }
        if (static_cast<size_t>(n) < w.scratch_.size()) return;  // drained
    }
}

// A pass-through body can go through a pipe with splice(2) when nothing has to look at it:
// not stored, Content-Length framed (no re-chunking), a plain (not TLS) client, and large.
bool Fetch::can_splice() const {
    const Settings& cfg = *w.cfg_;
    return cfg.splice_min && client && !client->ssl && !client->closed && head_done && !msg_done && !capture &&
           !discard && !skip_body && !client->head_only && !client->stream_chunked && fd >= 0 &&
           (parser.flags & F_CONTENT_LENGTH) && !(parser.flags & F_CHUNKED) && parser.content_length >= cfg.splice_min;
}

void Fetch::start_splice() {
    int p[2];
    if (::pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) return;  // no pipe: keep copying
    pipe_r = p[0];
    pipe_w = p[1];
    ::fcntl(pipe_w, F_SETPIPE_SZ, 1 << 20);  // best effort (limited by pipe-max-size)
    int cap = ::fcntl(pipe_w, F_GETPIPE_SZ);
    pipe_cap = cap > 0 ? static_cast<size_t>(cap) : 65536;
    splicing = true;
    splice_left = parser.content_length;  // llhttp counts down what is left of the body
    w.ctr_.spliced_responses.fetch_add(1, std::memory_order_relaxed);
    do_splice();
}

// Both directions in one loop, so the pipe keeps filling from the origin while the client
// is slow and keeps draining while the origin is: wait only when neither side moves.
void Fetch::do_splice() {
    while (!done) {
        Client* c = client;
        if (!c) return;  // detach_client() ended it
        if (c->has_output()) {  // the head (and body bytes read with it) go first
            if (!c->flush() || done) return;
        }
        bool moved = false;
        if (splice_left && in_pipe < pipe_cap) {
            ssize_t n = ::splice(fd, nullptr, pipe_w, nullptr, std::min<uint64_t>(splice_left, pipe_cap - in_pipe),
                                 SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n > 0) {
                splice_left -= static_cast<uint64_t>(n);
                in_pipe += static_cast<size_t>(n);
                deadline = w.now_s_ + w.cfg_->upstream_timeout;
                moved = true;
            } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                fail(false);  // EOF or error before the end of the body: the client is cut off
                return;
            }
        }
        if (in_pipe) {
            ssize_t n = ::splice(pipe_r, nullptr, c->fd, nullptr, in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE);
            if (n > 0) {
                in_pipe -= static_cast<size_t>(n);
                c->bytes += static_cast<uint64_t>(n);
                w.ctr_.bytes_out.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
                w.ctr_.spliced_bytes.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
                moved = true;
            } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                c->writable = false;  // the client's EPOLLOUT resumes (Client::pump)
            } else if (!(n < 0 && errno == EINTR)) {
                c->close();  // the client went away: detach_client() stops the fetch
                return;
            }
        }
        if (splice_left == 0 && in_pipe == 0) {
            msg_done = true;
            splicing = false;
            finish();
            return;
        }
        if (!moved) return;  // the origin's EPOLLIN or the client's EPOLLOUT resumes
    }
}

int Fetch::on_headers_complete() {
    head_done = true;
    status = parser.status_code;
    if (status < 200) return 0;
    for (auto& f : fields) f.value = trim(f.value);
    if (client) client->upstream_us = mono_us() - start_us;
    facts = ResponseFacts{};
    facts.status = status;
    facts.request_time = request_time;
    facts.response_time = w.now_s_;
    for (auto& f : fields) facts.add_header(f.name, f.value);
    skip_body = head_req;
    const Settings& cfg = *w.cfg_;

    // Revalidation answered 304: refresh the stored headers and serve the stored body.
    if (stale && status == 304) {
        auto o = std::make_shared<Object>();
        o->body = stale->body;
        o->status = stale->status;
        // Merge: fields in the 304 replace stored fields of the same name.
        std::vector<std::pair<std::string_view, std::string_view>> merged;
        std::string_view lines(stale->head.data() + stale->lines_begin, stale->lines_end - stale->lines_begin);
        size_t pos = 0;
        while (pos < lines.size()) {
            size_t eol = lines.find("\r\n", pos);
            std::string_view line = lines.substr(pos, eol - pos);
            pos = eol + 2;
            size_t colon = line.find(':');
            std::string_view n = line.substr(0, colon), v = trim(line.substr(colon + 1));
            bool replaced = false;
            for (auto& f : fields)
                if (iequals(f.name, n)) replaced = true;
            if (!replaced) merged.push_back({n, v});
        }
        for (auto& f : fields)
            if (!hop_by_hop(f.name) && !lc_equals(f.name, "age")) merged.push_back({f.name, f.value});
        std::string_view status_line(stale->head.data(), stale->lines_begin);
        o->head.append(status_line);
        o->lines_begin = o->head.size();
        o->facts = ResponseFacts{};
        o->facts.status = o->status;
        o->facts.request_time = request_time;
        o->facts.response_time = w.now_s_;
        for (auto& [n, v] : merged) {
            o->head.append(n);
            o->head.append(": ");
            o->head.append(v);
            o->head.append("\r\n");
            o->facts.add_header(n, v);
            if (lc_equals(n, "etag")) o->etag = std::string(v);
            if (lc_equals(n, "last-modified")) o->last_modified = std::string(v);
        }
        o->lines_end = o->head.size();
        fmt::format_to(std::back_inserter(o->head), "Content-Length: {}\r\n", o->body ? o->body->size : 0);
        o->vary = stale->vary;
        ObjectPtr op = o;
        bool stored = false;
        if (storable("GET", {}, false, o->facts, cfg.policy) == NoStore::storable) stored = w.sh_.store.insert(key, op);
        else w.sh_.store.remove(key);
        if (leader) {
            leader = false;
            w.notify(key, stored);
        }
        if (client) {
            Client* c = client;
            client = nullptr;
            c->fetch = nullptr;
            c->serve(op, "REVALIDATED", current_age(op->facts, w.now_s_));
            c->pump();
        }
        discard = true;
        return 1;  // 304 has no body
    }
    // The origin failed and a stale copy may stand in (RFC 5861 stale-if-error).
    if (stale && status >= 500 && client) {
        CacheControl rcc;
        std::string_view ccv = client->field("cache-control");
        if (!ccv.empty()) rcc.parse(ccv);
        if (stale_if_error_ok(stale->facts, rcc, w.now_s_, cfg.policy)) {
            Client* c = client;
            client = nullptr;
            c->fetch = nullptr;
            c->serve(stale, "STALE", current_age(stale->facts, w.now_s_));
            c->pump();
            discard = true;
            return skip_body ? 1 : 0;
        }
    }
    // Decide whether to keep a copy.
    if (storable_req) {
        bool auth = client && !client->field("authorization").empty();
        CacheControl rcc;
        if (client) {
            std::string_view ccv = client->field("cache-control");
            if (!ccv.empty()) rcc.parse(ccv);
        }
        capture = storable("GET", rcc, auth, facts, cfg.policy) == NoStore::storable;
        if (capture && (parser.flags & F_CONTENT_LENGTH) && parser.content_length > cfg.max_object_size) capture = false;
        if (capture) {
            if (parser.flags & F_CONTENT_LENGTH) body.reserve(parser.content_length);
            // Vary: remember the request's values of the named fields.
            vary_values.clear();
            for (auto& f : fields) {
                if (!lc_equals(f.name, "vary")) continue;
                for_each_list_element(f.value, [&](std::string_view n) {
                    std::string ln(n);
                    for (auto& ch : ln) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
                    std::string v = client ? std::string(client->field(ln)) : std::string();
                    if (!client && stale)
                        for (auto& [sn, sv] : stale->vary)
                            if (sn == ln) v = sv;
                    vary_values.push_back({ln, v});
                    return true;
                });
            }
        }
    }
    if (!client) return skip_body ? 1 : 0;
    // Response head for the client.
    std::string h;
    h.reserve(head.size() + 128);
    fmt::format_to(std::back_inserter(h), "HTTP/1.1 {} {}\r\n", status, reason);
    std::string_view connection;
    for (auto& f : fields)
        if (lc_equals(f.name, "connection")) connection = f.value;
    for (auto& f : fields) {
        if (hop_by_hop(f.name)) continue;
        if (!connection.empty() && list_contains(connection, f.name)) continue;
        h.append(f.name);
        h.append(": ");
        h.append(f.value);
        h.append("\r\n");
    }
    bool no_body = skip_body || status == 204 || status == 304;
    bool has_cl = (parser.flags & F_CONTENT_LENGTH) != 0;
    bool chunked = false;
    Client* c = client;
    if (has_cl) fmt::format_to(std::back_inserter(h), "Content-Length: {}\r\n", parser.content_length);
    else if (!no_body) {
        if (c->req.minor >= 1) {
            h.append("Transfer-Encoding: chunked\r\n");
            chunked = true;
        } else {
            c->close_after = true;  // HTTP/1.0 client: the end of the body is the end of the connection
        }
    }
    h.append("Via: 1.1 cache-proxy\r\n");
    fmt::format_to(std::back_inserter(h), "X-Cache-Status: {}\r\n", c->cache);
    c->conn_headers(h);
    h.append("\r\n");
    c->status = status;
    c->start_stream(std::move(h), chunked, no_body);
    return skip_body ? 1 : 0;
}

int Fetch::on_body(const char* at, size_t n) {
    if (discard) return 0;
    if (capture) {
        if (body.size() + n > w.cfg_->max_object_size) {
            capture = false;
            std::string().swap(body);
        } else {
            body.append(at, n);
        }
    }
    if (client) client->stream_body(at, n);
    return 0;
}

void Fetch::detach_client() {
    client = nullptr;
    if (done) return;
    // Keep going only if the response is worth storing and the request was complete.
    if ((capture || (leader && !head_done)) && req_complete) return;
    if (fd >= 0) {
        w.del(fd);
        ::close(fd);
        fd = -1;
    }
    done = true;
    if (leader) w.notify(key, false);
    w.remove_fetch(this);
}

void Fetch::fail(bool timeout) {
    if (done) return;
    w.ctr_.upstream_errors.fetch_add(1, std::memory_order_relaxed);
    if (fd >= 0) {
        w.del(fd);
        ::close(fd);
        fd = -1;
    }
    // A reused connection the origin had closed: retry once on a fresh one.
    if (reused && !got_bytes && !retried && !req_trimmed && !timeout) {
        retried = true;
        w.ctr_.upstream_retries.fetch_add(1, std::memory_order_relaxed);
        req_pos = 0;
        connecting = false;
        auto it = std::find(w.fetches_.begin(), w.fetches_.end(), this);
        if (it != w.fetches_.end()) w.fetches_.erase(it);
        w.ctr_.upstream_requests.fetch_sub(1, std::memory_order_relaxed);
        start();
        return;
    }
    done = true;
    if (leader) w.notify(key, false);
    if (client) {
        Client* c = client;
        client = nullptr;
        c->fetch = nullptr;
        CacheControl rcc;
        std::string_view ccv = c->body_left ? std::string_view() : c->field("cache-control");
        if (!ccv.empty()) rcc.parse(ccv);
        if (c->status == 0 && stale && stale_if_error_ok(stale->facts, rcc, w.now_s_, w.cfg_->policy)) {
            c->serve(stale, "STALE", current_age(stale->facts, w.now_s_));
        } else if (c->status == 0 && !c->has_output()) {
            if (timeout) c->simple(504, "Gateway Timeout", {}, c->body_left, "origin timed out\n");
            else c->simple(502, "Bad Gateway", {}, c->body_left, "origin unreachable or invalid response\n");
        } else {
            c->close_after = true;  // headers already sent: truncate
            c->close();
            w.remove_fetch(this);
            return;
        }
        c->pump();
    }
    w.remove_fetch(this);
}

void Fetch::finish() {
    if (done) return;
    done = true;
    // The connection goes back to the shared pool if it can carry another request.
    if (fd >= 0) {
        w.del(fd);
        if (llhttp_should_keep_alive(&parser) && req_pos == req.size() && req_complete) w.sh_.pool.give(fd, w.now_s_);
        else ::close(fd);
        fd = -1;
    }
    bool stored = false;
    if (capture && !discard) {
        auto o = std::make_shared<Object>();
        o->status = status;
        o->facts = facts;
        fmt::format_to(std::back_inserter(o->head), "HTTP/1.1 {} {}\r\n", status, reason);
        o->lines_begin = o->head.size();
        std::string_view connection;
        for (auto& f : fields)
            if (lc_equals(f.name, "connection")) connection = f.value;
        for (auto& f : fields) {
            if (hop_by_hop(f.name) || lc_equals(f.name, "age")) continue;
            if (!connection.empty() && list_contains(connection, f.name)) continue;
            o->head.append(f.name);
            o->head.append(": ");
            o->head.append(f.value);
            o->head.append("\r\n");
            if (lc_equals(f.name, "etag")) o->etag = std::string(f.value);
            if (lc_equals(f.name, "last-modified")) o->last_modified = std::string(f.value);
        }
        o->head.append("Via: 1.1 cache-proxy\r\n");
        o->lines_end = o->head.size();
        fmt::format_to(std::back_inserter(o->head), "Content-Length: {}\r\n", body.size());
        o->body = make_body(std::move(body), w.cfg_->sendfile_min);
        o->vary = std::move(vary_values);
        stored = w.sh_.store.insert(key, o);
    } else if (storable_req && !discard && status >= 200 && !stale) {
        // Not storable: nothing to do. A stale entry that was refetched and is no longer
        // storable is dropped below.
    }
    if (stale && !stored && !discard && status >= 200 && status < 500) w.sh_.store.remove(key);
    // Invalidation after unsafe methods with a non-error response (RFC 9111 §4.4).
    if (client && unsafe_method(client->log_method.empty() ? client->req.method : std::string_view(client->log_method)) &&
        status >= 200 && status < 400) {
        std::string_view host_end = std::string_view(key).substr(0, key.find('/'));
        int n = w.sh_.store.remove(key) ? 1 : 0;
        for (auto& f : fields) {
            if (!(lc_equals(f.name, "location") || lc_equals(f.name, "content-location"))) continue;
            std::string k;
            std::string_view v = f.value;
            if (!v.empty() && v[0] == '/') k = std::string(host_end) + std::string(v);
            else if (v.size() > 7 && iequals(v.substr(0, 7), "http://")) {
                auto rest = v.substr(7);
                auto slash = rest.find('/');
                std::string h(rest.substr(0, slash));
                for (auto& ch : h) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
                if (h != host_end) continue;  // another host: must not invalidate
                k = h + std::string(slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash));
            } else {
                continue;
            }
            n += w.sh_.store.remove(k) ? 1 : 0;
        }
        w.ctr_.invalidations.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
    }
    if (leader) w.notify(key, stored);
    if (client) {
        Client* c = client;
        client = nullptr;
        if (!discard) c->stream_end();
    }
    w.remove_fetch(this);
}

// ---------------------------------------------------------------------------------------------
// Admin listener: Prometheus metrics, JSON stats, PURGE.

std::string metrics_text(Shared& sh) {
    Counters t;
    auto add = [](std::atomic<uint64_t>& a, const std::atomic<uint64_t>& b) { a.fetch_add(b.load(std::memory_order_relaxed)); };
    for (auto& c : sh.counters) {
        add(t.requests, c->requests); add(t.hit, c->hit); add(t.miss, c->miss); add(t.stale, c->stale);
        add(t.revalidated, c->revalidated); add(t.bypass, c->bypass); add(t.s2xx, c->s2xx); add(t.s3xx, c->s3xx);
        add(t.s4xx, c->s4xx); add(t.s5xx, c->s5xx); add(t.bytes_out, c->bytes_out);
        add(t.upstream_requests, c->upstream_requests); add(t.upstream_new, c->upstream_new);
        add(t.upstream_reused, c->upstream_reused); add(t.upstream_errors, c->upstream_errors);
        add(t.upstream_retries, c->upstream_retries); add(t.rate_limited, c->rate_limited);
        add(t.bad_requests, c->bad_requests); add(t.coalesced, c->coalesced); add(t.accepted, c->accepted);
        add(t.active, c->active); add(t.purged, c->purged); add(t.handed_off, c->handed_off); add(t.background_revalidations, c->background_revalidations);
        add(t.invalidations, c->invalidations);
        add(t.tls_handshakes, c->tls_handshakes); add(t.tls_resumed, c->tls_resumed); add(t.tls_failed, c->tls_failed);
        add(t.spliced_responses, c->spliced_responses); add(t.spliced_bytes, c->spliced_bytes);
    }
    std::string m;
    auto out = std::back_inserter(m);
    auto v = [](const std::atomic<uint64_t>& a) { return a.load(); };
    fmt::format_to(out, "# HELP cache_proxy_requests_total Requests answered, by cache status.\n# TYPE cache_proxy_requests_total counter\n");
    fmt::format_to(out, "cache_proxy_requests_total{{cache=\"hit\"}} {}\n", v(t.hit));
    fmt::format_to(out, "cache_proxy_requests_total{{cache=\"miss\"}} {}\n", v(t.miss));
    fmt::format_to(out, "cache_proxy_requests_total{{cache=\"stale\"}} {}\n", v(t.stale));
    fmt::format_to(out, "cache_proxy_requests_total{{cache=\"revalidated\"}} {}\n", v(t.revalidated));
    fmt::format_to(out, "cache_proxy_requests_total{{cache=\"bypass\"}} {}\n", v(t.bypass));
    fmt::format_to(out, "# TYPE cache_proxy_responses_total counter\n");
    fmt::format_to(out, "cache_proxy_responses_total{{code=\"2xx\"}} {}\n", v(t.s2xx));
    fmt::format_to(out, "cache_proxy_responses_total{{code=\"3xx\"}} {}\n", v(t.s3xx));
    fmt::format_to(out, "cache_proxy_responses_total{{code=\"4xx\"}} {}\n", v(t.s4xx));
    fmt::format_to(out, "cache_proxy_responses_total{{code=\"5xx\"}} {}\n", v(t.s5xx));
    auto counter = [&](const char* name, const char* help, uint64_t val) {
        fmt::format_to(out, "# HELP cache_proxy_{} {}\n# TYPE cache_proxy_{} counter\ncache_proxy_{} {}\n", name, help, name, name, val);
    };
    auto gauge = [&](const char* name, const char* help, double val) {
        fmt::format_to(out, "# HELP cache_proxy_{} {}\n# TYPE cache_proxy_{} gauge\ncache_proxy_{} {}\n", name, help, name, name, val);
    };
    counter("sent_bytes_total", "Bytes written to clients.", v(t.bytes_out));
    counter("upstream_requests_total", "Requests sent to the origin.", v(t.upstream_requests));
    counter("upstream_connections_opened_total", "New origin connections.", v(t.upstream_new));
    counter("upstream_connections_reused_total", "Origin requests on a pooled connection.", v(t.upstream_reused));
    counter("upstream_errors_total", "Origin connect/read/protocol failures.", v(t.upstream_errors));
    counter("upstream_retries_total", "Requests retried after a pooled connection failed.", v(t.upstream_retries));
    double ur = v(t.upstream_requests) ? static_cast<double>(v(t.upstream_reused)) / static_cast<double>(v(t.upstream_requests)) : 0;
    gauge("upstream_reuse_ratio", "Share of origin requests sent on a reused connection.", ur);
    gauge("upstream_idle_connections", "Idle connections in the shared pool.", static_cast<double>(sh.pool.idle()));
    counter("rate_limited_total", "Requests refused with 429.", v(t.rate_limited));
    counter("bad_requests_total", "Requests refused as malformed (400, 431).", v(t.bad_requests));
    counter("coalesced_total", "Misses that waited for another request's origin fetch.", v(t.coalesced));
    counter("background_revalidations_total", "stale-while-revalidate refreshes.", v(t.background_revalidations));
    counter("invalidations_total", "Entries removed after unsafe methods.", v(t.invalidations));
    counter("purged_total", "Entries removed by PURGE.", v(t.purged));
    counter("spliced_responses_total", "Pass-through bodies sent with splice (origin -> pipe -> client).", v(t.spliced_responses));
    counter("spliced_bytes_total", "Body bytes sent with splice.", v(t.spliced_bytes));
    counter("tls_handshakes_total", "TLS handshakes completed.", v(t.tls_handshakes));
    counter("tls_resumed_total", "TLS handshakes that resumed a session (ticket).", v(t.tls_resumed));
    counter("tls_handshake_errors_total", "TLS handshakes that failed (garbage, no common version/cipher/ALPN, reset).", v(t.tls_failed));
    counter("tls_ticket_key_rotations_total", "Session ticket key rotations (timer and SIGHUP).", tls::ticket_key_rotations());
    counter("connections_accepted_total", "Client connections accepted.", v(t.accepted));
    counter("connections_handed_off_total", "Client connections passed to a less loaded worker after accept.", v(t.handed_off));
    gauge("connections_active", "Open client connections.", static_cast<double>(v(t.active)));
    fmt::format_to(out, "# HELP cache_proxy_worker_connections Open client connections per worker thread.\n# TYPE cache_proxy_worker_connections gauge\n");
    for (size_t i = 0; i < sh.counters.size(); i++)
        fmt::format_to(out, "cache_proxy_worker_connections{{worker=\"{}\"}} {}\n", i, sh.counters[i]->active.load(std::memory_order_relaxed));
    gauge("cache_bytes", "Bytes held by the memory tier.", static_cast<double>(sh.store.bytes()));
    gauge("cache_objects", "Objects in the memory tier.", static_cast<double>(sh.store.objects()));
    counter("cache_evictions_total", "Objects evicted to stay under the byte limit.", sh.store.evictions());
    counter("cache_admission_rejected_total", "Objects refused by the admission filter or too large.", sh.store.rejected());
    if (sh.disk) {
        gauge("disk_cache_bytes", "Bytes held by the disk tier.", static_cast<double>(sh.disk->bytes()));
        gauge("disk_cache_objects", "Objects in the disk tier.", static_cast<double>(sh.disk->objects()));
        counter("disk_cache_hits_total", "Memory misses answered from the disk tier.", sh.disk->hits());
        counter("disk_cache_writes_total", "Objects written to the disk tier.", sh.disk->writes());
        counter("disk_cache_evictions_total", "Files removed to stay under the disk byte limit.", sh.disk->evictions());
        counter("disk_cache_dropped_total", "Evicted objects not written (the writer was behind).", sh.disk->dropped());
    }
    return m;
}

void admin_request(Client& c) {
    Shared& sh = c.w.sh_;
    const Settings& cfg = *c.w.cfg_;
    std::string_view url = c.req.url;
    if (c.req.method == "GET" && (url == "/metrics" || url == "/stats")) {
        std::string body = metrics_text(sh);
        if (url == "/stats") {
            // One JSON line built from the metrics (name -> value).
            std::string j = "{\"type\":\"cache_proxy_stats\"";
            size_t pos = 0;
            while (pos < body.size()) {
                size_t eol = body.find('\n', pos);
                std::string_view line(body.data() + pos, eol - pos);
                pos = eol + 1;
                if (line.empty() || line[0] == '#') continue;
                auto sp = line.rfind(' ');
                std::string name(line.substr(0, sp));
                if (name.rfind("cache_proxy_", 0) == 0) name = name.substr(12);
                for (char& ch : name)
                    if (ch == '{' || ch == '=' || ch == '"' || ch == '}') ch = '_';
                while (!name.empty() && name.back() == '_') name.pop_back();
                std::string cleaned;
                for (char ch : name)
                    if (!(ch == '_' && !cleaned.empty() && cleaned.back() == '_')) cleaned.push_back(ch);
                fmt::format_to(std::back_inserter(j), ",\"{}\":{}", cleaned, line.substr(sp + 1));
            }
            j += "}\n";
            body = j;
        }
        c.simple(200, "OK", {}, false, body);  // text/plain: Prometheus text format 0.0.4
        return;
    }
    if (c.req.method == "PURGE") {
        if (!cfg.admin_token.empty()) {
            std::string_view tok = c.field("x-purge-token");
            std::string_view auth = c.field("authorization");
            bool ok = tok == cfg.admin_token || (auth.size() > 7 && auth.substr(7) == cfg.admin_token && iequals(auth.substr(0, 7), "bearer "));
            if (!ok) {
                c.simple(401, "Unauthorized", {}, false, "PURGE needs the admin token (X-Purge-Token)\n");
                return;
            }
        }
        std::string_view host = c.field("host");
        if (url.size() > 7 && iequals(url.substr(0, 7), "http://")) {
            auto slash = url.find('/', 7);
            host = url.substr(7, slash == std::string_view::npos ? std::string_view::npos : slash - 7);
            url = slash == std::string_view::npos ? std::string_view("/") : url.substr(slash);
        }
        std::string key;
        for (char ch : host) key.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
        size_t n;
        if (!url.empty() && url.back() == '*') {
            key.append(url.substr(0, url.size() - 1));
            n = sh.store.remove_prefix(key);
        } else {
            key.append(url);
            n = sh.store.remove(key) ? 1 : 0;
        }
        c.w.ctr_.purged.fetch_add(n, std::memory_order_relaxed);
        c.simple(n ? 200 : 404, n ? "OK" : "Not Found", {}, false, fmt::format("{{\"type\":\"purge\",\"key\":\"{}\",\"purged\":{}}}\n", key, n));
        return;
    }
    c.simple(404, "Not Found", {}, false, "admin: GET /metrics, GET /stats, PURGE /path or /prefix*\n");
}

// ---------------------------------------------------------------------------------------------
// Worker

Worker::~Worker() {
    for (auto& [id, c] : clients_) delete c;
    for (Fetch* f : fetches_) delete f;
    for (Handler* h : graveyard_) delete h;
    for (const Handoff& h : handoffs_) ::close(h.fd);
    for (int l : listeners_) ::close(l);
    for (int l : tls_listeners_) ::close(l);
    if (ep_ >= 0) ::close(ep_);
    if (tfd_ >= 0) ::close(tfd_);
    if (efd_ >= 0) ::close(efd_);
}

std::vector<std::unique_ptr<FdHandler>> g_fd_handlers;  // listeners, timers, eventfds (owned here)
std::mutex g_fd_mu;

FdHandler* make_handler(std::function<void(uint32_t)> f) {
    std::lock_guard lk(g_fd_mu);
    g_fd_handlers.push_back(std::make_unique<FdHandler>(std::move(f)));
    return g_fd_handlers.back().get();
}

void Worker::setup(const std::vector<int>& listen_fds, const std::vector<int>& tls_fds, int admin_fd) {
    refresh_config();
    req_settings_.on_message_begin = req_on_message_begin;
    req_settings_.on_url = req_on_url;
    req_settings_.on_header_field = req_on_header_field;
    req_settings_.on_header_value = req_on_header_value;
    req_settings_.on_headers_complete = req_on_headers_complete;
    req_settings_.on_body = req_on_body;
    req_settings_.on_message_complete = req_on_message_complete;
    resp_settings_.on_status = resp_on_status;
    resp_settings_.on_header_field = resp_on_header_field;
    resp_settings_.on_header_value = resp_on_header_value;
    resp_settings_.on_headers_complete = resp_on_headers_complete;
    resp_settings_.on_body = resp_on_body;
    resp_settings_.on_message_complete = resp_on_message_complete;
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    tfd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ep_ < 0 || tfd_ < 0 || efd_ < 0) edge::failure("cannot create epoll/timerfd/eventfd: {}", std::strerror(errno));
    itimerspec its{};
    its.it_interval.tv_nsec = 250000000;  // 250 ms: timeouts, log flushing, the clock
    its.it_value.tv_nsec = 250000000;
    timerfd_settime(tfd_, 0, &its, nullptr);
    add(tfd_, make_handler([this](uint32_t) {
            uint64_t x;
            while (::read(tfd_, &x, sizeof x) > 0) {}
            tick();
        }),
        EPOLLIN | EPOLLET);
    add(efd_, make_handler([this](uint32_t) {
            uint64_t x;
            while (::read(efd_, &x, sizeof x) > 0) {}
            drain_inbox();
        }),
        EPOLLIN | EPOLLET);
    listeners_ = listen_fds;
    for (int l : listeners_) add(l, make_handler([this, l](uint32_t) { accept_all(l, false); }), EPOLLIN | EPOLLEXCLUSIVE);
    tls_listeners_ = tls_fds;
    for (int l : tls_listeners_) add(l, make_handler([this, l](uint32_t) { accept_all(l, false, true); }), EPOLLIN | EPOLLEXCLUSIVE);
    admin_fd_ = admin_fd;
    if (admin_fd_ >= 0) add(admin_fd_, make_handler([this](uint32_t) { accept_all(admin_fd_, true); }), EPOLLIN);
}

void Worker::refresh_config() {
    uint64_t g = sh_.cfg_gen.load();
    if (g == cfg_gen_) return;
    cfg_hold_ = sh_.settings();
    cfg_ = cfg_hold_.get();
    cfg_gen_ = g;
}

void Worker::accept_all(int lfd, bool admin, bool tls) {
    for (int i = 0; i < 256; i++) {
        sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = ::accept4(lfd, reinterpret_cast<sockaddr*>(&ss), &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        // SO_REUSEPORT hashes connections over the workers' listeners unevenly (64 connections
        // over 2 listeners: typically 28/36), and keep-alive makes that last: a connection goes
        // to the worker with the fewest when this one has two more (counted at hand-off time).
        if (!admin && !draining_ && sh_.workers.size() > 1 && !sh_.draining.load(std::memory_order_relaxed)) {
            uint64_t mine = ctr_.active.load(std::memory_order_relaxed), low = mine;
            unsigned to = index_;
            for (unsigned k = 0; k < sh_.workers.size(); k++) {
                uint64_t a = sh_.counters[k]->active.load(std::memory_order_relaxed);
                if (a < low) low = a, to = k;
            }
            if (to != index_ && mine > low + 1) {
                sh_.counters[to]->active.fetch_add(1, std::memory_order_relaxed);
                ctr_.handed_off.fetch_add(1, std::memory_order_relaxed);
                sh_.workers[to]->hand_off({fd, tls, ss});
                continue;
            }
        }
        ctr_.active.fetch_add(1, std::memory_order_relaxed);
        adopt(fd, ss, admin, tls);
    }
}

bool install_tls_bio(Client* c);

// A new client connection (counted in `active` already) joins this worker.
void Worker::adopt(int fd, const sockaddr_storage& ss, bool admin, bool tls) {
    auto* c = new Client(*this, fd, (static_cast<uint64_t>(index_) << 56) | next_id_++, admin);
    c->peer = ss;
    c->need_proxy_header = cfg_->proxy_protocol && !admin;
    if (tls) {
        if (!cfg_->tls || !(c->ssl = cfg_->tls->accept(fd)) || !install_tls_bio(c)) {
            delete c;  // closes fd
            ctr_.active.fetch_sub(1, std::memory_order_relaxed);
            return;
        }
        c->tls_ctx = cfg_->tls;
        c->handshaking = true;
    }
    if (ss.ss_family == AF_INET) inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(ss).sin_addr, c->peer_ip, sizeof c->peer_ip);
    else if (ss.ss_family == AF_INET6) inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr, c->peer_ip, sizeof c->peer_ip);
    clients_[c->id] = c;
    ctr_.accepted.fetch_add(1, std::memory_order_relaxed);
    add(fd, c, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
}

void Worker::flush_log() {
    int fd = sh_.log_fd.load(std::memory_order_relaxed);
    if (fd >= 0 && !log_.empty()) {
        ssize_t r = ::write(fd, log_.data(), log_.size());
        (void)r;
    }
    log_.clear();
}

void Worker::tick() {
    now_s_ = wall_s();
    refresh_config();
    flush_log();
    if (index_ == 0) sh_.limiter.prune(mono_us());
    std::vector<Client*> expired;
    for (auto& [id, c] : clients_)
        if ((!c->active || c->lingering) && !c->closed && now_s_ >= c->deadline) expired.push_back(c);
    for (Client* c : expired) {
        if (c->end > c->start && !c->lingering) {  // a partial request: tell it why
            c->simple(408, "Request Timeout", {}, true);
            c->pump();
            if (!c->closed) c->close();
        } else {
            c->close();
        }
    }
    std::vector<Fetch*> late;
    for (Fetch* f : fetches_)
        if (!f->done && now_s_ >= f->deadline) late.push_back(f);
    for (Fetch* f : late) f->fail(true);
    if (draining_) {  // connections that never sent a request get a second, then close
        std::vector<Client*> quiet;
        int64_t now = mono_us();
        for (auto& [id, c] : clients_)
            if (!c->active && !c->closed && c->start == c->end && c->served == 0 && now - c->accepted_us > 1000000) quiet.push_back(c);
        for (Client* c : quiet) c->close();
    }
    if (draining_ && mono_us() > drain_deadline_) {
        std::vector<Client*> all;
        for (auto& [id, c] : clients_) all.push_back(c);
        for (Client* c : all) c->close();
        std::vector<Fetch*> rest(fetches_);
        for (Fetch* f : rest) f->fail(true);  // background refreshes do not hold up the exit
    }
}

void Worker::start_drain() {
    if (draining_) return;
    draining_ = true;
    drain_deadline_ = mono_us() + static_cast<int64_t>(cfg_->drain_timeout) * 1000000;
    for (int l : listeners_) {
        accept_all(l, false);  // take what is queued: those clients get an answer too
        del(l);
        ::close(l);
    }
    listeners_.clear();
    for (int l : tls_listeners_) {
        accept_all(l, false, true);
        del(l);
        ::close(l);
    }
    tls_listeners_.clear();
    if (admin_fd_ >= 0) {
        del(admin_fd_);
        ::close(admin_fd_);
        admin_fd_ = -1;
    }
    std::vector<Client*> idle;
    for (auto& [id, c] : clients_)
        if (!c->active) idle.push_back(c);
    for (Client* c : idle) c->pump();  // serves what is buffered, else closes
}

void Worker::drain_inbox() {
    refresh_config();
    if (sh_.draining.load() && !draining_) start_drain();
    {
        std::lock_guard lk(inbox_mu_);
        inbox_work_.swap(inbox_);
        handoffs_work_.swap(handoffs_);
    }
    for (const Handoff& h : handoffs_work_) adopt(h.fd, h.ss, false, h.tls);
    handoffs_work_.clear();
    for (Msg m : inbox_work_) {
        auto it = clients_.find(m.conn);
        if (it != clients_.end()) it->second->wake_from_wait(m.stored);
    }
    inbox_work_.clear();
}

void Worker::run() {
    now_s_ = wall_s();
    epoll_event evs[256];
    for (;;) {
        if (draining_ && clients_.empty() && fetches_.empty() && !handoffs_pending()) break;
        int n = epoll_wait(ep_, evs, 256, 1000);
        if (n < 0) {
            if (errno == EINTR) continue;
            break;
        }
        now_s_ = wall_s();
        for (int i = 0; i < n; i++) static_cast<Handler*>(evs[i].data.ptr)->on_event(evs[i].events);
        // Handlers closed during this batch are freed only now (events may still name them).
        for (Handler* h : graveyard_) delete h;
        graveyard_.clear();
    }
    flush_log();
}

int listen_socket(const SockAddr& a, bool reuseport) {
    int fd = ::socket(a.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) edge::failure("socket: {}", std::strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&a.ss), a.len) != 0) {
        int e = errno;
        ::close(fd);
        edge::failure("cannot listen on {}: {}", a.text, std::strerror(e));
    }
    if (::listen(fd, 4096) != 0) {
        int e = errno;
        ::close(fd);
        edge::failure("cannot listen on {}: {}", a.text, std::strerror(e));
    }
    return fd;
}

int open_log(const std::string& path) {
    if (path.empty()) return -1;
    if (path == "-") return ::dup(1);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) edge::failure("cannot open access log {}: {}", path, std::strerror(errno));
    return fd;
}

// Binary upgrade: the running process serves its listening sockets (SCM_RIGHTS) to a new
// process that connects to the upgrade socket and says "takeover"; when the new one
// answers "ready" (its workers accept on them), the old one drains and exits.
sockaddr_un unix_addr(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, path.c_str(), std::min(path.size(), sizeof a.sun_path - 1));
    return a;
}

// New process: fetch the old one's listeners. Returns the connection (to say "ready"), or -1.
int upgrade_receive(const std::string& path, std::vector<int>& fds) {
    int c = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a = unix_addr(path);
    if (c < 0 || ::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        if (c >= 0) ::close(c);
        return -1;
    }
    timeval tv{5, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::send(c, "takeover\n", 9, MSG_NOSIGNAL) != 9) {
        ::close(c);
        return -1;
    }
    char data[16];
    alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int) * 253)];
    iovec iov{data, sizeof data};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl;
    mh.msg_controllen = sizeof ctl;
    ssize_t n = ::recvmsg(c, &mh, MSG_CMSG_CLOEXEC);
    if (n <= 0) {
        ::close(c);
        return -1;
    }
    for (cmsghdr* cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
        size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
            fds.push_back(fd);
        }
    }
    return c;
}

int upgrade_listen(const std::string& path) {
    ::unlink(path.c_str());
    int l = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a = unix_addr(path);
    if (l < 0 || ::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(l, 4) != 0) {
        int e = errno;
        if (l >= 0) ::close(l);
        edge::failure("cannot listen on upgrade socket {}: {}", path, std::strerror(e));
    }
    ::chmod(path.c_str(), 0600);
    return l;
}

bool same_addr(int fd, const SockAddr& want) {
    sockaddr_storage ss{};
    socklen_t l = sizeof ss;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &l) != 0 || l != want.len) return false;
    return std::memcmp(&ss, &want.ss, l) == 0;
}

bool is_loopback(const SockAddr& a) {
    if (a.ss.ss_family == AF_INET)
        return (ntohl(reinterpret_cast<const sockaddr_in&>(a.ss).sin_addr.s_addr) >> 24) == 127;
    if (a.ss.ss_family == AF_INET6) return IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6&>(a.ss).sin6_addr);
    return false;
}

}  // namespace

int serve(Settings settings, std::function<Settings()> reload, bool json_log) {
    if (settings.has_admin && settings.admin_token.empty() && !is_loopback(settings.admin))
        edge::usage_error("--admin {} is not a loopback address: set --admin-token too", settings.admin.text);
    // Large bodies live in memfds and every connection is an fd: raise the soft limit.
    rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    auto cfg = std::make_shared<const Settings>(std::move(settings));
    Shared sh(cfg);
    sh.started = wall_s();
    sh.pool.configure(cfg->origin, cfg->upstream_max_idle);
    sh.log_fd = open_log(cfg->access_log);

    // Signals go to a signalfd in this thread; workers never see them.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (!cfg->disk_cache.empty()) {  // its writer thread starts with the signals blocked, like the workers
        sh.disk = std::make_unique<DiskTier>(cfg->disk_cache, cfg->disk_cache_size);
        sh.store.set_disk(sh.disk.get());
    }

    // A running predecessor on the upgrade socket hands over its listeners.
    std::vector<int> inherited;
    int upgrade_conn = cfg->upgrade_socket.empty() ? -1 : upgrade_receive(cfg->upgrade_socket, inherited);
    int admin_fd = -1;
    std::vector<std::vector<int>> per_worker(cfg->threads), per_worker_tls(cfg->threads);
    std::vector<std::vector<int>> by_addr(cfg->listen.size()), by_addr_tls(cfg->tls_listen.size());
    for (int fd : inherited) {
        bool used = false;
        for (size_t j = 0; j < cfg->listen.size() && !used; j++)
            if (same_addr(fd, cfg->listen[j])) {
                by_addr[j].push_back(fd);
                used = true;
            }
        for (size_t j = 0; j < cfg->tls_listen.size() && !used; j++)
            if (same_addr(fd, cfg->tls_listen[j])) {
                by_addr_tls[j].push_back(fd);
                used = true;
            }
        if (!used && cfg->has_admin && admin_fd < 0 && same_addr(fd, cfg->admin)) {
            admin_fd = fd;
            used = true;
        }
        if (!used) ::close(fd);  // an address no longer configured
    }
    if (cfg->has_admin && admin_fd < 0) admin_fd = listen_socket(cfg->admin, false);
    for (size_t j = 0; j < cfg->listen.size(); j++) {
        // Every inherited socket gets a worker (none is left with queued connections);
        // missing ones are opened (SO_REUSEPORT joins the same group).
        size_t k = 0;
        for (int fd : by_addr[j]) per_worker[k++ % cfg->threads].push_back(fd);
        for (; k < cfg->threads; k++) per_worker[k].push_back(listen_socket(cfg->listen[j], true));
    }
    for (size_t j = 0; j < cfg->tls_listen.size(); j++) {
        size_t k = 0;
        for (int fd : by_addr_tls[j]) per_worker_tls[k++ % cfg->threads].push_back(fd);
        for (; k < cfg->threads; k++) per_worker_tls[k].push_back(listen_socket(cfg->tls_listen[j], true));
    }
    if (cfg->tls) tls::rotate_ticket_keys();  // the first ticket key
    int64_t next_rotation = cfg->tls_ticket_rotation ? mono_us() + int64_t{cfg->tls_ticket_rotation} * 1000000 : 0;
    for (unsigned i = 0; i < cfg->threads; i++) sh.counters.push_back(std::make_unique<Counters>());
    for (unsigned i = 0; i < cfg->threads; i++) {
        auto w = std::make_unique<Worker>(sh, i);
        w->setup(per_worker[i], per_worker_tls[i], i == 0 ? admin_fd : -1);
        sh.workers.push_back(std::move(w));
    }
    std::vector<std::thread> threads;
    for (auto& w : sh.workers) threads.emplace_back([&w] { w->run(); });
    if (upgrade_conn >= 0) {
        ssize_t r = ::send(upgrade_conn, "ready\n", 6, MSG_NOSIGNAL);
        (void)r;
        char b[8];
        r = ::recv(upgrade_conn, b, sizeof b, 0);  // the old process closes when it starts draining
        ::close(upgrade_conn);
    }
    int up_listen = cfg->upgrade_socket.empty() ? -1 : upgrade_listen(cfg->upgrade_socket);
    std::string listen_text;
    for (auto& l : cfg->listen) listen_text += (listen_text.empty() ? "" : ",") + l.text;
    for (auto& l : cfg->tls_listen) listen_text += (listen_text.empty() ? "tls " : ",tls ") + l.text;
    if (json_log)
        fmt::print(stderr, "{{\"type\":\"cache_proxy_start\",\"listen\":\"{}\",\"origin\":\"{}\",\"threads\":{},\"cache_bytes\":{}}}\n",
                   listen_text, cfg->origin.text, cfg->threads, cfg->cache_size);
    else
        edge::out::info(fmt::format("listening on {} ({} threads), origin {}, cache {} bytes{}", listen_text, cfg->threads,
                                    cfg->origin.text, cfg->cache_size, cfg->has_admin ? ", admin " + cfg->admin.text : ""));

    bool upgraded = false;
    for (;;) {
        pollfd pf[2] = {{sfd, POLLIN, 0}, {up_listen, POLLIN, 0}};
        int timeout_ms = -1;
        if (next_rotation && sh.settings()->tls) {
            int64_t now = mono_us();
            if (now >= next_rotation) {  // the ticket key schedule
                tls::rotate_ticket_keys();
                unsigned period = sh.settings()->tls_ticket_rotation;
                next_rotation = period ? now + int64_t{period} * 1000000 : 0;
                continue;
            }
            timeout_ms = static_cast<int>(std::min<int64_t>((next_rotation - now) / 1000 + 1, 60000));
        }
        if (::poll(pf, up_listen >= 0 ? 2 : 1, timeout_ms) <= 0) continue;
        if (up_listen >= 0 && (pf[1].revents & POLLIN)) {
            int c = ::accept4(up_listen, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) continue;
            timeval tv{10, 0};
            setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            char b[16] = {};
            ssize_t n = ::recv(c, b, sizeof b - 1, 0);
            if (n == 9 && std::string_view(b, 9) == "takeover\n") {
                std::vector<int> fds;
                for (auto& w : sh.workers)
                    for (int l : w->listeners_) fds.push_back(l);
                for (auto& w : sh.workers)
                    for (int l : w->tls_listeners_) fds.push_back(l);
                if (sh.workers[0]->admin_fd_ >= 0) fds.push_back(sh.workers[0]->admin_fd_);
                alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int) * 253)] = {};
                iovec iov{const_cast<char*>("fds\n"), 4};
                msghdr mh{};
                mh.msg_iov = &iov;
                mh.msg_iovlen = 1;
                if (fds.size() > 253) fds.resize(253);
                mh.msg_control = ctl;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
                cmsghdr* cm = CMSG_FIRSTHDR(&mh);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
                std::memcpy(CMSG_DATA(cm), fds.data(), sizeof(int) * fds.size());
                if (::sendmsg(c, &mh, MSG_NOSIGNAL) > 0) {
                    n = ::recv(c, b, sizeof b - 1, 0);
                    if (n == 6 && std::string_view(b, 6) == "ready\n") upgraded = true;
                }
            }
            ::close(c);
            if (upgraded) {
                if (json_log) fmt::print(stderr, "{{\"type\":\"cache_proxy_upgrade\",\"handed_over\":true}}\n");
                else edge::out::info("listeners handed over to a new process: draining");
                break;
            }
            continue;
        }
        if (!(pf[0].revents & POLLIN)) continue;
        signalfd_siginfo si;
        ssize_t r = ::read(sfd, &si, sizeof si);
        if (r != sizeof si) {
            if (errno == EINTR) continue;
            break;
        }
        if (si.ssi_signo == SIGPIPE) continue;
        if (si.ssi_signo == SIGHUP) {
            try {
                Settings ns = reload();
                auto cur = sh.settings();
                bool same_listen = ns.listen.size() == cur->listen.size() && ns.threads == cur->threads &&
                                   ns.tls_listen.size() == cur->tls_listen.size();
                for (size_t i = 0; same_listen && i < ns.listen.size(); i++) same_listen = ns.listen[i].text == cur->listen[i].text;
                for (size_t i = 0; same_listen && i < ns.tls_listen.size(); i++)
                    same_listen = ns.tls_listen[i].text == cur->tls_listen[i].text;
                if (!same_listen) edge::out::warn("reload: listeners and threads are kept (restart to change them)");
                ns.listen = cur->listen;
                ns.tls_listen = cur->tls_listen;
                if (!ns.tls_listen.empty() && !ns.tls) ns.tls = cur->tls;
                ns.threads = cur->threads;
                ns.has_admin = cur->has_admin;
                ns.admin = cur->admin;
                sh.pool.configure(ns.origin, ns.upstream_max_idle);
                sh.store.set_limit(ns.cache_size);
                int nl = open_log(ns.access_log);  // reopen: log rotation
                int old = sh.log_fd.exchange(nl);
                {
                    std::lock_guard lk(sh.cfg_mu);
                    sh.cfg = std::make_shared<const Settings>(std::move(ns));
                }
                sh.cfg_gen.fetch_add(1);
                for (auto& w : sh.workers) w->wake();
                // New certificates are in use from here; the ticket key rotates too (old tickets
                // keep working for one more period).
                if (sh.settings()->tls) {
                    tls::rotate_ticket_keys();
                    unsigned period = sh.settings()->tls_ticket_rotation;
                    next_rotation = period ? mono_us() + int64_t{period} * 1000000 : 0;
                }
                if (old >= 0) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // workers flush to the old fd first
                    ::close(old);
                }
                if (json_log) fmt::print(stderr, "{{\"type\":\"cache_proxy_reload\",\"ok\":true}}\n");
                else edge::out::info("configuration reloaded");
            } catch (const std::exception& e) {
                if (json_log) {
                    std::string m;
                    edge::out::append_json_string(m, e.what());
                    fmt::print(stderr, "{{\"type\":\"cache_proxy_reload\",\"ok\":false,\"error\":{}}}\n", m);
                } else {
                    edge::out::warn(fmt::format("reload failed, keeping the running configuration: {}", e.what()));
                }
            }
            continue;
        }
        break;  // SIGTERM / SIGINT: drain
    }
    sh.draining = true;
    for (auto& w : sh.workers) w->wake();
    for (auto& t : threads) t.join();
    if (sh.disk) {  // what is in memory goes to disk too: a restart starts warm
        sh.store.spill_all();
        sh.disk->flush();
    }
    std::string stats = metrics_text(sh);
    uint64_t up = 0, reused = 0, hits = 0, reqs = 0;
    for (auto& c : sh.counters) {
        up += c->upstream_requests.load();
        reused += c->upstream_reused.load();
        hits += c->hit.load();
        reqs += c->requests.load();
    }
    if (json_log)
        fmt::print(stderr, "{{\"type\":\"cache_proxy_stop\",\"requests\":{},\"hits\":{},\"upstream_requests\":{},\"upstream_reused\":{},\"upstream_reuse_ratio\":{:.4f}}}\n",
                   reqs, hits, up, reused, up ? static_cast<double>(reused) / static_cast<double>(up) : 0.0);
    else
        edge::out::info(fmt::format("stopped: {} requests, {} hits, {} origin requests, origin connection reuse {:.2f}%", reqs, hits,
                                    up, up ? 100.0 * static_cast<double>(reused) / static_cast<double>(up) : 0.0));
    if (up_listen >= 0) {
        ::close(up_listen);
        if (!upgraded) ::unlink(cfg->upgrade_socket.c_str());  // after an upgrade the path is the successor's
    }
    int lfd = sh.log_fd.exchange(-1);
    if (lfd >= 0) ::close(lfd);
    ::close(sfd);
    sh.workers.clear();
    return 0;
}

}  // namespace cache_proxy
