// bgp-announce decode (MRT dumps and packet captures) and validate (RPKI origin
// validation and prefix monitoring over decode's JSON Lines).
#pragma once
#include "cli/tool.hpp"

namespace bgp_announce {

void add_decode_command(edge::cli::Tool& tool);
void add_validate_command(edge::cli::Tool& tool);

}  // namespace bgp_announce
