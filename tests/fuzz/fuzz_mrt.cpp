// MRT reader + bgpdump -m formatter + BGP attribute reader: every record in the input is
// parsed the way `bgp-announce decode --mrt` does it (RIB records against the last peer
// index table). Nothing may read out of bounds or crash; lines must end in '\n'.
#include <cstddef>
#include <cstdint>
#include <string>

#include "mrt/mrt.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace edge::mrt;
    std::span<const uint8_t> in(data, size);
    static BgpdumpFormatter fmt;
    PeerIndex peers;
    Bgp4mp m;
    Rib rib;
    TableDump td;
    Attrs attrs;
    std::string out, why;
    size_t pos = 0;
    while (pos < in.size()) {
        Header h;
        size_t hl = parse_header(in.subspan(pos), h);
        if (!hl || h.length > in.size() - pos - hl) break;
        auto body = in.subspan(pos + hl, h.length);
        switch (h.type) {
        case type_bgp4mp:
        case type_bgp4mp_et:
            if (parse_bgp4mp(h, body, m, why) && !m.state) fmt.bgp4mp(h, m, out);
            break;
        case type_table_dump_v2:
            if (h.subtype == td2::peer_index_table) parse_peer_index(body, peers, why);
            else if (parse_rib(h.subtype, body, rib, why)) {
                fmt.rib(h, rib, peers, out);
                for (auto& e : rib.entries) {
                    attrs.reset();
                    AttrOptions o;
                    o.addpath = rib.addpath;
                    o.mrt_abbreviated = true;
                    parse_attributes(e.attrs, o, attrs);
                    (void)as_path(attrs);
                }
            }
            break;
        case type_table_dump:
            if (parse_table_dump(h.subtype, body, td, why)) fmt.table_dump(h, td, out);
            break;
        default: break;
        }
        pos += hl + h.length;
    }
    fmt.warnings.clear();
    if (!out.empty() && out.back() != '\n') __builtin_trap();
    return 0;
}
