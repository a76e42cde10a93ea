// edgectl lab: the files a lab runs from: each tool's config (edgectl render), BIRD's
// config for the ISP, nginx's for the origin and its content.
#pragma once
#include "lab_plan.hpp"

namespace edgectl::lab {

std::string conf_dir(const Plan& pl);                         // STATE/conf
std::string conf_file(const Plan& pl, const PopPlan& p, const std::string& file);  // STATE/conf/<pop>/<file>
std::string bird_ctl(const Plan& pl);                         // BIRD's control socket
std::string bgp_sock(const PopPlan& p);                       // bgp-announce's control socket
std::string bird_proto(const PopPlan& p);                     // BIRD protocol name of a PoP's session
std::string access_log(const PopPlan& p, size_t backend);     // cache-proxy's access log
std::string origin_dir(const Plan& pl);

// Renders the stack (with per-backend weights as given) into conf_dir.
void write_tool_configs(const Plan& pl, const Stack& s);
void write_peer_configs(const Plan& pl);                      // bird.conf, nginx.conf, www/

}  // namespace edgectl::lab
