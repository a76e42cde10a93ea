// UPDATE packing: many prefixes sharing one attribute set per message, up to the
// negotiated message size (4096 bytes), written straight into an output buffer.
#pragma once
#include <span>
#include <stdexcept>

#include "bgp/message.hpp"

namespace edge::bgp {

// Appends UPDATEs announcing `nlri` of family `af` with `attrs` (IPv4 unicast: attrs.next_hop
// is the NEXT_HOP; other families: `next_hops` go in MP_REACH_NLRI). Returns the number of
// messages. Throws std::length_error when the attributes alone do not fit in a message.
size_t pack_announce(Bytes& out, const Attributes& attrs, AfiSafi af, std::span<const net::IpAddr> next_hops,
                     std::span<const Nlri> nlri, const Context& ctx = {});
// Appends UPDATEs withdrawing `nlri` (withdrawn routes field or MP_UNREACH_NLRI).
size_t pack_withdraw(Bytes& out, AfiSafi af, std::span<const Nlri> nlri, const Context& ctx = {});
// FlowSpec rules (family from each rule; all must share one) announced with `attrs`, or withdrawn.
size_t pack_flows(Bytes& out, const Attributes& attrs, std::span<const FlowSpec> flows, bool withdraw,
                  const Context& ctx = {});

}  // namespace edge::bgp
