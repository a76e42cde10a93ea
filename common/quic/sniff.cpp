#include "quic/sniff.hpp"

#include <algorithm>

#include "quic/header.hpp"

namespace edge::quic {

Error ClientHelloSniffer::feed(Bytes datagram) {
    auto d = split_datagram(datagram, 0);
    if (!d) return d.error;
    for (const auto& h : d->packets) {
        if (h.type != PacketType::initial) continue;
        if (Error e = feed_packet(h); e != Error::ok) return e;
    }
    return Error::ok;
}

Error ClientHelloSniffer::feed_packet(const PacketHeader& h) {
    if (started_ && h.version != version_)
        return Error::ok;  // another version (e.g. after compatible negotiation): not ours to read
    if (complete_) return Error::ok;

    // Until one packet authenticates, each Initial proposes its own DCID/version,
    // so a spoofed first packet cannot pin us to the wrong keys.
    PacketKeys candidate;
    if (!started_) {
        auto keys = derive_initial_keys(h.version, h.dcid);
        if (!keys) return keys.error;
        candidate = std::move(keys->client);
    }
    auto opened = open_packet(h.packet, h.pn_offset, started_ ? keys_ : candidate, largest_pn_);
    if (!opened) return opened.error;
    if (!started_) {
        keys_ = std::move(candidate);
        version_ = h.version;
        dcid_.assign(h.dcid.begin(), h.dcid.end());
        started_ = true;
    }
    ++packets_;
    largest_pn_ = std::max(largest_pn_, opened->packet_number);

    auto frames = parse_frames(opened->payload);
    if (!frames) return frames.error;
    for (const auto& f : *frames)
        if (f.type == frame_type::crypto)
            if (Error e = crypto_.add(f.crypto_offset, f.data); e != Error::ok) return e;

    auto msg = next_handshake_message(crypto_.contiguous());
    if (!msg) return Error::ok;  // need more CRYPTO data
    // Copy the message so the parsed views outlive the packet buffers.
    const Bytes whole = crypto_.contiguous().first(msg->size);
    hello_bytes_.assign(whole.begin(), whole.end());
    auto ch = parse_client_hello(hello_bytes_);
    if (!ch) return ch.error;
    hello_ = std::move(ch.value);
    complete_ = true;
    return Error::ok;
}

}  // namespace edge::quic
