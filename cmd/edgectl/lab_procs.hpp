// edgectl lab: the lab's processes — started in their namespaces, recorded in the state,
// found again by name, their logs read back.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "lab_plan.hpp"
#include "lab_state.hpp"

namespace edgectl::lab {

std::string log_path(const std::string& dir, const std::string& name, const std::string& ext);  // ext "out" | "err"
std::string read_file(const std::string& path);

// Starts argv in namespace ns as a recorded daemon.
ProcEntry start_proc(State& st, const std::string& name, const std::string& ns, const std::vector<std::string>& argv,
                     const std::string& iface = "");
// The recorded process called name (edge::Failure when absent).
ProcEntry find_proc(const State& st, const std::string& name);
// Throws edge::Failure naming the first recorded process that exited, with its last error line.
void check_procs(const State& st);

// Polls pred every 100 ms for up to secs (checking the processes too); edge::Failure
// "what: not within N s" when it never holds. Returns the seconds it took.
double wait_until(const State& st, const std::string& what, double secs, const std::function<bool()>& pred);

// Starts every daemon of the plan (configs must be written).
void start_all(const Plan& pl, State& st);

// argv that runs a tool inside a daemon's namespaces (nsenter -t PID -m -n): its pinned maps.
std::vector<std::string> in_proc(const ProcEntry& p, std::vector<std::string> argv);

}  // namespace edgectl::lab
