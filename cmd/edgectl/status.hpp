// edgectl status: one view of every running component of the lab, read from their own
// control interfaces: bgp-announce's control socket, BIRD's, xdp-lb's and
// synflood-guard's pinned maps (their status/stats commands in the daemon's namespaces),
// cache-proxy's admin listener.
#pragma once
#include "out/output.hpp"

namespace edgectl {

// Exit 0 when every component runs, 1 otherwise (or when no lab is up).
int run_status(edge::out::Output& out);

}  // namespace edgectl
