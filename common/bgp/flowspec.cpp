// FlowSpec NLRI codec and text form (see flowspec.hpp).
#include "bgp/flowspec.hpp"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace edge::bgp {
namespace {

using net::Result;

bool is_prefix(uint8_t t) { return t == flow::destination || t == flow::source; }
bool is_bitmask(uint8_t t) { return t == flow::tcp_flags || t == flow::fragment; }

struct Name {
    const char* name;
    uint8_t type;
};
constexpr Name names[] = {{"destination", flow::destination}, {"source", flow::source},
                          {"protocol", flow::protocol},       {"next-header", flow::protocol},
                          {"port", flow::port},               {"destination-port", flow::destination_port},
                          {"source-port", flow::source_port}, {"icmp-type", flow::icmp_type},
                          {"icmp-code", flow::icmp_code},     {"tcp-flags", flow::tcp_flags},
                          {"packet-length", flow::packet_length}, {"dscp", flow::dscp},
                          {"fragment", flow::fragment},       {"flow-label", flow::flow_label}};

const char* type_name(uint8_t t, net::Family f) {
    if (t == flow::protocol && f == net::Family::v6) return "next-header";
    for (auto& n : names)
        if (n.type == t) return n.name;
    return nullptr;
}

constexpr Name tcp_flag_names[] = {{"fin", 0x01}, {"syn", 0x02}, {"rst", 0x04}, {"push", 0x08},
                                   {"ack", 0x10}, {"urg", 0x20}, {"ece", 0x40}, {"cwr", 0x80}};
constexpr Name frag_names[] = {{"dont-fragment", 0x01}, {"is-fragment", 0x02}, {"first-fragment", 0x04},
                               {"last-fragment", 0x08}};
constexpr Name proto_names[] = {{"icmp", 1}, {"tcp", 6}, {"udp", 17}, {"gre", 47}, {"esp", 50}, {"icmpv6", 58},
                                {"sctp", 132}};

std::optional<uint64_t> parse_u64(std::string_view s) {
    uint64_t v = 0;
    if (s.empty()) return std::nullopt;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
    if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return v;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    size_t start = 0;
    for (size_t i = 0; i <= s.size(); ++i)
        if (i == s.size() || s[i] == sep) {
            out.push_back(s.substr(start, i - start));
            start = i + 1;
        }
    return out;
}

Result<std::vector<FlowOp>> parse_numeric(std::string_view text, uint8_t type) {
    std::vector<FlowOp> ops;
    for (auto alt : split(text, ',')) {
        bool first = true;
        for (auto term : split(alt, '&')) {
            FlowOp op;
            if (!first) op.op |= flow::op_and;
            first = false;
            std::string_view num = term;
            struct P {
                const char* s;
                uint8_t bits;
            };
            static constexpr P prefixes[] = {{"<=", flow::op_lt | flow::op_eq}, {">=", flow::op_gt | flow::op_eq},
                                             {"!=", flow::op_lt | flow::op_gt}, {"==", flow::op_eq},
                                             {"<", flow::op_lt},   {">", flow::op_gt}, {"=", flow::op_eq},
                                             {"true:", 7},         {"false:", 0}};
            bool found = false;
            for (auto& p : prefixes) {
                std::string_view ps = p.s;
                if (num.substr(0, ps.size()) == ps) {
                    op.op |= p.bits;
                    num.remove_prefix(ps.size());
                    found = true;
                    break;
                }
            }
            if (!found) op.op |= flow::op_eq;
            auto v = parse_u64(num);
            if (!v && type == flow::protocol)
                for (auto& n : proto_names)
                    if (num == n.name) v = n.type;
            if (!v) return Result<std::vector<FlowOp>>::fail(fmt::format("bad FlowSpec value '{}'", term));
            op.value = *v;
            ops.push_back(op);
        }
    }
    return ops;
}

Result<std::vector<FlowOp>> parse_bitmask(std::string_view text, uint8_t type) {
    std::vector<FlowOp> ops;
    std::span<const Name> table = type == flow::tcp_flags ? std::span<const Name>(tcp_flag_names)
                                                           : std::span<const Name>(frag_names);
    for (auto alt : split(text, ',')) {
        bool first = true;
        for (auto term : split(alt, '&')) {
            FlowOp op;
            if (!first) op.op |= flow::op_and;
            first = false;
            if (!term.empty() && term[0] == '!') {
                op.op |= flow::op_not;
                term.remove_prefix(1);
            }
            if (!term.empty() && term[0] == '=') {
                op.op |= flow::op_match;
                term.remove_prefix(1);
            }
            if (term.empty()) return Result<std::vector<FlowOp>>::fail("empty FlowSpec flag term");
            for (auto f : split(term, '|')) {
                std::optional<uint64_t> v = parse_u64(f);
                for (auto& n : table)
                    if (f == n.name) v = n.type;
                if (!v) return Result<std::vector<FlowOp>>::fail(fmt::format("bad FlowSpec flag '{}'", f));
                op.value |= *v;
            }
            ops.push_back(op);
        }
    }
    return ops;
}

std::string numeric_text(const std::vector<FlowOp>& ops) {
    std::string s;
    for (size_t i = 0; i < ops.size(); ++i) {
        const auto& o = ops[i];
        if (i) s += (o.op & flow::op_and) ? "&" : ",";
        switch (o.op & 7) {
            case flow::op_eq: s += "="; break;
            case flow::op_lt: s += "<"; break;
            case flow::op_gt: s += ">"; break;
            case flow::op_lt | flow::op_eq: s += "<="; break;
            case flow::op_gt | flow::op_eq: s += ">="; break;
            case flow::op_lt | flow::op_gt: s += "!="; break;
            case 7: s += "true:"; break;
            default: s += "false:"; break;
        }
        s += std::to_string(o.value);
    }
    return s;
}

std::string bitmask_text(const std::vector<FlowOp>& ops, uint8_t type) {
    std::span<const Name> table = type == flow::tcp_flags ? std::span<const Name>(tcp_flag_names)
                                                           : std::span<const Name>(frag_names);
    std::string s;
    for (size_t i = 0; i < ops.size(); ++i) {
        const auto& o = ops[i];
        if (i) s += (o.op & flow::op_and) ? "&" : ",";
        if (o.op & flow::op_not) s += "!";
        if (o.op & flow::op_match) s += "=";
        uint64_t v = o.value, named = 0;
        bool any = false;
        for (auto& n : table)
            if (v & n.type) {
                if (any) s += "|";
                s += n.name;
                named |= n.type;
                any = true;
            }
        if (v & ~named) {
            if (any) s += "|";
            s += std::to_string(v & ~named);
            any = true;
        }
        if (!any) s += "0";
    }
    return s;
}

void put_ops(std::vector<uint8_t>& out, const std::vector<FlowOp>& ops) {
    for (size_t i = 0; i < ops.size(); ++i) {
        const auto& o = ops[i];
        int len_code = o.value <= 0xff ? 0 : o.value <= 0xffff ? 1 : o.value <= 0xffffffffull ? 2 : 3;
        uint8_t b = static_cast<uint8_t>((o.op & 0x4f) | (len_code << 4) | (i + 1 == ops.size() ? 0x80 : 0));
        out.push_back(b);
        for (int k = (1 << len_code) - 1; k >= 0; --k) out.push_back(static_cast<uint8_t>(o.value >> (8 * k)));
    }
}

void put_prefix(std::vector<uint8_t>& out, const FlowComponent& c, net::Family fam) {
    int len = c.prefix.length();
    out.push_back(static_cast<uint8_t>(len));
    auto bytes = c.prefix.addr().bytes();
    if (fam == net::Family::v4) {
        for (int i = 0; i < (len + 7) / 8; ++i) out.push_back(bytes[i]);
        return;
    }
    out.push_back(c.offset);
    int bits = len - c.offset;
    if (bits < 0) bits = 0;
    std::vector<uint8_t> pat((bits + 7) / 8, 0);
    for (int i = 0; i < bits; ++i) {
        int src = c.offset + i;
        if (bytes[src / 8] & (0x80 >> (src % 8))) pat[i / 8] |= static_cast<uint8_t>(0x80 >> (i % 8));
    }
    out.insert(out.end(), pat.begin(), pat.end());
}

}  // namespace

void encode_flowspec(std::vector<uint8_t>& out, const FlowSpec& f) {
    std::vector<uint8_t> body;
    for (const auto& c : f.components) {
        body.push_back(c.type);
        if (is_prefix(c.type))
            put_prefix(body, c, f.family);
        else
            put_ops(body, c.ops);
    }
    if (body.size() < 240) {
        out.push_back(static_cast<uint8_t>(body.size()));
    } else {
        out.push_back(static_cast<uint8_t>(0xf0 | (body.size() >> 8)));
        out.push_back(static_cast<uint8_t>(body.size()));
    }
    out.insert(out.end(), body.begin(), body.end());
}

Result<std::vector<FlowSpec>> decode_flowspec(std::span<const uint8_t> d, net::Family fam) {
    using R = Result<std::vector<FlowSpec>>;
    std::vector<FlowSpec> out;
    size_t p = 0;
    while (p < d.size()) {
        size_t len = d[p++];
        if (len >= 0xf0) {
            if (p >= d.size()) return R::fail("FlowSpec NLRI length truncated");
            len = ((len & 0x0f) << 8) | d[p++];
        }
        if (len == 0 || len > d.size() - p) return R::fail("FlowSpec NLRI length exceeds the attribute");
        auto n = d.subspan(p, len);
        p += len;
        FlowSpec f;
        f.family = fam;
        size_t q = 0;
        int last_type = 0;
        while (q < n.size()) {
            FlowComponent c;
            c.type = n[q++];
            if (c.type <= last_type) return R::fail(fmt::format("FlowSpec component {} out of order", c.type));
            if (c.type > (fam == net::Family::v4 ? 12 : 13))
                return R::fail(fmt::format("unknown FlowSpec component type {}", c.type));
            last_type = c.type;
            if (is_prefix(c.type)) {
                if (q >= n.size()) return R::fail("FlowSpec prefix truncated");
                int plen = n[q++];
                int width = fam == net::Family::v4 ? 32 : 128;
                if (plen > width) return R::fail(fmt::format("FlowSpec prefix length {} too long", plen));
                std::array<uint8_t, 16> raw{};
                if (fam == net::Family::v4) {
                    size_t nb = (plen + 7) / 8;
                    if (nb > n.size() - q) return R::fail("FlowSpec prefix truncated");
                    std::copy_n(n.begin() + q, nb, raw.begin());
                    q += nb;
                    auto pre = net::Prefix::masked(net::IpAddr::v4(std::array<uint8_t, 4>{raw[0], raw[1], raw[2], raw[3]}), plen);
                    c.prefix = *pre;
                } else {
                    if (q >= n.size()) return R::fail("FlowSpec prefix truncated");
                    int off = n[q++];
                    if (off > plen) return R::fail("FlowSpec IPv6 offset beyond the prefix length");
                    int bits = plen - off;
                    size_t nb = (bits + 7) / 8;
                    if (nb > n.size() - q) return R::fail("FlowSpec prefix truncated");
                    for (int i = 0; i < bits; ++i)
                        if (n[q + i / 8] & (0x80 >> (i % 8))) raw[(off + i) / 8] |= static_cast<uint8_t>(0x80 >> ((off + i) % 8));
                    q += nb;
                    c.offset = static_cast<uint8_t>(off);
                    c.prefix = *net::Prefix::masked(net::IpAddr::v6(raw), plen);
                }
            } else {
                bool end = false;
                while (!end) {
                    if (q >= n.size()) return R::fail("FlowSpec operator list truncated");
                    uint8_t b = n[q++];
                    end = b & 0x80;
                    size_t vl = size_t{1} << ((b >> 4) & 3);
                    if (vl > n.size() - q) return R::fail("FlowSpec operator value truncated");
                    FlowOp op;
                    op.op = b & 0x4f;
                    for (size_t k = 0; k < vl; ++k) op.value = (op.value << 8) | n[q++];
                    if (c.ops.empty() && (op.op & flow::op_and)) op.op &= ~flow::op_and;  // first term cannot AND
                    c.ops.push_back(op);
                }
            }
            f.components.push_back(std::move(c));
        }
        out.push_back(std::move(f));
    }
    return out;
}

std::string FlowSpec::to_string() const {
    std::string s;
    for (const auto& c : components) {
        if (!s.empty()) s += ' ';
        const char* n = type_name(c.type, family);
        s += n ? n : fmt::format("type-{}", c.type);
        s += ' ';
        if (is_prefix(c.type)) {
            s += c.prefix.to_string();
            if (c.offset) s += fmt::format("@{}", c.offset);
        } else if (is_bitmask(c.type)) {
            s += bitmask_text(c.ops, c.type);
        } else {
            s += numeric_text(c.ops);
        }
    }
    return s;
}

Result<FlowSpec> FlowSpec::parse(std::string_view text, net::Family hint) {
    using R = Result<FlowSpec>;
    std::vector<std::string_view> toks;
    for (auto t : split(text, ' '))
        if (!t.empty()) toks.push_back(t);
    FlowSpec f;
    f.family = hint;
    bool family_known = false;
    for (size_t i = 0; i < toks.size(); i += 2) {
        uint8_t type = 0;
        for (auto& n : names)
            if (toks[i] == n.name) type = n.type;
        if (!type) return R::fail(fmt::format("unknown FlowSpec component '{}'", toks[i]));
        if (i + 1 >= toks.size()) return R::fail(fmt::format("FlowSpec '{}' needs a value", toks[i]));
        auto val = toks[i + 1];
        FlowComponent c;
        c.type = type;
        if (is_prefix(type)) {
            auto at = val.find('@');
            auto p = net::Prefix::parse(val.substr(0, at));
            if (!p) return R::fail(p.error());
            auto fam = p->family();
            if (family_known && fam != f.family) return R::fail("FlowSpec mixes IPv4 and IPv6 prefixes");
            f.family = fam;
            family_known = true;
            c.prefix = *p;
            if (at != std::string_view::npos) {
                auto off = parse_u64(val.substr(at + 1));
                if (!off || *off > static_cast<uint64_t>(p->length()) || fam == net::Family::v4)
                    return R::fail(fmt::format("bad FlowSpec prefix offset '{}'", val));
                c.offset = static_cast<uint8_t>(*off);
            }
        } else {
            auto ops = is_bitmask(type) ? parse_bitmask(val, type) : parse_numeric(val, type);
            if (!ops) return R::fail(ops.error());
            c.ops = *ops;
        }
        if (std::any_of(f.components.begin(), f.components.end(), [&](auto& x) { return x.type == type; }))
            return R::fail(fmt::format("FlowSpec component '{}' given twice", toks[i]));
        f.components.push_back(std::move(c));
    }
    if (f.components.empty()) return R::fail("empty FlowSpec rule");
    if (f.family == net::Family::v4)
        for (auto& c : f.components)
            if (c.type == flow::flow_label) return R::fail("flow-label is IPv6 only");
    std::sort(f.components.begin(), f.components.end(), [](auto& a, auto& b) { return a.type < b.type; });
    return f;
}

}  // namespace edge::bgp
