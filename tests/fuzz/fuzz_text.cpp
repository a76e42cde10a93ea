// Text parsers of addresses, prefixes, endpoints and flows: no crash, and whatever
// parses formats back to text that parses to the same value.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "net/addr.hpp"
#include "net/flow.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view s(reinterpret_cast<const char*>(data), size);
    if (auto a = edge::net::IpAddr::parse(s); a.ok()) {
        auto b = edge::net::IpAddr::parse(a->to_string());
        if (!b.ok() || *b != *a) __builtin_trap();
    }
    if (auto p = edge::net::Prefix::parse(s); p.ok()) {
        auto q = edge::net::Prefix::parse(p->to_string());
        if (!q.ok() || *q != *p) __builtin_trap();
    }
    if (auto e = edge::net::Endpoint::parse(s); e.ok()) {
        auto f = edge::net::Endpoint::parse(e->to_string());
        if (!f.ok() || *f != *e) __builtin_trap();
    }
    if (auto k = edge::net::parse_flow(s); k.ok()) {
        auto k2 = edge::net::parse_flow(edge::net::format_flow(*k));
        if (!k2.ok() || !(edge::net::operator==(*k2, *k))) __builtin_trap();
    }
    return 0;
}
