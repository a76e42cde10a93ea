// The speaker: sessions with every configured peer, one RIB of routes to announce (from
// config groups, stdin, the control socket), health checks, events on stdout, metrics.
#pragma once
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "rib.hpp"
#include "bgp/loop.hpp"
#include "bgp/session.hpp"
#include "config.hpp"
#include "emitter.hpp"
#include "health.hpp"

namespace bgp_announce {

struct Options {
    std::string control_socket;
    std::string metrics;
    bool withdraw_on_eof = false;
};

class Speaker {
public:
    Speaker(Config cfg, Options opt, bool json);
    ~Speaker();
    int run();

private:
    using AttrPtr = std::shared_ptr<const RouteAttrs>;
    struct Entry {
        AttrPtr attrs;
        int source = 0;  // 0 = commands, i + 1 = config group i
    };
    struct FlowEntry {
        bgp::FlowSpec spec;
        AttrPtr attrs;
        int source = 0;
    };
    struct PeerState {
        Peer cfg;
        std::unique_ptr<bgp::Session> session;
        uint64_t prefixes_sent = 0, withdrawals_sent = 0, updates_sent = 0, routes_received = 0;
        std::set<net::Prefix> received;  // what the peer announced to us (IPv4/IPv6 unicast)
    };
    struct GroupState {
        Group cfg;
        std::unique_ptr<HealthChecker> checker;
        bool healthy = false;
        bool known = false;
        int ok_run = 0, fail_run = 0;
        std::string detail;
    };

    // routes
    AttrPtr intern(const RouteAttrs& a);
    void set_route(const net::Prefix& p, const RouteAttrs& a, int source);
    void set_route(const net::Prefix& p, AttrPtr attrs, int source);
    void mark_dirty(const net::Prefix& p);
    void remove_route(const net::Prefix& p, int source);
    void set_flow(const bgp::FlowSpec& f, const RouteAttrs& a, int source);
    void remove_flow(const bgp::FlowSpec& f, int source);
    void schedule_flush();
    void flush();
    void send_all(PeerState& ps);  // whole RIB + End-of-RIB
    void send_routes(PeerState& ps, const std::vector<std::pair<net::Prefix, const Entry*>>& ann,
                     const std::vector<net::Prefix>& wd, const std::vector<const FlowEntry*>& fann,
                     const std::vector<bgp::FlowSpec>& fwd, bool eor);
    bgp::Attributes wire_attrs(const PeerState& ps, const RouteAttrs& a, bgp::AfiSafi af, std::vector<net::IpAddr>& mp_nh);
    void apply_group(GroupState& g);

    // input
    void on_stdin();
    void handle_line(std::string_view line, const std::string& where, std::string* reply);
    void apply(const Command& c, std::string* reply);
    void on_control_accept();
    void on_metrics_accept();
    std::string metrics_text() const;
    void status_records(std::string& out) const;
    void routes_records(std::string& out) const;

    // events
    void on_state(PeerState& ps, bgp::State from, bgp::State to, const std::string& reason);
    void on_update(PeerState& ps, const bgp::Decoded& d);
    void on_signal();
    void shutdown(const std::string& why);

    bgp::Loop loop_;
    Config cfg_;
    Options opt_;
    Emitter emit_;
    std::vector<std::unique_ptr<PeerState>> peers_;
    std::vector<std::unique_ptr<GroupState>> groups_;
    std::vector<int> listeners_;
    int control_fd_ = -1, metrics_fd_ = -1, signal_fd_ = -1, health_fd_ = -1;
    PrefixMap<Entry> rib_;
    std::map<std::string, FlowEntry> flows_;
    std::vector<net::Prefix> dirty_;  // may repeat; flush() sorts and dedupes (cheaper than a set)
    std::map<std::string, bgp::FlowSpec> dirty_flows_;
    std::unordered_map<std::string, std::weak_ptr<const RouteAttrs>> interned_;
    bool flush_scheduled_ = false;
    std::string stdin_buf_;
    uint64_t stdin_line_ = 0;
    bool stdin_open_ = true;
    uint64_t commands_ = 0, command_errors_ = 0;
    std::mutex health_mu_;
    std::vector<std::tuple<size_t, bool, std::string>> health_results_;
    bool stopping_ = false;
    int exit_code_ = 0;
};

}  // namespace bgp_announce
