#include "pcap/parallel_scan.hpp"

#include <sched.h>

#include <algorithm>

namespace edge::pcap {

unsigned scan_threads(unsigned max) {
    cpu_set_t set;
    unsigned n = 1;
    if (sched_getaffinity(0, sizeof set, &set) == 0) n = static_cast<unsigned>(CPU_COUNT(&set));
    return std::clamp(n, 1u, max);
}

}  // namespace edge::pcap
