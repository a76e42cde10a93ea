#include "quic/header.hpp"

namespace edge::quic {

std::string_view packet_type_name(PacketType t) noexcept {
    switch (t) {
        case PacketType::initial: return "Initial";
        case PacketType::zero_rtt: return "0-RTT";
        case PacketType::handshake: return "Handshake";
        case PacketType::retry: return "Retry";
        case PacketType::version_negotiation: return "VersionNegotiation";
        case PacketType::one_rtt: return "1-RTT";
        case PacketType::unknown_long: return "UnknownLong";
    }
    return "?";
}

namespace {

PacketType to_packet_type(LongType t) noexcept {
    switch (t) {
        case LongType::initial: return PacketType::initial;
        case LongType::zero_rtt: return PacketType::zero_rtt;
        case LongType::handshake: return PacketType::handshake;
        case LongType::retry: return PacketType::retry;
    }
    return PacketType::unknown_long;
}

Result<PacketHeader> parse_long(Bytes data) {
    PacketHeader h;
    h.long_header = true;
    Reader r(data);
    if (!r.u8(h.first_byte) || !r.u32(h.version)) return Error::truncated;
    h.fixed_bit = (h.first_byte & 0x40) != 0;

    // Invariant fields (RFC 8999 5.1): 8-bit CID lengths for every version.
    if (!r.vec8(h.dcid) || !r.vec8(h.scid)) return Error::truncated;

    if (h.version == kVersionNegotiation) {
        h.type = PacketType::version_negotiation;
        if (r.remaining() % 4 != 0) return Error::invalid;
        std::uint32_t v = 0;
        while (r.u32(v)) h.supported_versions.push_back(v);
        h.size = data.size();
        h.packet = data;
        return h;
    }

    if (!is_supported_version(h.version)) {
        // Unknown version: nothing beyond the invariants is defined, and the
        // packet extends to the end of the datagram.
        h.type = PacketType::unknown_long;
        h.size = data.size();
        h.packet = data;
        return h;
    }

    if (h.dcid.size() > kMaxCidLenV1 || h.scid.size() > kMaxCidLenV1) return Error::invalid;
    h.type = to_packet_type(long_type_from_bits(h.version, static_cast<std::uint8_t>(h.first_byte >> 4)));

    if (h.type == PacketType::retry) {
        // Retry: token fills everything except the trailing integrity tag.
        if (r.remaining() < kRetryTagLen) return Error::truncated;
        r.bytes(r.remaining() - kRetryTagLen, h.token);
        r.bytes(kRetryTagLen, h.retry_tag);
        h.size = data.size();
        h.packet = data;
        return h;
    }

    if (h.type == PacketType::initial) {
        std::uint64_t token_len = 0;
        if (!r.varint(token_len)) return Error::truncated;
        if (token_len > r.remaining()) return Error::truncated;
        r.bytes(static_cast<std::size_t>(token_len), h.token);
    }
    if (!r.varint(h.length)) return Error::truncated;
    h.pn_offset = r.pos();
    if (h.length > r.remaining()) return Error::truncated;
    // At least a 1-byte packet number must fit; anything smaller cannot be a packet.
    if (h.length < 1) return Error::invalid;
    h.size = h.pn_offset + static_cast<std::size_t>(h.length);
    h.packet = data.first(h.size);
    return h;
}

}  // namespace

Result<PacketHeader> parse_packet_header(Bytes data, std::size_t short_dcid_len) {
    if (data.empty()) return Error::truncated;
    if (data[0] & 0x80) return parse_long(data);

    if (short_dcid_len > kMaxCidLenV1) return Error::invalid;
    PacketHeader h;
    h.type = PacketType::one_rtt;
    h.first_byte = data[0];
    h.fixed_bit = (data[0] & 0x40) != 0;
    if (data.size() < 1 + short_dcid_len) return Error::truncated;
    h.dcid = data.subspan(1, short_dcid_len);
    h.pn_offset = 1 + short_dcid_len;
    h.size = data.size();
    h.packet = data;
    return h;
}

Result<Datagram> split_datagram(Bytes datagram, std::size_t short_dcid_len) {
    Datagram d;
    if (Error e = split_datagram(datagram, short_dcid_len, d); e != Error::ok) return e;
    return d;
}

Error split_datagram(Bytes datagram, std::size_t short_dcid_len, Datagram& d) {
    d.packets.clear();
    d.trailing_bytes = 0;
    if (datagram.empty()) return Error::truncated;
    std::size_t off = 0;
    while (off < datagram.size()) {
        auto h = parse_packet_header(datagram.subspan(off), short_dcid_len);
        if (!h) {
            if (d.packets.empty()) return h.error;
            break;
        }
        // A zero first byte after a real packet is padding, not a short header.
        if (!d.packets.empty() && !h->long_header && !h->fixed_bit) break;
        off += h->size;
        d.packets.push_back(std::move(h.value));
    }
    d.trailing_bytes = datagram.size() - off;
    return Error::ok;
}

}  // namespace edge::quic
