// edgectl lab: reading the running lab back — BIRD's routes and FIB, bgp-announce's
// sessions, XDP programs on the lab's interfaces, counters of the tools.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lab_plan.hpp"
#include "lab_state.hpp"

namespace edgectl::lab {

struct BirdRoute {
    std::string proto, via, as_path;
    std::optional<uint32_t> med;  // BGP.med (none: no MED attribute)
    bool best = false;
};
// The routes BIRD holds for a prefix (all paths).
// *ok: whether birdc answered (an empty list then means BIRD has no route).
std::vector<BirdRoute> bird_routes(const std::string& ctl, const std::string& prefix, bool* ok = nullptr);
// The PoP whose session carries BIRD's best route ("" if none).
std::string best_pop(const Plan& pl, const std::string& ctl, const std::string& prefix);
// `ip route get ADDR` in a namespace: the next hop ("" if unreachable).
std::string fib_next_hop(const std::string& ns, const std::string& addr);

struct BgpPeer {
    std::string peer, state;
    uint64_t announced = 0;
};
std::vector<BgpPeer> bgp_peers(const std::string& sock);

struct XdpProg {
    std::string ns, ifname, mode;
    uint32_t id = 0;
};
std::vector<XdpProg> xdp_progs(const std::string& ns);

// A number from a JSON line: "key":N in the first line whose "type" is type (0 if absent).
double json_num(const std::string& jsonl, const std::string& type, const std::string& key);
// Runs a tool in a lab daemon's namespaces, -j output ("" on failure).
std::string tool_json(const ProcEntry& p, const std::vector<std::string>& argv);
// GET http://127.0.0.1:9090/stats inside a namespace (cache-proxy's admin listener).
std::string cache_stats(const std::string& ns, const std::string& admin);
// Established TCP connections to port on local addresses in a namespace: "PEER:PORT" each.
std::vector<std::string> established(const std::string& ns, uint16_t port);
// Lines of a file, counted; lines containing needle.
size_t count_lines(const std::string& path, const std::string& needle = "");

}  // namespace edgectl::lab
