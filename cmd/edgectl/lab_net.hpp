// edgectl lab: namespaces, veths, bridges, addresses, routes and sysctls of a plan.
#pragma once
#include "lab_plan.hpp"
#include "lab_state.hpp"

namespace edgectl::lab {

// Creates everything (each namespace recorded in the state before it exists).
void build_network(const Plan& pl, State& st);

// Writes a sysctl inside a namespace (/proc/sys of the namespace this thread is in).
void ns_sysctl(const std::string& ns, const std::string& key, const std::string& value);

}  // namespace edgectl::lab
