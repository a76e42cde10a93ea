// IP addresses, prefixes and endpoints as values: parse, format, compare, hash.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "net/result.hpp"

namespace edge::net {

// Values match EDGE_FAMILY_V4 / EDGE_FAMILY_V6 in edge/flow.h.
enum class Family : uint8_t { v4 = 4, v6 = 6 };

class IpAddr {
public:
    IpAddr() = default;  // 0.0.0.0

    static IpAddr v4(std::array<uint8_t, 4> wire) {  // inline: every parsed IPv4 packet makes two
        IpAddr a;
        a.raw_[0] = wire[0];
        a.raw_[1] = wire[1];
        a.raw_[2] = wire[2];
        a.raw_[3] = wire[3];
        return a;
    }
    static IpAddr v4(uint32_t host_order);
    static IpAddr v6(std::array<uint8_t, 16> wire);
    // 4 bytes -> v4, 16 bytes -> v6, anything else -> nullopt.
    static std::optional<IpAddr> from_bytes(std::span<const uint8_t> wire);
    // Dotted quad or any inet_pton IPv6 form; no zone ids, no brackets, no spaces.
    static Result<IpAddr> parse(std::string_view text);

    Family family() const noexcept { return family_; }
    bool is_v4() const noexcept { return family_ == Family::v4; }
    bool is_v6() const noexcept { return family_ == Family::v6; }
    // 4 or 16 wire-order bytes.
    std::span<const uint8_t> bytes() const noexcept { return {raw_.data(), is_v4() ? 4u : 16u}; }
    // Always 16 bytes; IPv4 in the first 4, rest zero (the edge_flow_key layout).
    const std::array<uint8_t, 16>& raw() const noexcept { return raw_; }
    int bits() const noexcept { return is_v4() ? 32 : 128; }

    // Dotted quad, or RFC 5952 text for IPv6.
    std::string to_string() const;

    // Orders all IPv4 before all IPv6, then by bytes.
    auto operator<=>(const IpAddr&) const = default;

private:
    Family family_ = Family::v4;
    std::array<uint8_t, 16> raw_{};
};

struct IpAddrHash {
    std::size_t operator()(const IpAddr& a) const noexcept;
};

// Decimal 0..65535, digits only (no sign, no spaces, at most 5 digits).
std::optional<uint16_t> parse_port(std::string_view text);

// A network: address + length. Policy: parse() REJECTS host bits set
// ("10.0.0.1/8" is an error that names 10.0.0.0/8), because a typo in a
// prefix list should be loud. Use Prefix::masked() to normalize on purpose.
class Prefix {
public:
    Prefix() = default;  // 0.0.0.0/0

    // "10.0.0.0/8", "2001:db8::/32"; a bare address is a host prefix (/32, /128).
    static Result<Prefix> parse(std::string_view text);
    // Clears host bits; nullopt when len exceeds the family's width.
    static std::optional<Prefix> masked(const IpAddr& addr, int len);
    static Prefix host(const IpAddr& addr);

    const IpAddr& addr() const noexcept { return addr_; }
    int length() const noexcept { return len_; }
    Family family() const noexcept { return addr_.family(); }
    // False for an address of the other family.
    bool contains(const IpAddr& a) const noexcept;
    std::string to_string() const;  // always "addr/len"

    auto operator<=>(const Prefix&) const = default;

private:
    IpAddr addr_;
    int len_ = 0;
};

// An address and a port: "1.2.3.4:80" or "[2001:db8::1]:443".
struct Endpoint {
    IpAddr addr;
    uint16_t port = 0;

    static Result<Endpoint> parse(std::string_view text);
    std::string to_string() const;

    auto operator<=>(const Endpoint&) const = default;
};

}  // namespace edge::net

template <>
struct std::hash<edge::net::IpAddr> : edge::net::IpAddrHash {};
