#include "net/addr.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace edge::net {

IpAddr IpAddr::v4(uint32_t host_order) {
    return v4(std::array<uint8_t, 4>{uint8_t(host_order >> 24), uint8_t(host_order >> 16),
                                     uint8_t(host_order >> 8), uint8_t(host_order)});
}

IpAddr IpAddr::v6(std::array<uint8_t, 16> wire) {
    IpAddr a;
    a.family_ = Family::v6;
    a.raw_ = wire;
    return a;
}

std::optional<IpAddr> IpAddr::from_bytes(std::span<const uint8_t> wire) {
    if (wire.size() == 4) return v4(std::array<uint8_t, 4>{wire[0], wire[1], wire[2], wire[3]});
    if (wire.size() == 16) {
        std::array<uint8_t, 16> b{};
        std::copy(wire.begin(), wire.end(), b.begin());
        return v6(b);
    }
    return std::nullopt;
}

Result<IpAddr> IpAddr::parse(std::string_view text) {
    // inet_pton needs a NUL-terminated string; the longest valid form is
    // INET6_ADDRSTRLEN-1 chars, so anything longer is rejected up front.
    if (text.empty()) return Result<IpAddr>::fail("empty address");
    if (text.size() >= INET6_ADDRSTRLEN || text.find('\0') != std::string_view::npos)
        return Result<IpAddr>::fail(fmt::format("bad address '{}'", text));
    std::string s(text);
    std::array<uint8_t, 16> b{};
    if (s.find(':') == std::string::npos) {
        if (inet_pton(AF_INET, s.c_str(), b.data()) == 1)
            return v4(std::array<uint8_t, 4>{b[0], b[1], b[2], b[3]});
    } else if (inet_pton(AF_INET6, s.c_str(), b.data()) == 1) {
        return v6(b);
    }
    return Result<IpAddr>::fail(fmt::format("bad address '{}'", text));
}

std::string IpAddr::to_string() const {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(is_v4() ? AF_INET : AF_INET6, raw_.data(), buf, sizeof buf);
    return buf;
}

std::size_t IpAddrHash::operator()(const IpAddr& a) const noexcept {
    // Two 64-bit words and a murmur-style finaliser: hash tables of a million routes
    // (bgp-announce's RIB) spend their time here, and a per-byte FNV loop cost 11%.
    uint64_t lo, hi;
    std::memcpy(&lo, a.raw().data(), 8);
    std::memcpy(&hi, a.raw().data() + 8, 8);
    uint64_t h = (lo ^ (hi * 0x9e3779b97f4a7c15ull) ^ uint64_t(a.family())) * 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    return std::size_t(h);
}

namespace {

std::optional<uint32_t> parse_decimal(std::string_view text, std::size_t max_digits, uint32_t max) {
    if (text.empty() || text.size() > max_digits) return std::nullopt;
    uint32_t v = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + uint32_t(c - '0');
    }
    if (v > max) return std::nullopt;
    return v;
}

bool host_bits_clear(const IpAddr& a, int len) {
    auto b = a.bytes();
    for (std::size_t i = 0; i < b.size(); ++i) {
        int keep = std::clamp(len - int(i) * 8, 0, 8);
        uint8_t mask = uint8_t(0xff00u >> keep);
        if (b[i] & uint8_t(~mask)) return false;
    }
    return true;
}

}  // namespace

std::optional<uint16_t> parse_port(std::string_view text) {
    auto v = parse_decimal(text, 5, 65535);
    if (!v) return std::nullopt;
    return uint16_t(*v);
}

std::optional<Prefix> Prefix::masked(const IpAddr& addr, int len) {
    if (len < 0 || len > addr.bits()) return std::nullopt;
    auto raw = addr.raw();
    for (std::size_t i = 0; i < raw.size(); ++i) {
        int keep = std::clamp(len - int(i) * 8, 0, 8);
        raw[i] &= uint8_t(0xff00u >> keep);
    }
    Prefix p;
    p.addr_ = addr.is_v4() ? IpAddr::v4(std::array<uint8_t, 4>{raw[0], raw[1], raw[2], raw[3]})
                           : IpAddr::v6(raw);
    p.len_ = len;
    return p;
}

Prefix Prefix::host(const IpAddr& addr) {
    Prefix p;
    p.addr_ = addr;
    p.len_ = addr.bits();
    return p;
}

Result<Prefix> Prefix::parse(std::string_view text) {
    auto slash = text.find('/');
    auto addr = IpAddr::parse(text.substr(0, slash));
    if (!addr) return Result<Prefix>::fail(addr.error());
    if (slash == std::string_view::npos) return host(*addr);
    auto lentext = text.substr(slash + 1);
    auto len = parse_decimal(lentext, 3, uint32_t(addr->bits()));
    if (!len)
        return Result<Prefix>::fail(
            fmt::format("bad prefix length '{}' (0..{})", lentext, addr->bits()));
    if (!host_bits_clear(*addr, int(*len))) {
        auto fixed = masked(*addr, int(*len));
        return Result<Prefix>::fail(fmt::format("host bits set in '{}' (did you mean {}?)", text,
                                                fixed->to_string()));
    }
    Prefix p;
    p.addr_ = *addr;
    p.len_ = int(*len);
    return p;
}

bool Prefix::contains(const IpAddr& a) const noexcept {
    if (a.family() != addr_.family()) return false;
    auto want = masked(a, len_);
    return want && want->addr_ == addr_;
}

std::string Prefix::to_string() const { return fmt::format("{}/{}", addr_.to_string(), len_); }

Result<Endpoint> Endpoint::parse(std::string_view text) {
    std::string_view host, port;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos)
            return Result<Endpoint>::fail(fmt::format("missing ']' in '{}'", text));
        host = text.substr(1, close - 1);
        auto rest = text.substr(close + 1);
        if (rest.empty() || rest.front() != ':')
            return Result<Endpoint>::fail(fmt::format("missing port in '{}'", text));
        port = rest.substr(1);
        if (host.find(':') == std::string_view::npos)
            return Result<Endpoint>::fail(fmt::format("brackets are for IPv6 only: '{}'", text));
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos)
            return Result<Endpoint>::fail(fmt::format("missing port in '{}'", text));
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos)
            return Result<Endpoint>::fail(
                fmt::format("IPv6 endpoint needs brackets, e.g. [2001:db8::1]:443: '{}'", text));
    }
    auto addr = IpAddr::parse(host);
    if (!addr) return Result<Endpoint>::fail(addr.error());
    auto p = parse_port(port);
    if (!p) return Result<Endpoint>::fail(fmt::format("bad port '{}'", port));
    return Endpoint{*addr, *p};
}

std::string Endpoint::to_string() const {
    if (addr.is_v6()) return fmt::format("[{}]:{}", addr.to_string(), port);
    return fmt::format("{}:{}", addr.to_string(), port);
}

}  // namespace edge::net
