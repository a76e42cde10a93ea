// edgectl lab demo: the steps of the demo, each showing one layer and asserting it.
#pragma once
#include <string>

#include "lab_plan.hpp"
#include "lab_state.hpp"
#include "out/output.hpp"

namespace edgectl::lab {

class Demo {
public:
    Demo(const Plan& pl, edge::out::Output& out);
    void routes();
    void miss_hit();
    void ipv6();  // a request from the client to the IPv6 VIP, the same path
    void failover();
    void drain();
    void flood();
    void stats();
    void start_captures();  // tcpdump on the ISP's link to every PoP
    void captures();        // stop them; synflood-guard detect and maglev-calc pcap on each

private:
    void section(const std::string& title);
    void show(const std::string& text);
    void check(bool ok, const std::string& what);
    std::string best();                                // the PoP holding BIRD's best route, asserted
    const PopPlan& other(const std::string& pop) const;
    // New flows xdp-lb counted at a PoP: for the VIP's service, or for one backend.
    uint64_t lb_flows(const PopPlan& p, const std::string& backend = "");
    uint64_t lb_service_flows(const PopPlan& p, const std::string& service);  // "[2001:db8::10]:80/tcp"
    void reload_lb(const PopPlan& p, const Stack& s);  // render, SIGHUP xdp-lb, wait for "reloaded"

    const Plan& pl_;
    State st_;
    edge::out::Output& out_;
    std::string prefix_;
    int step_ = 0;
    std::string flooded_;  // the PoP the SYN flood went to
};

}  // namespace edgectl::lab
