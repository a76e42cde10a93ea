// FlowSpec NLRI (RFC 8955 for IPv4, RFC 8956 for IPv6): encode, decode, and a text form.
//
// Text form (also the stdin grammar of bgp-announce, components in any order):
//   destination 203.0.113.7/32 source 10.0.0.0/8 protocol tcp destination-port =80,=443
//   source-port >=1024&<=65535 tcp-flags syn&!ack packet-length >=1000 icmp-type 8
//   icmp-code 0 dscp 46 fragment is-fragment port 53 flow-label 5
// A numeric list is OR-ed alternatives separated by ',' each an AND ('&') of terms
// [<|>|<=|>=|=|!=]N (a bare N means =N). Bitmask lists (tcp-flags, fragment) are terms
// [!][=]FLAG|FLAG... where '=' asks for an exact match.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "net/addr.hpp"
#include "net/result.hpp"

namespace edge::bgp {

namespace flow {
constexpr uint8_t destination = 1, source = 2, protocol = 3, port = 4, destination_port = 5, source_port = 6,
                  icmp_type = 7, icmp_code = 8, tcp_flags = 9, packet_length = 10, dscp = 11, fragment = 12,
                  flow_label = 13;
// Operator byte bits without the end-of-list and length bits.
constexpr uint8_t op_and = 0x40;
constexpr uint8_t op_lt = 0x04, op_gt = 0x02, op_eq = 0x01;    // numeric
constexpr uint8_t op_not = 0x02, op_match = 0x01;               // bitmask
}  // namespace flow

struct FlowOp {
    uint8_t op = 0;  // and/lt/gt/eq (numeric) or and/not/match (bitmask); length and end bits are derived
    uint64_t value = 0;
    bool operator==(const FlowOp&) const = default;
};

struct FlowComponent {
    uint8_t type = 0;
    net::Prefix prefix;    // destination / source
    uint8_t offset = 0;    // IPv6 prefix offset (RFC 8956)
    std::vector<FlowOp> ops;
    bool operator==(const FlowComponent&) const = default;
};

struct FlowSpec {
    net::Family family = net::Family::v4;
    std::vector<FlowComponent> components;  // strictly increasing type
    bool operator==(const FlowSpec&) const = default;

    std::string to_string() const;
    static net::Result<FlowSpec> parse(std::string_view text, net::Family family_hint = net::Family::v4);
};

// Appends one NLRI (length + components).
void encode_flowspec(std::vector<uint8_t>& out, const FlowSpec& f);
// Decodes every NLRI of an MP_REACH/MP_UNREACH FlowSpec field. Empty error string = ok.
net::Result<std::vector<FlowSpec>> decode_flowspec(std::span<const uint8_t> nlri, net::Family family);

}  // namespace edge::bgp
