// BGP-4 messages (RFC 4271) with the extensions an anycast speaker and a pcap/MRT decoder
// need: capabilities (RFC 5492), 4-octet AS (RFC 6793), multiprotocol (RFC 4760), route
// refresh (RFC 2918), graceful restart (RFC 4724), ADD-PATH (RFC 7911, decode), communities
// (RFC 1997, 4360, 8092), FlowSpec NLRI (RFC 8955/8956, see flowspec.hpp), shutdown
// messages (RFC 8203/9003) and revised error handling (RFC 7606).
//
// Decoding never throws and never reads out of bounds: every malformed input becomes a
// Notification to send (session reset) or, for UPDATEs, a treat-as-withdraw / attribute-discard
// outcome with warnings, as RFC 7606 prescribes.
#pragma once
#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "bgp/flowspec.hpp"
#include "net/addr.hpp"

namespace edge::bgp {

using Bytes = std::vector<uint8_t>;

constexpr size_t header_size = 19;
constexpr size_t max_message_size = 4096;     // RFC 4271
constexpr size_t max_extended_size = 65535;   // RFC 8654 (decode only)
constexpr uint16_t as_trans = 23456;          // RFC 6793

enum class MsgType : uint8_t { open = 1, update = 2, notification = 3, keepalive = 4, route_refresh = 5 };
const char* to_string(MsgType t);

constexpr uint16_t afi_ipv4 = 1, afi_ipv6 = 2;
constexpr uint8_t safi_unicast = 1, safi_flowspec = 133;

struct AfiSafi {
    uint16_t afi = afi_ipv4;
    uint8_t safi = safi_unicast;
    auto operator<=>(const AfiSafi&) const = default;
    std::string to_string() const;  // "ipv4-unicast", "ipv6-flowspec", "afi-25/safi-70"
};
constexpr AfiSafi ipv4_unicast{afi_ipv4, safi_unicast}, ipv6_unicast{afi_ipv6, safi_unicast},
    ipv4_flowspec{afi_ipv4, safi_flowspec}, ipv6_flowspec{afi_ipv6, safi_flowspec};

// ---- NOTIFICATION -------------------------------------------------------------------
namespace err {
constexpr uint8_t header = 1, open = 2, update = 3, hold_timer = 4, fsm = 5, cease = 6, route_refresh = 7;
// header subcodes
constexpr uint8_t not_synchronized = 1, bad_length = 2, bad_type = 3;
// open subcodes
constexpr uint8_t unsupported_version = 1, bad_peer_as = 2, bad_bgp_id = 3, unsupported_param = 4,
                  unacceptable_hold = 6, unsupported_capability = 7;
// update subcodes
constexpr uint8_t malformed_attr_list = 1, unrecognized_well_known = 2, missing_well_known = 3,
                  attr_flags = 4, attr_length = 5, invalid_origin = 6, invalid_next_hop = 8,
                  optional_attr = 9, invalid_network = 10, malformed_as_path = 11;
// cease subcodes (RFC 4486)
constexpr uint8_t max_prefixes = 1, admin_shutdown = 2, peer_deconfigured = 3, admin_reset = 4,
                  connection_rejected = 5, other_config_change = 6, collision = 7, out_of_resources = 8;
}  // namespace err

struct Notification {
    uint8_t code = 0;
    uint8_t subcode = 0;
    Bytes data;

    // Cease/Administrative Shutdown (or Reset) carrying an RFC 8203/9003 message
    // (UTF-8, truncated to 255 bytes on a character boundary).
    static Notification shutdown(std::string_view message, uint8_t subcode = err::admin_shutdown);
    // The RFC 8203 message when this is Cease 2/4 with well-formed data.
    std::optional<std::string> shutdown_message() const;
    // "Cease/Administrative Shutdown" (names for every RFC 4271/4486 code).
    std::string name() const;
    // name() plus the shutdown message or the data in hex.
    std::string describe() const;
    bool operator==(const Notification&) const = default;
};

// ---- OPEN ---------------------------------------------------------------------------
struct GracefulRestart {
    bool restart_state = false;  // R bit: the sender has restarted
    bool notification = false;   // N bit (RFC 8538)
    uint16_t restart_time = 0;   // seconds, 12 bits
    struct Family {
        AfiSafi af;
        bool forwarding = false;  // F bit
        bool operator==(const Family&) const = default;
    };
    std::vector<Family> families;
    bool operator==(const GracefulRestart&) const = default;
};
struct AddPathFamily {
    AfiSafi af;
    uint8_t send_receive = 1;  // 1 receive, 2 send, 3 both
    bool operator==(const AddPathFamily&) const = default;
};
struct RawCapability {
    uint8_t code = 0;
    Bytes value;
    bool operator==(const RawCapability&) const = default;
};

namespace cap {
constexpr uint8_t multiprotocol = 1, route_refresh = 2, extended_nexthop = 5, extended_message = 6,
                  graceful_restart = 64, four_octet_as = 65, add_path = 69, enhanced_route_refresh = 70,
                  route_refresh_cisco = 128;
}

struct Open {
    uint8_t version = 4;
    uint32_t asn = 0;          // the real AS (from the 4-octet capability when present)
    uint16_t hold_time = 90;
    uint32_t router_id = 0;    // host order
    // Capabilities. On encode, four_octet_as adds the capability carrying `asn` and the
    // 2-octet field becomes AS_TRANS when asn > 65535.
    bool four_octet_as = true;
    std::vector<AfiSafi> multiprotocol;
    bool route_refresh = false;
    bool enhanced_route_refresh = false;
    bool extended_message = false;
    std::optional<GracefulRestart> graceful_restart;
    std::vector<AddPathFamily> add_path;
    std::vector<RawCapability> other;  // unknown capabilities, kept in order
    uint16_t my_as_field = 0;          // decode: the 2-octet field as received
    bool operator==(const Open&) const = default;
};

// ---- UPDATE -------------------------------------------------------------------------
namespace attr {
constexpr uint8_t origin = 1, as_path = 2, next_hop = 3, med = 4, local_pref = 5, atomic_aggregate = 6,
                  aggregator = 7, communities = 8, originator_id = 9, cluster_list = 10, mp_reach = 14,
                  mp_unreach = 15, ext_communities = 16, as4_path = 17, as4_aggregator = 18,
                  large_communities = 32;
constexpr uint8_t flag_optional = 0x80, flag_transitive = 0x40, flag_partial = 0x20, flag_extended = 0x10;
}  // namespace attr

constexpr uint8_t origin_igp = 0, origin_egp = 1, origin_incomplete = 2;
constexpr uint8_t as_set = 1, as_sequence = 2, as_confed_sequence = 3, as_confed_set = 4;

// Well-known communities.
constexpr uint32_t community_no_export = 0xFFFFFF01, community_no_advertise = 0xFFFFFF02,
                   community_no_export_subconfed = 0xFFFFFF03, community_blackhole = 0xFFFF029A;

struct AsSegment {
    uint8_t type = as_sequence;
    std::vector<uint32_t> asns;
    bool operator==(const AsSegment&) const = default;
};
using AsPath = std::vector<AsSegment>;
// "65001 65002 {65003,65004}"
std::string to_string(const AsPath& p);
// RFC 6793 4.2.3: the AS path of a 2-octet session rebuilt from AS_PATH and AS4_PATH.
AsPath merge_as4_path(const AsPath& as_path, const AsPath& as4_path);
size_t path_length(const AsPath& p);  // AS_SET counts 1, confederation segments 0

struct Aggregator {
    uint32_t asn = 0;
    net::IpAddr addr;
    bool operator==(const Aggregator&) const = default;
};

struct LargeCommunity {
    uint32_t global = 0, local1 = 0, local2 = 0;
    auto operator<=>(const LargeCommunity&) const = default;
    std::string to_string() const;  // "65000:1:2"
};

struct ExtCommunity {
    std::array<uint8_t, 8> raw{};
    auto operator<=>(const ExtCommunity&) const = default;
    uint8_t type() const { return raw[0]; }
    uint8_t subtype() const { return raw[1]; }
    // FlowSpec traffic-rate (RFC 8955 7.3): 0x8006, 2-octet AS, IEEE float bytes/s; 0 = drop.
    static ExtCommunity traffic_rate(uint16_t asn, float bytes_per_second);
    std::optional<float> traffic_rate_value() const;
    // Route target 2-octet AS:number (0x0002).
    static ExtCommunity route_target(uint16_t asn, uint32_t value);
    // "rate-limit:0", "rt:65000:1", or "0x8006000000000000" for others.
    std::string to_string() const;
};

struct RawAttribute {
    uint8_t flags = 0;
    uint8_t type = 0;
    Bytes value;
    bool operator==(const RawAttribute&) const = default;
};

// Path attributes other than MP_REACH/MP_UNREACH (those are on Update).
struct Attributes {
    std::optional<uint8_t> origin;
    std::optional<AsPath> as_path;
    std::optional<AsPath> as4_path;  // only on 2-octet sessions
    std::optional<net::IpAddr> next_hop;
    std::optional<uint32_t> med;
    std::optional<uint32_t> local_pref;
    bool atomic_aggregate = false;
    std::optional<Aggregator> aggregator;
    std::optional<Aggregator> as4_aggregator;
    std::vector<uint32_t> communities;
    std::vector<ExtCommunity> ext_communities;
    std::vector<LargeCommunity> large_communities;
    std::optional<uint32_t> originator_id;
    std::vector<uint32_t> cluster_list;
    std::vector<RawAttribute> unknown;  // optional attributes we do not interpret
    bool operator==(const Attributes&) const = default;
};

std::string community_to_string(uint32_t c);  // "65000:1", "no-export", "blackhole"
// "65000:1", or a well-known name (no-export, no-advertise, no-export-subconfed, blackhole).
std::optional<uint32_t> parse_community(std::string_view s);
std::optional<LargeCommunity> parse_large_community(std::string_view s);  // "G:L1:L2"

struct Nlri {
    net::Prefix prefix;
    uint32_t path_id = 0;  // ADD-PATH only
    auto operator<=>(const Nlri&) const = default;
};

struct MpReach {
    AfiSafi af;
    std::vector<net::IpAddr> next_hops;  // 0 (FlowSpec), 1, or global + link-local
    std::vector<Nlri> nlri;              // unicast
    std::vector<FlowSpec> flows;         // FlowSpec
    Bytes raw_next_hop;                  // next hop of an unknown family, as received
    Bytes raw_nlri;                      // NLRI of an unknown family, as received
    bool operator==(const MpReach&) const = default;
};
struct MpUnreach {
    AfiSafi af;
    std::vector<Nlri> withdrawn;
    std::vector<FlowSpec> flows;
    Bytes raw_nlri;
    bool operator==(const MpUnreach&) const = default;
};

struct Update {
    std::vector<Nlri> withdrawn;  // IPv4 unicast
    Attributes attrs;
    std::optional<MpReach> mp_reach;
    std::optional<MpUnreach> mp_unreach;
    std::vector<Nlri> nlri;  // IPv4 unicast
    bool operator==(const Update&) const = default;

    // End-of-RIB marker (RFC 4724 2): the family it ends, when this is one.
    std::optional<AfiSafi> end_of_rib() const;
    static Update end_of_rib(AfiSafi af);
};

struct Keepalive {
    bool operator==(const Keepalive&) const = default;
};
struct RouteRefresh {
    AfiSafi af;
    uint8_t subtype = 0;  // RFC 7313: 0 normal, 1 BoRR, 2 EoRR
    bool operator==(const RouteRefresh&) const = default;
};

using Message = std::variant<Open, Update, Notification, Keepalive, RouteRefresh>;

// What the session negotiated; both encoding and decoding depend on it.
struct Context {
    bool four_octet_as = true;
    std::vector<AfiSafi> add_path_receive;  // families whose NLRI carry a path id
    std::vector<AfiSafi> add_path_send;
    size_t max_size = max_message_size;
    bool add_path_rx(AfiSafi af) const;
    bool add_path_tx(AfiSafi af) const;
};

// ---- framing ------------------------------------------------------------------------
struct Frame {
    enum Status { need_more, ok, bad } status = need_more;
    size_t length = 0;          // whole message, header included (ok; need_more once the header is in)
    MsgType type{};             // (ok)
    Notification error;         // (bad): what to send
};
// Looks at the start of a byte stream: a complete message, more needed, or a header error.
Frame check_frame(std::span<const uint8_t> buf, size_t max_size = max_message_size);

// ---- decoding -----------------------------------------------------------------------
enum class Outcome : uint8_t {
    ok,                 // as received
    attribute_discard,  // some attributes were dropped, the rest stands (RFC 7606 2)
    treat_as_withdraw,  // the NLRI of this UPDATE are to be withdrawn (RFC 7606 2)
    session_reset,      // send `error` and close
};
const char* to_string(Outcome o);

struct Decoded {
    Message msg;
    Outcome outcome = Outcome::ok;
    std::optional<Notification> error;  // session_reset: what to send
    std::vector<std::string> warnings;  // one per problem handled by discard / withdraw
};

// Decodes one whole message (header included, as sized by check_frame).
Decoded decode(std::span<const uint8_t> msg, const Context& ctx = {});
// Body-only decoders (after the 19-byte header), for MRT and tests.
Decoded decode_open(std::span<const uint8_t> body);
Decoded decode_update(std::span<const uint8_t> body, const Context& ctx = {});
Decoded decode_notification(std::span<const uint8_t> body);

// ---- encoding -----------------------------------------------------------------------
Bytes encode(const Message& m, const Context& ctx = {});
Bytes encode_open(const Open& o);
Bytes encode_update(const Update& u, const Context& ctx = {});
Bytes encode_keepalive();
Bytes encode_notification(const Notification& n);
Bytes encode_route_refresh(const RouteRefresh& r);

// Path attribute bytes (no MP attributes), in type order; shared by the packer.
void encode_attributes(Bytes& out, const Attributes& a, const Context& ctx);
// One prefix in NLRI form (length byte + significant bytes), with a path id when add_path.
void encode_prefix(Bytes& out, const Nlri& n, bool add_path);
size_t encoded_prefix_size(const Nlri& n, bool add_path);

}  // namespace edge::bgp
