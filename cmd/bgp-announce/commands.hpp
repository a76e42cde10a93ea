// The command language of bgp-announce: text lines (ExaBGP-like) and JSON Lines, read
// from stdin, the control socket and config files. See bgp-announce(8) for the grammar.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>


#include "bgp/message.hpp"
#include "json/json.hpp"
#include "net/result.hpp"

namespace bgp_announce {

namespace bgp = edge::bgp;
namespace net = edge::net;

// Route attributes as the user gives them; turned into wire attributes per peer
// (next hop self, local AS prepended for eBGP, LOCAL_PREF for iBGP only).
struct RouteAttrs {
    uint8_t origin = bgp::origin_igp;
    std::optional<net::IpAddr> next_hop;  // nullopt = self
    std::optional<uint32_t> med;
    std::optional<uint32_t> local_pref;
    int prepend = 0;                      // extra copies of the local AS
    std::vector<uint32_t> as_path;        // ASes after ours (e.g. a customer's origin)
    std::vector<uint32_t> communities;
    std::vector<bgp::LargeCommunity> large_communities;
    std::vector<bgp::ExtCommunity> ext_communities;
    bool operator==(const RouteAttrs&) const = default;
    std::string key() const;  // canonical text, for interning
};

struct Command {
    enum class Kind { announce, withdraw, withdraw_all, status, routes, metrics } kind = Kind::announce;
    std::vector<net::Prefix> prefixes;
    std::vector<bgp::FlowSpec> flows;
    RouteAttrs attrs;
    std::optional<int64_t> duration_s;  // withdraw automatically after this long
};

// One text line. Empty lines and '#' comments give a nullopt value (nothing to do).
net::Result<std::optional<Command>> parse_text(std::string_view line);
// One JSON object: announce/withdraw/mitigation records (see bgp-announce(8)).
net::Result<Command> parse_json(edge::json::Value obj);
// Either, by the first non-blank character.
net::Result<std::optional<Command>> parse_line(std::string_view line, edge::json::Document& parser);

// Shared by config and commands.
std::optional<uint8_t> parse_origin(std::string_view s);
net::Result<bgp::ExtCommunity> parse_ext_community(std::string_view s);  // rt:ASN:N, rate-limit:BPS, 0xHEX16

}  // namespace bgp_announce
