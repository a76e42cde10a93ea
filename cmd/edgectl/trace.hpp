// edgectl trace: one flow explained layer by layer — the PoP the ISP routes it to and why,
// the backend Maglev picks there, what the guard would do, the cache key and whether it is
// cached. Live from a running lab when one is up (BIRD's best path, the guard's mode, the
// backend's cache), else predicted from the stack alone.
#pragma once
#include <string>

#include "out/output.hpp"

namespace edgectl {

struct TraceOptions {
    std::string file, flow, path = "/", host;
};

struct Stack;
// The PoP BGP prefers by the stack alone: shortest AS path (with prepends), lowest MED,
// lowest router ID.
std::string predicted_pop(const Stack& s);

int run_trace(const TraceOptions& o, edge::out::Output& out);

}  // namespace edgectl
