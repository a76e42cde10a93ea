// BGP from a hostile peer: a byte stream framed and decoded the way a session does it,
// under each negotiated context (2/4-octet AS, ADD-PATH). A message that decodes cleanly
// must re-encode and decode cleanly again (the speaker relies on that round trip).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "bgp/flowspec.hpp"
#include "bgp/message.hpp"

using namespace edge::bgp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    uint8_t sel = data[0];
    std::span<const uint8_t> in(data + 1, size - 1);
    Context ctx;
    ctx.four_octet_as = sel & 1;
    if (sel & 2) ctx.add_path_receive = {ipv4_unicast, ipv6_unicast};
    if (sel & 4) ctx.max_size = max_extended_size;
    while (!in.empty()) {
        auto f = check_frame(in, ctx.max_size);
        if (f.status != Frame::ok) break;
        auto d = decode(in.first(f.length), ctx);
        if (d.outcome == Outcome::ok) {
            Context tx = ctx;
            tx.add_path_send = ctx.add_path_receive;
            tx.max_size = max_extended_size;
            auto again = decode(encode(d.msg, tx), ctx);
            if (again.outcome == Outcome::session_reset) abort();
        }
        in = in.subspan(f.length);
    }
    (void)decode_flowspec(in, edge::net::Family::v4);
    (void)decode_flowspec(in, edge::net::Family::v6);
    return 0;
}
