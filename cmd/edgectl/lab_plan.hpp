// edgectl lab: the lab's topology (namespaces, links, addresses) derived from a stack.
//
//   el-cli (client) --+                      +-- el-a-rtr --br-- el-a-lb (xdp-lb)
//   el-atk (attacker) +-- el-isp (BIRD) -----+      |  +-- el-a1 (decap) -- el-a1s (guard, cache-proxy)
//   el-org (nginx) ---+                      |      ...
//                                            +-- el-b-rtr ...
#pragma once
#include <string>
#include <vector>

#include "stack.hpp"

namespace edgectl::lab {

struct BackendPlan {
    std::string addr;                 // the stack's backend address, on the PoP bridge
    std::string ns, ns_srv;           // el-a1 (decap), el-a1s (guard + cache-proxy)
    std::string port;                 // bridge port in the router namespace
    std::string out_if, in_if;        // in ns: from the bridge (decap), to the server (guard's peer)
    std::string srv_if;               // in ns_srv (guard)
    std::string in_addr, srv_addr;    // the /30 between ns and ns_srv
    std::string link_net;             // that /30
    std::string addr6, in_addr6, srv_addr6;  // IPv6 (PoPs with an IPv6 next hop): on the bridge, the /64 to the server
};

struct PopPlan {
    std::string name, key;            // "pop-a", "a"
    std::string dir;                  // STATE/pop-a
    std::string ns_rtr, ns_lb;
    std::string up_if, isp_if;        // router side, ISP side
    std::string isp_addr, pop_addr;   // the BGP session (the stack's peer address, local_address)
    std::string isp_addr6, pop_addr6; // "" when the peer carries no IPv6 next hop
    std::string br, br_addr, lb_addr, lb_if, lb_port;
    std::string inner_net;            // 100.64.N.0/24: the guard links, routed back by the ISP
    std::vector<BackendPlan> backends;
    std::vector<std::string> v4_prefixes;
    std::string br_addr6, lb_addr6;   // IPv6 on the PoP's LAN ("" when the PoP carries no IPv6)
    std::vector<std::string> v6_prefixes;
};

struct Plan {
    Stack stack;
    std::string dir;                  // state directory
    std::string ns_isp = "el-isp", ns_cli = "el-cli", ns_atk = "el-atk", ns_org = "el-org";
    std::string cli_addr = "10.8.0.2", cli_gw = "10.8.0.1", atk_addr = "10.8.1.2", atk_gw = "10.8.1.1";
    std::string org_addr, org_gw;
    uint16_t org_port = 8080;
    std::string vip;                  // the first IPv4 VIP
    std::string vip6;                 // the first IPv6 VIP on the cache port ("" if none or no PoP carries IPv6)
    std::string cli_addr6 = "fd00:8::2", cli_gw6 = "fd00:8::1";
    uint16_t port = 80;               // cache-proxy's port on the VIP
    uint32_t isp_as = 0;
    std::vector<PopPlan> pops;

    std::vector<std::string> namespaces() const;
    const PopPlan& pop(const std::string& name) const;  // by name or key
};

// The lab's state directory: $EDGE_LAB_DIR, else /run/edge-lab.
std::string state_dir();

// Checks that the stack fits the lab (IPv4 VIP on the cache port, one IPv4 peer per PoP with a
// local address, one ISP AS, backends in one /24 without .1/.2) and lays the lab out.
// Each PoP's health check becomes `test -f STATE/<pop>/healthy` (the demo fails it).
Plan make_plan(Stack s, const std::string& dir);

}  // namespace edgectl::lab
