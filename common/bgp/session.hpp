// One BGP peer: the RFC 4271 finite state machine over a non-blocking TCP socket driven
// by a Loop. Active (we dial, with connect-retry) and/or passive (a listener hands us
// accepted sockets), hold and keepalive timers, capability negotiation, RFC 7606 UPDATE
// error handling, optional TCP MD5 (RFC 2385). Routes are the owner's business: the
// session reports received UPDATEs and lets the owner queue outgoing bytes.
#pragma once
#include <functional>
#include <optional>
#include <string>

#include "bgp/loop.hpp"
#include "bgp/message.hpp"
#include "net/addr.hpp"

namespace edge::bgp {

enum class State : uint8_t { idle, connect, active, open_sent, open_confirm, established };
const char* to_string(State s);

struct PeerConfig {
    std::string name;             // for logs; defaults to the address
    net::IpAddr address;
    uint16_t port = 179;
    std::optional<net::IpAddr> local_address;  // bind before connecting (and match accepted sockets)
    uint16_t local_port = 0;                   // bind port for outgoing connections (0 = any)
    uint32_t peer_as = 0;                      // 0 = accept any
    uint32_t local_as = 0;
    uint32_t router_id = 0;
    uint16_t hold_time = 90;                   // 0 or >= 3
    int connect_retry_s = 5;
    bool passive = false;                      // never dial, only accept
    std::string md5_password;                  // TCP MD5 signature (RFC 2385) when not empty
    std::vector<AfiSafi> families{ipv4_unicast};
    std::optional<uint16_t> graceful_restart_time;  // advertise GR (RFC 4724) with this restart time
    bool four_octet_as = true;                 // advertise the capability (off to test AS4_PATH)
    int ttl = 0;                               // IP TTL / hop limit for the session (0 = system default)
};

// Negotiated facts, valid from OpenConfirm on.
struct Negotiated {
    Open peer_open;
    Context ctx;
    uint16_t hold_time = 0;
    std::vector<AfiSafi> families;  // both sides advertised
    bool route_refresh = false;
    bool graceful_restart = false;
    net::IpAddr local_address;  // of the TCP connection
    uint16_t local_port = 0;
};

class Session {
public:
    struct Handlers {
        // Every state change; `reason` says why (empty for the normal path).
        std::function<void(Session&, State from, State to, const std::string& reason)> state;
        // A decoded UPDATE (outcome ok, attribute_discard or treat_as_withdraw).
        std::function<void(Session&, const Decoded&)> update;
        std::function<void(Session&, const RouteRefresh&)> route_refresh;
        // A NOTIFICATION received from or sent to the peer.
        std::function<void(Session&, const Notification&, bool sent)> notification;
    };

    Session(Loop& loop, PeerConfig cfg, Handlers h);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // ManualStart: dial (unless passive) and accept.
    void start();
    // ManualStop: send `n` when a connection is up, close, stay idle (no reconnect).
    void stop(const Notification& n);
    // An accepted socket from this peer's address. Takes ownership; returns false (and
    // closes it) when the FSM cannot take it now (collision with an established session).
    bool accept(int fd);

    // Queue raw messages (one or more, already encoded) to send; only when established.
    void send(std::span<const uint8_t> bytes);
    size_t queued() const { return out_.size() - out_off_; }
    // Called when the send queue drains below a threshold, to produce more output.
    std::function<void(Session&)> on_writable;

    State state() const { return state_; }
    const PeerConfig& config() const { return cfg_; }
    const Negotiated& negotiated() const { return neg_; }
    const std::string& name() const { return cfg_.name; }
    uint64_t updates_received() const { return updates_in_; }
    uint64_t updates_sent() const { return updates_out_; }
    int64_t established_since_ms() const { return established_at_; }
    const std::string& last_error() const { return last_error_; }

private:
    void set_state(State s, const std::string& reason = {});
    void connect();
    void on_connect_retry();
    void on_socket(uint32_t ev);
    void connected();
    void send_open();
    void read_ready();
    void write_ready();
    void handle(std::span<const uint8_t> msg, MsgType type);
    void fail(const Notification& n, const std::string& reason);
    void drop(const std::string& reason);  // close without NOTIFICATION
    void close_socket();
    void restart_hold();
    void start_keepalive();
    void schedule_retry();
    void queue(const Bytes& b);
    void flush();

    Loop& loop_;
    PeerConfig cfg_;
    Handlers h_;
    State state_ = State::idle;
    bool started_ = false;
    int fd_ = -1;
    Bytes in_;
    Bytes out_;
    size_t out_off_ = 0;
    bool want_write_ = false;
    Loop::TimerId retry_timer_ = 0, hold_timer_ = 0, keepalive_timer_ = 0;
    Negotiated neg_;
    uint64_t updates_in_ = 0, updates_out_ = 0;
    int64_t established_at_ = 0;
    std::string last_error_;
};

// Listening socket that hands accepted connections to the session with that peer address.
// Returns the fd (non-blocking, CLOEXEC). Throws edge::Failure when bind fails.
int listen_on(const net::Endpoint& ep);
// Sets TCP MD5 for `peer` on a socket (listening or connecting). Returns an errno or 0.
int set_tcp_md5(int fd, const net::IpAddr& peer, const std::string& key);

}  // namespace edge::bgp
