// edgectl lab: the whole edge on one machine in network namespaces (see lab_plan.hpp for
// the picture). up/down/status/demo, each a subcommand of `edgectl lab`.
#pragma once
#include <string>

#include "out/output.hpp"
#include "lab_plan.hpp"
#include "lab_state.hpp"

namespace edgectl::lab {

int up(const std::string& file, edge::out::Output& out);
int down(edge::out::Output& out);
int status(edge::out::Output& out);
int demo(const std::string& file, edge::out::Output& out);

// Shared by up and demo: builds and starts the lab, waits until traffic flows; on any
// failure or interrupt removes everything and rethrows.
Plan bring_up(const std::string& file, edge::out::Output& out);
void say(edge::out::Output& out, const std::string& step, const std::string& text);

}  // namespace edgectl::lab
