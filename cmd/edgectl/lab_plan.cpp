// edgectl lab: names and addresses of the lab, from the stack file.
#include "lab_plan.hpp"

#include <cstdlib>

#include <fmt/format.h>

#include "cli/error.hpp"

namespace edgectl::lab {

using edge::net::IpAddr;

namespace {

// a.b.c.LAST
std::string with_last(const IpAddr& a, int last) {
    auto b = a.bytes();
    return fmt::format("{}.{}.{}.{}", b[0], b[1], b[2], last);
}

std::string v6_peer(const IpAddr& a) {
    std::vector<uint8_t> b(a.bytes().begin(), a.bytes().end());
    b[15] = b[15] == 1 ? 2 : 1;
    return IpAddr::from_bytes(b)->to_string();
}

bool same24(const IpAddr& a, const IpAddr& b) {
    return a.is_v4() && b.is_v4() && a.bytes()[0] == b.bytes()[0] && a.bytes()[1] == b.bytes()[1] && a.bytes()[2] == b.bytes()[2];
}

}  // namespace

std::string state_dir() {
    if (const char* d = getenv("EDGE_LAB_DIR"); d && *d) return d;
    return "/run/edge-lab";
}

std::vector<std::string> Plan::namespaces() const {
    std::vector<std::string> v{ns_isp, ns_cli, ns_atk, ns_org};
    for (auto& p : pops) {
        v.push_back(p.ns_rtr);
        v.push_back(p.ns_lb);
        for (auto& b : p.backends) {
            v.push_back(b.ns);
            v.push_back(b.ns_srv);
        }
    }
    return v;
}

const PopPlan& Plan::pop(const std::string& name) const {
    for (auto& p : pops)
        if (p.name == name || p.key == name) return p;
    std::string names;
    for (auto& p : pops) names += (names.empty() ? "" : ", ") + p.name;
    edge::usage_error("no PoP '{}' in the lab (PoPs: {})", name, names);
}

Plan make_plan(Stack s, const std::string& dir) {
    Plan pl;
    pl.dir = dir;
    const std::string where = s.path;
    for (auto& v : s.vips)
        if (v.address.is_v4() && pl.vip.empty())
            for (auto& svc : v.services)
                if (svc.proto == "tcp" && svc.port == s.cache_port) pl.vip = v.address.to_string();
    if (pl.vip.empty()) edge::usage_error("{}: the lab needs an IPv4 VIP with service {}/tcp (the cache port)", where, s.cache_port);
    pl.port = s.cache_port;
    auto org = edge::net::Endpoint::parse(s.origin);
    if (!org || !org->addr.is_v4()) edge::usage_error("{}: the lab needs [cache] origin = \"IPv4:PORT\"", where);
    pl.org_addr = org->addr.to_string();
    pl.org_port = org->port;
    pl.org_gw = with_last(org->addr, org->addr.bytes()[3] == 1 ? 254 : 1);
    if (s.pops.empty() || s.pops.size() > 8) edge::usage_error("{}: the lab builds 1..8 PoPs, the stack has {}", where, s.pops.size());
    for (size_t i = 0; i < s.pops.size(); i++) {
        auto& p = s.pops[i];
        PopPlan pp;
        pp.name = p.name;
        pp.key = std::string(1, static_cast<char>('a' + i));
        pp.dir = dir + "/" + p.name;
        pp.ns_rtr = "el-" + pp.key + "-rtr";
        pp.ns_lb = "el-" + pp.key + "-lb";
        pp.up_if = "el-" + pp.key + "-up";
        pp.isp_if = "el-i-p" + pp.key;
        const Peer* peer = nullptr;
        for (auto& q : p.peers)
            if (q.address.is_v4() && q.local_address && q.local_address->is_v4()) peer = &q;
        if (!peer || p.peers.size() != 1)
            edge::usage_error("{}: PoP {}: the lab needs exactly one IPv4 [[pop.peer]] with local_address (the ISP)", where, p.name);
        if (!same24(peer->address, *peer->local_address))
            edge::usage_error("{}: PoP {}: peer address and local_address must share a /24 in the lab", where, p.name);
        if (pl.isp_as && pl.isp_as != peer->remote_as)
            edge::usage_error("{}: PoP {}: every PoP must peer with the same ISP AS in the lab ({} vs {})", where, p.name,
                              peer->remote_as, pl.isp_as);
        pl.isp_as = peer->remote_as;
        pp.isp_addr = peer->address.to_string();
        pp.pop_addr = peer->local_address->to_string();
        if (peer->next_hop6) {
            pp.pop_addr6 = peer->next_hop6->to_string();
            pp.isp_addr6 = v6_peer(*peer->next_hop6);
        }
        if (p.backends.empty() || p.backends.size() > 9)
            edge::usage_error("{}: PoP {}: the lab runs 1..9 backends per PoP", where, p.name);
        const IpAddr& first = p.backends[0].address;
        for (auto& b : p.backends) {
            if (!same24(b.address, first) || b.address.bytes()[3] < 3 || b.address.bytes()[3] > 254)
                edge::usage_error("{}: PoP {}: the lab needs IPv4 backends in one /24, host parts 3..254 (.1 is the router, .2 the balancer)",
                                  where, p.name);
        }
        pp.br = "el-" + pp.key + "-br";
        pp.br_addr = with_last(first, 1);
        pp.lb_addr = with_last(first, 2);
        pp.lb_if = "el-" + pp.key + "-lb0";
        pp.lb_port = "el-" + pp.key + "-lbp";
        pp.inner_net = fmt::format("100.64.{}.0/24", i + 1);
        for (size_t j = 0; j < p.backends.size(); j++) {
            BackendPlan b;
            std::string id = fmt::format("{}{}", pp.key, j + 1);
            b.addr = p.backends[j].address.to_string();
            b.ns = "el-" + id;
            b.ns_srv = "el-" + id + "s";
            b.port = "el-" + id + "-p";
            b.out_if = "el-" + id + "-o";
            b.in_if = "el-" + id + "-i";
            b.srv_if = "el-" + id + "s-0";
            b.in_addr = fmt::format("100.64.{}.{}", i + 1, 4 * (j + 1) + 1);
            b.srv_addr = fmt::format("100.64.{}.{}", i + 1, 4 * (j + 1) + 2);
            b.link_net = fmt::format("100.64.{}.{}/30", i + 1, 4 * (j + 1));
            pp.backends.push_back(b);
        }
        for (auto& pr : s.prefixes)
            if (pr.family() == edge::net::Family::v4) pp.v4_prefixes.push_back(pr.to_string());
            else if (!pp.pop_addr6.empty()) pp.v6_prefixes.push_back(pr.to_string());
        // IPv6 inside the PoP (the client's IPv6 requests): fd00:e1:N::/64 on the LAN,
        // fd00:e2:N:J::/64 between each backend host and its server.
        if (!pp.pop_addr6.empty()) {
            pp.br_addr6 = fmt::format("fd00:e1:{}::1", i + 1);
            pp.lb_addr6 = fmt::format("fd00:e1:{}::2", i + 1);
            for (size_t j = 0; j < pp.backends.size(); j++) {
                auto& b = pp.backends[j];
                b.addr6 = fmt::format("fd00:e1:{}::{}", i + 1, 10 + j + 1);
                b.in_addr6 = fmt::format("fd00:e2:{}:{}::1", i + 1, j + 1);
                b.srv_addr6 = fmt::format("fd00:e2:{}:{}::2", i + 1, j + 1);
            }
        }
        p.health = fmt::format("command:test -f {}/healthy", pp.dir);
        pl.pops.push_back(pp);
    }
    bool v6 = true;
    for (auto& pp : pl.pops) v6 = v6 && !pp.pop_addr6.empty();
    for (auto& v : s.vips)
        if (v6 && v.address.is_v6() && pl.vip6.empty())
            for (auto& svc : v.services)
                if (svc.proto == "tcp" && svc.port == s.cache_port) pl.vip6 = v.address.to_string();
    pl.stack = std::move(s);
    return pl;
}

}  // namespace edgectl::lab
