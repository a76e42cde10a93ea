// BGP finite state machine over a non-blocking socket (see session.hpp).
#include "bgp/session.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "cli/error.hpp"

namespace edge::bgp {
namespace {

constexpr int64_t open_hold_ms = 240 * 1000;   // large hold time while waiting for OPEN (RFC 4271 8.2.2)
constexpr size_t low_water = 256 * 1024;       // ask the owner for more output below this

socklen_t to_sockaddr(const net::IpAddr& a, uint16_t port, sockaddr_storage& ss) {
    std::memset(&ss, 0, sizeof ss);
    if (a.is_v4()) {
        auto* s = reinterpret_cast<sockaddr_in*>(&ss);
        s->sin_family = AF_INET;
        s->sin_port = htons(port);
        std::memcpy(&s->sin_addr, a.bytes().data(), 4);
        return sizeof(sockaddr_in);
    }
    auto* s = reinterpret_cast<sockaddr_in6*>(&ss);
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(port);
    std::memcpy(&s->sin6_addr, a.bytes().data(), 16);
    return sizeof(sockaddr_in6);
}

std::pair<net::IpAddr, uint16_t> from_sockaddr(const sockaddr_storage& ss) {
    if (ss.ss_family == AF_INET) {
        auto* s = reinterpret_cast<const sockaddr_in*>(&ss);
        std::array<uint8_t, 4> b;
        std::memcpy(b.data(), &s->sin_addr, 4);
        return {net::IpAddr::v4(b), ntohs(s->sin_port)};
    }
    auto* s = reinterpret_cast<const sockaddr_in6*>(&ss);
    std::array<uint8_t, 16> b;
    std::memcpy(b.data(), &s->sin6_addr, 16);
    auto a = net::IpAddr::v6(b);
    // IPv4-mapped: report as IPv4.
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(b.data(), mapped, 12) == 0) a = net::IpAddr::v4(std::array<uint8_t, 4>{b[12], b[13], b[14], b[15]});
    return {a, ntohs(s->sin6_port)};
}

uint32_t id_of(const net::IpAddr& a) {
    auto b = a.bytes();
    if (a.is_v4()) return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
    return (uint32_t{b[12]} << 24) | (uint32_t{b[13]} << 16) | (uint32_t{b[14]} << 8) | b[15];
}

}  // namespace

const char* to_string(State s) {
    switch (s) {
        case State::idle: return "idle";
        case State::connect: return "connect";
        case State::active: return "active";
        case State::open_sent: return "open_sent";
        case State::open_confirm: return "open_confirm";
        case State::established: return "established";
    }
    return "unknown";
}

int set_tcp_md5(int fd, const net::IpAddr& peer, const std::string& key) {
    tcp_md5sig sig{};
    if (key.size() > TCP_MD5SIG_MAXKEYLEN) return EINVAL;
    sockaddr_storage ss;
    to_sockaddr(peer, 0, ss);
    std::memcpy(&sig.tcpm_addr, &ss, sizeof ss);
    sig.tcpm_keylen = static_cast<uint16_t>(key.size());
    std::memcpy(sig.tcpm_key, key.data(), key.size());
    if (setsockopt(fd, IPPROTO_TCP, TCP_MD5SIG, &sig, sizeof sig) != 0) return errno;
    return 0;
}

int listen_on(const net::Endpoint& ep) {
    int fd = socket(ep.addr.is_v4() ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) failure("cannot create a socket: {}", std::strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ep.addr.is_v6()) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    sockaddr_storage ss;
    socklen_t len = to_sockaddr(ep.addr, ep.port, ss);
    if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(fd, 64) != 0) {
        int e = errno;
        close(fd);
        failure("cannot listen on {}: {}", ep.to_string(), std::strerror(e));
    }
    return fd;
}

Session::Session(Loop& loop, PeerConfig cfg, Handlers h) : loop_(loop), cfg_(std::move(cfg)), h_(std::move(h)) {
    if (cfg_.name.empty()) cfg_.name = cfg_.address.to_string();
}

Session::~Session() {
    loop_.cancel(retry_timer_);
    loop_.cancel(hold_timer_);
    loop_.cancel(keepalive_timer_);
    close_socket();
}

void Session::set_state(State s, const std::string& reason) {
    if (s == state_) return;
    State from = state_;
    state_ = s;
    if (s == State::established) established_at_ = Loop::now_ms();
    if (!reason.empty()) last_error_ = reason;
    if (h_.state) h_.state(*this, from, s, reason);
}

void Session::start() {
    started_ = true;
    if (cfg_.passive)
        set_state(State::active);
    else
        connect();
}

void Session::stop(const Notification& n) {
    started_ = false;
    loop_.cancel(retry_timer_);
    if (fd_ >= 0 && (state_ == State::open_sent || state_ == State::open_confirm || state_ == State::established)) {
        fail(n, "stopped: " + n.describe());
    } else {
        close_socket();
        set_state(State::idle, "stopped");
    }
}

void Session::close_socket() {
    loop_.cancel(hold_timer_);
    loop_.cancel(keepalive_timer_);
    if (fd_ >= 0) {
        loop_.remove(fd_);
        close(fd_);
        fd_ = -1;
    }
    in_.clear();
    out_.clear();
    out_off_ = 0;
    want_write_ = false;
}

void Session::schedule_retry() {
    loop_.cancel(retry_timer_);
    if (!started_) return;
    if (cfg_.passive) {
        set_state(State::active);
        return;
    }
    retry_timer_ = loop_.after_ms(int64_t{cfg_.connect_retry_s} * 1000, [this] { on_connect_retry(); });
}

void Session::on_connect_retry() {
    retry_timer_ = 0;
    if (!started_) return;
    if (state_ == State::connect) {  // connect timed out
        close_socket();
    } else if (state_ != State::idle && state_ != State::active) {
        return;
    }
    connect();
}

void Session::connect() {
    close_socket();
    int fd = socket(cfg_.address.is_v4() ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        set_state(State::active, fmt::format("socket: {}", std::strerror(errno)));
        schedule_retry();
        return;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (cfg_.ttl > 0) {
        if (cfg_.address.is_v4())
            setsockopt(fd, IPPROTO_IP, IP_TTL, &cfg_.ttl, sizeof cfg_.ttl);
        else
            setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &cfg_.ttl, sizeof cfg_.ttl);
    }
    std::string err;
    if (!cfg_.md5_password.empty()) {
        if (int e = set_tcp_md5(fd, cfg_.address, cfg_.md5_password)) err = fmt::format("TCP MD5: {}", std::strerror(e));
    }
    if (err.empty() && (cfg_.local_address || cfg_.local_port)) {
        sockaddr_storage ss;
        net::IpAddr la = cfg_.local_address ? *cfg_.local_address
                                            : (cfg_.address.is_v4() ? net::IpAddr{} : net::IpAddr::v6({}));
        socklen_t len = to_sockaddr(la, cfg_.local_port, ss);
        if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0)
            err = fmt::format("bind {}: {}", la.to_string(), std::strerror(errno));
    }
    if (err.empty()) {
        sockaddr_storage ss;
        socklen_t len = to_sockaddr(cfg_.address, cfg_.port, ss);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS)
            err = fmt::format("connect: {}", std::strerror(errno));
    }
    if (!err.empty()) {
        close(fd);
        set_state(State::active, err);
        schedule_retry();
        return;
    }
    fd_ = fd;
    loop_.add(fd_, EPOLLOUT, [this](uint32_t ev) { on_socket(ev); });
    set_state(State::connect);
    loop_.cancel(retry_timer_);
    retry_timer_ = loop_.after_ms(int64_t{cfg_.connect_retry_s} * 1000, [this] { on_connect_retry(); });
}

void Session::on_socket(uint32_t ev) {
    if (state_ == State::connect) {
        int e = 0;
        socklen_t l = sizeof e;
        getsockopt(fd_, SOL_SOCKET, SO_ERROR, &e, &l);
        if (e != 0 || (ev & (EPOLLERR | EPOLLHUP))) {
            close_socket();
            set_state(State::active, fmt::format("connect to {}:{}: {}", cfg_.address.to_string(), cfg_.port,
                                                 std::strerror(e ? e : ECONNREFUSED)));
            schedule_retry();
            return;
        }
        loop_.cancel(retry_timer_);
        connected();
        return;
    }
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) read_ready();
    if (fd_ >= 0 && (ev & EPOLLOUT)) write_ready();
}

bool Session::accept(int fd) {
    bool take = false;
    switch (state_) {
        case State::idle: take = started_; break;
        case State::connect:
        case State::active: take = true; break;
        case State::open_sent: take = id_of(cfg_.address) > cfg_.router_id; break;  // RFC 4271 6.8, peer id guessed
        default: take = false;
    }
    if (!take) {
        auto n = encode_notification(Notification{err::cease, err::collision, {}});
        [[maybe_unused]] auto w = ::write(fd, n.data(), n.size());
        close(fd);
        return false;
    }
    close_socket();
    loop_.cancel(retry_timer_);
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    fd_ = fd;
    loop_.add(fd_, EPOLLIN, [this](uint32_t ev) { on_socket(ev); });
    connected();
    return true;
}

void Session::connected() {
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
        auto [a, p] = from_sockaddr(ss);
        neg_.local_address = a;
        neg_.local_port = p;
    }
    loop_.modify(fd_, EPOLLIN);
    send_open();
    set_state(State::open_sent);
    loop_.cancel(hold_timer_);
    hold_timer_ = loop_.after_ms(open_hold_ms, [this] {
        hold_timer_ = 0;
        fail(Notification{err::hold_timer, 0, {}}, "hold timer expired waiting for OPEN");
    });
}

void Session::send_open() {
    Open o;
    o.asn = cfg_.local_as;
    o.hold_time = cfg_.hold_time;
    o.router_id = cfg_.router_id;
    o.four_octet_as = cfg_.four_octet_as;
    o.multiprotocol = cfg_.families;
    o.route_refresh = true;
    if (cfg_.graceful_restart_time) {
        GracefulRestart g;
        g.restart_time = *cfg_.graceful_restart_time;
        for (auto af : cfg_.families) g.families.push_back({af, true});
        o.graceful_restart = g;
    }
    queue(encode_open(o));
    flush();
}

void Session::queue(const Bytes& b) { out_.insert(out_.end(), b.begin(), b.end()); }

void Session::send(std::span<const uint8_t> bytes) {
    if (state_ != State::established || fd_ < 0) return;
    out_.insert(out_.end(), bytes.begin(), bytes.end());
    flush();
}

void Session::flush() {
    while (fd_ >= 0 && out_off_ < out_.size()) {
        ssize_t n = ::send(fd_, out_.data() + out_off_, out_.size() - out_off_, MSG_NOSIGNAL);
        if (n > 0) {
            out_off_ += static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        drop(fmt::format("send: {}", std::strerror(errno)));
        return;
    }
    if (fd_ < 0) return;
    if (out_off_ == out_.size()) {
        out_.clear();
        out_off_ = 0;
    } else if (out_off_ > (1u << 20) && out_off_ > out_.size() / 2) {
        out_.erase(out_.begin(), out_.begin() + static_cast<long>(out_off_));
        out_off_ = 0;
    }
    bool need = out_off_ < out_.size();
    if (need != want_write_) {
        want_write_ = need;
        loop_.modify(fd_, EPOLLIN | (need ? EPOLLOUT : 0u));
    }
}

void Session::write_ready() {
    flush();
    if (fd_ >= 0 && state_ == State::established && queued() < low_water && on_writable) on_writable(*this);
}

void Session::read_ready() {
    uint8_t buf[65536];
    for (;;) {
        ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n > 0) {
            in_.insert(in_.end(), buf, buf + n);
            if (static_cast<size_t>(n) < sizeof buf) break;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        // EOF or error: process what is buffered, then drop.
        std::string why = n == 0 ? "connection closed by peer" : fmt::format("read: {}", std::strerror(errno));
        size_t off = 0;
        while (fd_ >= 0) {
            auto f = check_frame(std::span<const uint8_t>(in_).subspan(off));
            if (f.status != Frame::ok) break;
            Bytes msg(in_.begin() + static_cast<long>(off), in_.begin() + static_cast<long>(off + f.length));
            off += f.length;
            handle(msg, f.type);
        }
        if (fd_ >= 0) drop(why);
        return;
    }
    size_t off = 0;
    int fd_before = fd_;
    while (fd_ >= 0 && fd_ == fd_before) {
        auto f = check_frame(std::span<const uint8_t>(in_).subspan(off));
        if (f.status == Frame::need_more) break;
        if (f.status == Frame::bad) {
            fail(f.error, "bad message header: " + f.error.name());
            return;
        }
        std::span<const uint8_t> msg(in_.data() + off, f.length);
        off += f.length;
        handle(msg, f.type);
    }
    if (fd_ >= 0 && fd_ == fd_before && off) in_.erase(in_.begin(), in_.begin() + static_cast<long>(off));
}

void Session::restart_hold() {
    loop_.cancel(hold_timer_);
    if (neg_.hold_time == 0) return;
    hold_timer_ = loop_.after_ms(int64_t{neg_.hold_time} * 1000, [this] {
        hold_timer_ = 0;
        fail(Notification{err::hold_timer, 0, {}}, "hold timer expired");
    });
}

void Session::start_keepalive() {
    loop_.cancel(keepalive_timer_);
    if (neg_.hold_time == 0) return;
    int64_t every = std::max<int64_t>(1000, int64_t{neg_.hold_time} * 1000 / 3);
    keepalive_timer_ = loop_.after_ms(every, [this] {
        keepalive_timer_ = 0;
        if (fd_ < 0) return;
        queue(encode_keepalive());
        flush();
        start_keepalive();
    });
}

void Session::handle(std::span<const uint8_t> msg, MsgType type) {
    if (type == MsgType::notification) {
        auto d = decode(msg, neg_.ctx);
        Notification n = std::holds_alternative<Notification>(d.msg) ? std::get<Notification>(d.msg) : Notification{};
        if (h_.notification) h_.notification(*this, n, false);
        drop("NOTIFICATION received: " + n.describe());
        return;
    }
    switch (state_) {
        case State::open_sent: {
            if (type != MsgType::open) {
                fail(Notification{err::fsm, 1, {}}, fmt::format("unexpected {} in OpenSent", to_string(type)));
                return;
            }
            auto d = decode(msg);
            if (d.outcome == Outcome::session_reset) {
                fail(*d.error, "bad OPEN: " + (d.warnings.empty() ? d.error->name() : d.warnings[0]));
                return;
            }
            const auto& o = std::get<Open>(d.msg);
            if (cfg_.peer_as && o.asn != cfg_.peer_as) {
                Bytes data{uint8_t(o.my_as_field >> 8), uint8_t(o.my_as_field)};
                fail(Notification{err::open, err::bad_peer_as, data},
                     fmt::format("peer AS {} is not the configured {}", o.asn, cfg_.peer_as));
                return;
            }
            if (o.router_id == cfg_.router_id && o.asn == cfg_.local_as) {
                fail(Notification{err::open, err::bad_bgp_id, {}}, "peer BGP identifier equals ours");
                return;
            }
            neg_.peer_open = o;
            neg_.hold_time = std::min(cfg_.hold_time, o.hold_time);
            neg_.ctx = Context{};
            neg_.ctx.four_octet_as = o.four_octet_as && cfg_.four_octet_as;
            neg_.families.clear();
            // RFC 4760: a peer without MP capabilities speaks IPv4 unicast only.
            std::vector<AfiSafi> theirs = o.multiprotocol.empty() ? std::vector<AfiSafi>{ipv4_unicast} : o.multiprotocol;
            for (auto af : cfg_.families)
                if (std::find(theirs.begin(), theirs.end(), af) != theirs.end()) neg_.families.push_back(af);
            neg_.route_refresh = o.route_refresh;
            neg_.graceful_restart = o.graceful_restart.has_value() && cfg_.graceful_restart_time.has_value();
            queue(encode_keepalive());
            flush();
            if (fd_ < 0) return;
            set_state(State::open_confirm);
            restart_hold();
            start_keepalive();
            return;
        }
        case State::open_confirm:
            if (type == MsgType::keepalive) {
                restart_hold();
                set_state(State::established);
                if (fd_ >= 0 && on_writable) on_writable(*this);
                return;
            }
            fail(Notification{err::fsm, 2, {}}, fmt::format("unexpected {} in OpenConfirm", to_string(type)));
            return;
        case State::established: {
            restart_hold();
            if (type == MsgType::keepalive) return;
            if (type == MsgType::update) {
                ++updates_in_;
                auto d = decode(msg, neg_.ctx);
                if (d.outcome == Outcome::session_reset) {
                    fail(*d.error, "bad UPDATE: " + (d.warnings.empty() ? d.error->name() : d.warnings[0]));
                    return;
                }
                if (h_.update) h_.update(*this, d);
                return;
            }
            if (type == MsgType::route_refresh) {
                auto d = decode(msg, neg_.ctx);
                if (d.outcome == Outcome::session_reset) {
                    fail(*d.error, "bad ROUTE-REFRESH");
                    return;
                }
                if (h_.route_refresh) h_.route_refresh(*this, std::get<RouteRefresh>(d.msg));
                return;
            }
            fail(Notification{err::fsm, 3, {}}, fmt::format("unexpected {} in Established", to_string(type)));
            return;
        }
        default: return;
    }
}

void Session::fail(const Notification& n, const std::string& reason) {
    if (fd_ >= 0) {
        // Best effort: what is queued, then the NOTIFICATION, without waiting.
        queue(encode_notification(n));
        int fl = fcntl(fd_, F_GETFL);
        fcntl(fd_, F_SETFL, fl & ~O_NONBLOCK);
        timeval tv{1, 0};
        setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        while (out_off_ < out_.size()) {
            ssize_t w = ::send(fd_, out_.data() + out_off_, out_.size() - out_off_, MSG_NOSIGNAL);
            if (w <= 0) break;
            out_off_ += static_cast<size_t>(w);
        }
        shutdown(fd_, SHUT_WR);
    }
    if (h_.notification) h_.notification(*this, n, true);
    drop(reason);
}

void Session::drop(const std::string& reason) {
    close_socket();
    set_state(State::idle, reason);
    schedule_retry();
}

}  // namespace edge::bgp
