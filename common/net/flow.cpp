#include "net/flow.hpp"

#include <cstring>

#include <fmt/format.h>

namespace edge::net {

namespace {

constexpr std::string_view kSyntax = "expected SRC:PORT-DST:PORT/PROTO";

uint16_t to_be16(uint16_t v) { return uint16_t((v >> 8) | (v << 8)); }  // little-endian host only (flow.h)

bool is_icmp(uint8_t proto) { return proto == kProtoIcmp || proto == kProtoIcmpv6; }

struct Side {
    IpAddr addr;
    std::optional<uint16_t> port;
};

// One side of the flow: "1.2.3.4:80", "[v6]:80", or, port-less, "1.2.3.4",
// "[v6]", "v6". Whether a missing port is allowed is decided by the caller.
Result<Side> parse_side(std::string_view text) {
    std::string_view host = text;
    std::optional<std::string_view> port;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos)
            return Result<Side>::fail(fmt::format("missing ']' in '{}'", text));
        host = text.substr(1, close - 1);
        auto rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':')
                return Result<Side>::fail(fmt::format("unexpected '{}' after ']' in '{}'", rest, text));
            port = rest.substr(1);
        }
        if (host.find(':') == std::string_view::npos)
            return Result<Side>::fail(fmt::format("brackets are for IPv6 only: '{}'", text));
    } else {
        auto first = text.find(':');
        if (first != std::string_view::npos && text.find(':', first + 1) == std::string_view::npos) {
            // Exactly one colon: IPv4 with a port. More colons: bare IPv6.
            host = text.substr(0, first);
            port = text.substr(first + 1);
        }
    }
    auto addr = IpAddr::parse(host);
    if (!addr) return Result<Side>::fail(addr.error());
    Side s{*addr, std::nullopt};
    if (port) {
        s.port = parse_port(*port);
        if (!s.port) return Result<Side>::fail(fmt::format("bad port '{}'", *port));
    }
    return s;
}

}  // namespace

std::string proto_to_string(uint8_t proto) {
    switch (proto) {
    case kProtoTcp: return "tcp";
    case kProtoUdp: return "udp";
    case kProtoIcmp: return "icmp";
    case kProtoIcmpv6: return "icmpv6";
    default: return std::to_string(proto);
    }
}

std::optional<uint8_t> proto_from_string(std::string_view text) {
    if (text == "tcp") return kProtoTcp;
    if (text == "udp") return kProtoUdp;
    if (text == "icmp") return kProtoIcmp;
    if (text == "icmpv6") return kProtoIcmpv6;
    if (text.empty() || text.size() > 3) return std::nullopt;
    unsigned v = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + unsigned(c - '0');
    }
    if (v > 255) return std::nullopt;
    return uint8_t(v);
}

edge_flow_key make_flow_key(const IpAddr& src, uint16_t sport, const IpAddr& dst, uint16_t dport,
                            uint8_t proto) {
    edge_flow_key k;
    std::memset(&k, 0, sizeof k);  // pad included: the hash covers every byte
    std::size_t n = src.bytes().size();
    std::memcpy(k.src, src.raw().data(), n);
    std::memcpy(k.dst, dst.raw().data(), n);
    k.sport = to_be16(sport);
    k.dport = to_be16(dport);
    k.proto = proto;
    k.family = src.is_v4() ? EDGE_FAMILY_V4 : EDGE_FAMILY_V6;
    return k;
}

static IpAddr addr_of(const uint8_t* b, uint8_t family) {
    std::array<uint8_t, 16> a{};
    std::memcpy(a.data(), b, 16);
    if (family == EDGE_FAMILY_V6) return IpAddr::v6(a);
    return IpAddr::v4(std::array<uint8_t, 4>{a[0], a[1], a[2], a[3]});
}

IpAddr flow_src(const edge_flow_key& key) { return addr_of(key.src, key.family); }
IpAddr flow_dst(const edge_flow_key& key) { return addr_of(key.dst, key.family); }
uint16_t flow_sport(const edge_flow_key& key) { return to_be16(key.sport); }
uint16_t flow_dport(const edge_flow_key& key) { return to_be16(key.dport); }

std::string format_flow(const edge_flow_key& key) {
    IpAddr s = flow_src(key), d = flow_dst(key);
    std::string proto = proto_to_string(key.proto);
    if (is_icmp(key.proto) && key.sport == 0 && key.dport == 0)
        return fmt::format("{}-{}/{}", s.to_string(), d.to_string(), proto);
    return fmt::format("{}-{}/{}", Endpoint{s, flow_sport(key)}.to_string(),
                       Endpoint{d, flow_dport(key)}.to_string(), proto);
}

Result<edge_flow_key> parse_flow(std::string_view text) {
    using R = Result<edge_flow_key>;
    auto slash = text.rfind('/');
    if (slash == std::string_view::npos) return R::fail(std::string(kSyntax));
    auto ends = text.substr(0, slash);
    auto prototext = text.substr(slash + 1);
    auto dash = ends.find('-');  // addresses and ports never contain '-'
    if (dash == std::string_view::npos || ends.find('-', dash + 1) != std::string_view::npos)
        return R::fail(std::string(kSyntax));
    auto proto = proto_from_string(prototext);
    if (!proto) return R::fail(fmt::format("unknown protocol '{}'", prototext));

    auto src = parse_side(ends.substr(0, dash));
    if (!src) return R::fail(src.error());
    auto dst = parse_side(ends.substr(dash + 1));
    if (!dst) return R::fail(dst.error());
    if (src->addr.family() != dst->addr.family()) return R::fail("address families differ");
    if (src->port.has_value() != dst->port.has_value())
        return R::fail("give both ports or neither");
    if (!src->port && !is_icmp(*proto))
        return R::fail(fmt::format("missing ports: only icmp/icmpv6 may omit them ({})", kSyntax));
    return make_flow_key(src->addr, src->port.value_or(0), dst->addr, dst->port.value_or(0), *proto);
}

bool operator==(const edge_flow_key& a, const edge_flow_key& b) {
    return std::memcmp(&a, &b, sizeof a) == 0;
}

}  // namespace edge::net
