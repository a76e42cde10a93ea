// The {"type":"flow",...} record that crosses tool boundaries (see edge-formats(7)):
//   {"type":"flow","src":"198.51.100.7","sport":5555,"dst":"203.0.113.10","dport":443,
//    "proto":"tcp","flow":"198.51.100.7:5555-203.0.113.10:443/tcp", ...tool fields}
// Readers accept either the "flow" string or the src/sport/dst/dport/proto fields.
#pragma once
#include "json/json.hpp"

#include "edge/flow.h"
#include "net/result.hpp"
#include "out/record.hpp"

namespace edge::records {

// A "flow" record with the five-tuple fields; callers add their own fields after.
out::Record flow(const edge_flow_key& key);

// Reads the flow key from a JSON object; the error says which field is missing or wrong.
net::Result<edge_flow_key> flow_from_json(json::Value obj);

}  // namespace edge::records
