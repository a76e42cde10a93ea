// Helpers around edge_flow_key (bpf/include/edge/flow.h): build one from
// addresses, and format/parse the one-line text form used by every tool:
//   198.51.100.7:5555-203.0.113.10:443/tcp
//   [2001:db8::1]:5555-[2001:db8::2]:443/udp
//   10.0.0.1-10.0.0.2/icmp          (icmp/icmpv6 only: ports omitted)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <edge/flow.h>

#include "net/addr.hpp"
#include "net/result.hpp"

namespace edge::net {

// IP protocol numbers this module names.
inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;
inline constexpr uint8_t kProtoIcmpv6 = 58;

// "tcp", "udp", "icmp", "icmpv6", or the decimal number for anything else.
std::string proto_to_string(uint8_t proto);
// A name above (lower case) or a decimal number 0..255.
std::optional<uint8_t> proto_from_string(std::string_view text);

// Ports in host order (stored big-endian). Every byte is zeroed first, as the
// hash requires. Precondition: src and dst have the same family (the key
// takes src's family; only that family's bytes of dst are copied).
edge_flow_key make_flow_key(const IpAddr& src, uint16_t sport, const IpAddr& dst, uint16_t dport,
                            uint8_t proto);

// Accessors that undo the wire encoding.
IpAddr flow_src(const edge_flow_key& key);
IpAddr flow_dst(const edge_flow_key& key);
uint16_t flow_sport(const edge_flow_key& key);  // host order
uint16_t flow_dport(const edge_flow_key& key);  // host order

// Ports are omitted only for icmp/icmpv6 keys whose ports are both zero.
std::string format_flow(const edge_flow_key& key);
// Accepts exactly what format_flow() prints (and icmp/icmpv6 with ports,
// and bare or bracketed IPv6 when there is no port). Errors name the culprit.
Result<edge_flow_key> parse_flow(std::string_view text);

bool operator==(const edge_flow_key& a, const edge_flow_key& b);

}  // namespace edge::net
