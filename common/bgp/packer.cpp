// UPDATE packing (see packer.hpp).
#include "bgp/packer.hpp"

namespace edge::bgp {
namespace {

void put16at(Bytes& b, size_t at, size_t v) {
    b[at] = static_cast<uint8_t>(v >> 8);
    b[at + 1] = static_cast<uint8_t>(v);
}

// Message layout while filling: [header][wd len][withdrawn...][attr len][mp attr hdr][mp fixed][items...][attrs]
// For IPv4 unicast the items go after the attributes (NLRI) or into the withdrawn field.
struct Builder {
    Bytes& out;
    const Context& ctx;
    size_t start = 0;
    size_t count = 0;

    void header() {
        start = out.size();
        out.insert(out.end(), 16, 0xff);
        out.push_back(0);
        out.push_back(0);
        out.push_back(2);
    }
    void finish_msg() {
        put16at(out, start + 16, out.size() - start);
        ++count;
    }
};

template <class Item, class Size, class Put>
size_t pack_mp(Bytes& out, const Context& ctx, const Bytes& attrs_blob, uint8_t type, AfiSafi af,
               const Bytes& nh, std::span<const Item> items, Size size_of, Put put) {
    Builder b{out, ctx};
    size_t fixed = type == attr::mp_reach ? 3 + 1 + nh.size() + 1 : 3;
    size_t overhead = header_size + 2 + 2 + 4 + fixed + attrs_blob.size();
    if (overhead >= ctx.max_size) throw std::length_error("path attributes do not fit in one UPDATE");
    size_t i = 0;
    do {
        b.header();
        out.push_back(0);
        out.push_back(0);  // no withdrawn routes
        size_t alen_at = out.size();
        out.push_back(0);
        out.push_back(0);
        size_t attr_start = out.size();
        out.push_back(attr::flag_optional | attr::flag_extended);
        out.push_back(type);
        size_t mplen_at = out.size();
        out.push_back(0);
        out.push_back(0);
        size_t mp_start = out.size();
        out.push_back(static_cast<uint8_t>(af.afi >> 8));
        out.push_back(static_cast<uint8_t>(af.afi));
        out.push_back(af.safi);
        if (type == attr::mp_reach) {
            out.push_back(static_cast<uint8_t>(nh.size()));
            out.insert(out.end(), nh.begin(), nh.end());
            out.push_back(0);
        }
        size_t room = ctx.max_size - overhead;
        size_t used = 0;
        while (i < items.size()) {
            size_t s = size_of(items[i]);
            if (used + s > room) {
                if (used == 0) throw std::length_error("an NLRI does not fit in one UPDATE");
                break;
            }
            put(items[i]);
            used += s;
            ++i;
        }
        put16at(out, mplen_at, out.size() - mp_start);
        out.insert(out.end(), attrs_blob.begin(), attrs_blob.end());
        put16at(out, alen_at, out.size() - attr_start);
        b.finish_msg();
    } while (i < items.size());
    return b.count;
}

}  // namespace

size_t pack_announce(Bytes& out, const Attributes& attrs, AfiSafi af, std::span<const net::IpAddr> next_hops,
                     std::span<const Nlri> nlri, const Context& ctx) {
    if (nlri.empty()) return 0;
    bool ap = ctx.add_path_tx(af);
    Bytes blob;
    if (af == ipv4_unicast) {
        encode_attributes(blob, attrs, ctx);
        size_t overhead = header_size + 4 + blob.size();
        if (overhead >= ctx.max_size) throw std::length_error("path attributes do not fit in one UPDATE");
        Builder b{out, ctx};
        size_t i = 0;
        while (i < nlri.size()) {
            b.header();
            out.push_back(0);
            out.push_back(0);
            out.push_back(static_cast<uint8_t>(blob.size() >> 8));
            out.push_back(static_cast<uint8_t>(blob.size()));
            out.insert(out.end(), blob.begin(), blob.end());
            size_t room = ctx.max_size - overhead, used = 0;
            while (i < nlri.size()) {
                size_t s = encoded_prefix_size(nlri[i], ap);
                if (used + s > room) break;
                encode_prefix(out, nlri[i], ap);
                used += s;
                ++i;
            }
            b.finish_msg();
        }
        return b.count;
    }
    Attributes a = attrs;
    a.next_hop.reset();
    encode_attributes(blob, a, ctx);
    Bytes nh;
    for (auto& h : next_hops) {
        auto hb = h.bytes();
        nh.insert(nh.end(), hb.begin(), hb.end());
    }
    return pack_mp<Nlri>(out, ctx, blob, attr::mp_reach, af, nh, nlri,
                         [&](const Nlri& n) { return encoded_prefix_size(n, ap); },
                         [&](const Nlri& n) { encode_prefix(out, n, ap); });
}

size_t pack_withdraw(Bytes& out, AfiSafi af, std::span<const Nlri> nlri, const Context& ctx) {
    if (nlri.empty()) return 0;
    bool ap = ctx.add_path_tx(af);
    if (af == ipv4_unicast) {
        Builder b{out, ctx};
        size_t i = 0;
        while (i < nlri.size()) {
            b.header();
            size_t wl_at = out.size();
            out.push_back(0);
            out.push_back(0);
            size_t room = ctx.max_size - header_size - 4, used = 0;
            while (i < nlri.size()) {
                size_t s = encoded_prefix_size(nlri[i], ap);
                if (used + s > room) break;
                encode_prefix(out, nlri[i], ap);
                used += s;
                ++i;
            }
            put16at(out, wl_at, used);
            out.push_back(0);
            out.push_back(0);
            b.finish_msg();
        }
        return b.count;
    }
    return pack_mp<Nlri>(out, ctx, Bytes{}, attr::mp_unreach, af, Bytes{}, nlri,
                         [&](const Nlri& n) { return encoded_prefix_size(n, ap); },
                         [&](const Nlri& n) { encode_prefix(out, n, ap); });
}

size_t pack_flows(Bytes& out, const Attributes& attrs, std::span<const FlowSpec> flows, bool withdraw,
                  const Context& ctx) {
    if (flows.empty()) return 0;
    AfiSafi af{flows[0].family == net::Family::v4 ? afi_ipv4 : afi_ipv6, safi_flowspec};
    Bytes blob;
    if (!withdraw) {
        Attributes a = attrs;
        a.next_hop.reset();
        encode_attributes(blob, a, ctx);
    }
    auto size_of = [](const FlowSpec& f) {
        Bytes tmp;
        encode_flowspec(tmp, f);
        return tmp.size();
    };
    return pack_mp<FlowSpec>(out, ctx, blob, withdraw ? attr::mp_unreach : attr::mp_reach, af, Bytes{}, flows,
                             size_of, [&](const FlowSpec& f) { encode_flowspec(out, f); });
}

}  // namespace edge::bgp
