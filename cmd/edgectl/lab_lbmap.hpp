// edgectl: reading a running xdp-lb's maps — its live Maglev table and its connection table —
// for one flow. The maps are found from the XDP program attached to the balancer's interface
// (program id -> map ids -> map fds by id), so neither bpffs pins nor mount namespaces matter.
// Layouts come from bpf/include/edge/lb.h; a map whose key or value size differs from it
// (an xdp-lb built from another lb.h) is reported, never misread.
#pragma once
#include <cstdint>
#include <string>

#include "edge/flow.h"

namespace edgectl::lab {

struct LbFlowView {
    std::string error;              // non-empty: the maps could not be read (why)
    bool service = false;           // the VIP:port/proto is a service of this balancer
    uint64_t hash = 0;              // the flow hash with the balancer's own key
    uint32_t slot = 0, ring_size = 0;
    std::string maglev_backend;     // the live Maglev table's choice ("" when none: all drained)
    bool ct_entry = false;          // the connection table holds the flow
    std::string ct_backend;         // its backend ("" when its id is no longer a backend)
    bool ct_current = false;        // recorded under the service's current generation
};

// The flow as seen by the xdp-lb program with id prog_id (needs CAP_SYS_ADMIN / CAP_BPF).
LbFlowView lb_flow_view(uint32_t prog_id, const edge_flow_key& key);

}  // namespace edgectl::lab
