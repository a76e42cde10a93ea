#include "records/flow.hpp"

#include <fmt/format.h>

#include "jsonl/reader.hpp"
#include "net/flow.hpp"

namespace edge::records {

out::Record flow(const edge_flow_key& key) {
    out::Record r("flow");
    r.str("src", net::flow_src(key).to_string());
    r.num("sport", uint64_t{net::flow_sport(key)});
    r.str("dst", net::flow_dst(key).to_string());
    r.num("dport", uint64_t{net::flow_dport(key)});
    r.str("proto", net::proto_to_string(key.proto));
    r.str("flow", net::format_flow(key));
    return r;
}

net::Result<edge_flow_key> flow_from_json(json::Value obj) {
    using R = net::Result<edge_flow_key>;
    std::string_view s;
    if (jsonl::get_string(obj, "flow", s)) {
        auto k = net::parse_flow(s);
        if (!k) return R::fail(fmt::format("field \"flow\": {}", k.error()));
        return *k;
    }
    std::string_view src, dst;
    if (!jsonl::get_string(obj, "src", src)) return R::fail("missing \"flow\" or \"src\" field");
    if (!jsonl::get_string(obj, "dst", dst)) return R::fail("missing \"dst\" field");
    auto a = net::IpAddr::parse(src);
    if (!a) return R::fail(fmt::format("field \"src\": {}", a.error()));
    auto b = net::IpAddr::parse(dst);
    if (!b) return R::fail(fmt::format("field \"dst\": {}", b.error()));
    if (a->family() != b->family()) return R::fail("\"src\" and \"dst\" are of different address families");
    uint8_t proto;
    uint64_t n;
    if (jsonl::get_string(obj, "proto", s)) {
        auto p = net::proto_from_string(s);
        if (!p) return R::fail(fmt::format("field \"proto\": unknown protocol '{}'", s));
        proto = *p;
    } else if (jsonl::get_uint(obj, "proto", n) && n <= 255) {
        proto = static_cast<uint8_t>(n);
    } else {
        return R::fail("missing or invalid \"proto\" field");
    }
    uint64_t sport = 0, dport = 0;
    bool has_ports = proto == net::kProtoTcp || proto == net::kProtoUdp;
    if (!jsonl::get_uint(obj, "sport", sport) && has_ports) return R::fail("missing or invalid \"sport\" field");
    if (!jsonl::get_uint(obj, "dport", dport) && has_ports) return R::fail("missing or invalid \"dport\" field");
    if (sport > 65535 || dport > 65535) return R::fail("port out of range 0..65535");
    return net::make_flow_key(*a, static_cast<uint16_t>(sport), *b, static_cast<uint16_t>(dport), proto);
}

}  // namespace edge::records
