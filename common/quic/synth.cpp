#include "quic/synth.hpp"

#include <stdexcept>

#include "quic/frames.hpp"
#include "quic/tls.hpp"

namespace edge::quic::synth {

namespace {

void u8(Buf& b, std::uint64_t v) { b.push_back(static_cast<std::uint8_t>(v)); }
void u16(Buf& b, std::uint64_t v) {
    u8(b, v >> 8);
    u8(b, v);
}
void u24(Buf& b, std::uint64_t v) {
    u8(b, v >> 16);
    u16(b, v);
}
void u32(Buf& b, std::uint64_t v) {
    u16(b, v >> 16);
    u16(b, v);
}
void append(Buf& b, Bytes x) { b.insert(b.end(), x.begin(), x.end()); }
void append(Buf& b, const std::string& s) { b.insert(b.end(), s.begin(), s.end()); }
void vec16(Buf& b, const Buf& x) {
    u16(b, x.size());
    append(b, x);
}
void ext(Buf& b, std::uint16_t type, const Buf& body) {
    u16(b, type);
    vec16(b, body);
}
void tp_int(Buf& b, std::uint64_t id, std::uint64_t v) {
    encode_varint(id, b);
    encode_varint(varint_size(v), b);
    encode_varint(v, b);
}
void tp_bytes(Buf& b, std::uint64_t id, Bytes v) {
    encode_varint(id, b);
    encode_varint(v.size(), b);
    append(b, v);
}
Buf handshake(std::uint8_t type, const Buf& body) {
    Buf m;
    u8(m, type);
    u24(m, body.size());
    append(m, body);
    return m;
}
void check(bool ok, const char* what) {
    if (!ok) throw std::invalid_argument(what);
}

}  // namespace

Buf client_hello(const ClientHelloSpec& s) {
    Buf body;
    u16(body, 0x0303);
    append(body, s.random);
    u8(body, 0);  // legacy_session_id
    u16(body, s.cipher_suites.size() * 2);
    for (auto c : s.cipher_suites) u16(body, c);
    u8(body, 1);
    u8(body, 0);  // compression: null
    Buf exts;
    if (!s.sni.empty()) {
        Buf list;
        u8(list, 0);
        u16(list, s.sni.size());
        append(list, s.sni);
        Buf e;
        vec16(e, list);
        ext(exts, tls::kExtServerName, e);
    }
    {
        Buf g;
        for (auto x : s.groups) u16(g, x);
        Buf e;
        vec16(e, g);
        ext(exts, tls::kExtSupportedGroups, e);
    }
    if (!s.alpn.empty()) {
        Buf list;
        for (auto& a : s.alpn) {
            u8(list, a.size());
            append(list, a);
        }
        Buf e;
        vec16(e, list);
        ext(exts, tls::kExtAlpn, e);
    }
    {
        Buf e{0x02, 0x03, 0x04};  // supported_versions: TLS 1.3
        ext(exts, tls::kExtSupportedVersions, e);
        Buf sa{0x00, 0x04, 0x04, 0x03, 0x08, 0x04};
        ext(exts, tls::kExtSignatureAlgorithms, sa);
    }
    if (!s.groups.empty()) {
        Buf share;
        u16(share, s.groups.front());
        Buf key(32, 0x42);
        vec16(share, key);
        Buf e;
        vec16(e, share);
        ext(exts, tls::kExtKeyShare, e);
    }
    {
        Buf tp;
        tp_int(tp, 0x01, 30000);
        tp_int(tp, 0x04, 1048576);
        tp_int(tp, 0x08, 100);
        tp_bytes(tp, 0x0f, s.initial_scid);
        ext(exts, tls::kExtQuicTransportParams, tp);
    }
    if (s.padding_bytes) ext(exts, 21, Buf(s.padding_bytes, 0));
    vec16(body, exts);
    return handshake(tls::kClientHello, body);
}

Buf server_hello(const std::array<std::uint8_t, 32>& random, std::uint16_t suite, std::uint16_t group) {
    Buf body;
    u16(body, 0x0303);
    append(body, random);
    u8(body, 0);
    u16(body, suite);
    u8(body, 0);
    Buf exts;
    Buf share;
    u16(share, group);
    Buf key(32, 0x24);
    vec16(share, key);
    ext(exts, tls::kExtKeyShare, share);
    ext(exts, tls::kExtSupportedVersions, Buf{0x03, 0x04});
    vec16(body, exts);
    return handshake(tls::kServerHello, body);
}

Buf encrypted_extensions(const std::string& alpn, Bytes original_dcid, Bytes initial_scid) {
    Buf exts;
    Buf list;
    u8(list, alpn.size());
    append(list, alpn);
    Buf e;
    vec16(e, list);
    ext(exts, tls::kExtAlpn, e);
    Buf tp;
    tp_bytes(tp, 0x00, original_dcid);
    tp_int(tp, 0x01, 30000);
    tp_bytes(tp, 0x0f, initial_scid);
    ext(exts, tls::kExtQuicTransportParams, tp);
    Buf body;
    vec16(body, exts);
    return handshake(8, body);
}

void crypto_frame(Buf& out, std::uint64_t offset, Bytes data) {
    u8(out, frame_type::crypto);
    encode_varint(offset, out);
    encode_varint(data.size(), out);
    append(out, data);
}

void ack_frame(Buf& out, std::uint64_t largest) {
    u8(out, frame_type::ack);
    encode_varint(largest, out);
    encode_varint(0, out);  // delay
    encode_varint(0, out);  // range count
    encode_varint(0, out);  // first range
}

void connection_close(Buf& out, std::uint64_t error, const std::string& reason, bool application) {
    u8(out, application ? frame_type::connection_close_app : frame_type::connection_close);
    encode_varint(error, out);
    if (!application) encode_varint(0, out);
    encode_varint(reason.size(), out);
    append(out, reason);
}

void new_connection_id(Buf& out, std::uint64_t seq, Bytes cid) {
    u8(out, 0x18);
    encode_varint(seq, out);
    encode_varint(0, out);
    u8(out, cid.size());
    append(out, cid);
    out.insert(out.end(), 16, 0x5a);  // stateless reset token
}

Buf long_packet(std::uint32_t version, LongType type, Bytes dcid, Bytes scid, std::uint64_t pn, Buf payload,
                const PacketKeys& keys, std::size_t pad_to, Bytes token) {
    constexpr std::size_t pn_len = 4;
    const std::size_t header = 1 + 4 + 1 + dcid.size() + 1 + scid.size() +
                               (type == LongType::initial ? varint_size(token.size()) + token.size() : 0) + 2 + pn_len;
    if (pad_to && header + payload.size() + kAeadTagLen < pad_to) payload.resize(pad_to - header - kAeadTagLen, 0);
    // Header protection samples 16 bytes from 4 past the packet number.
    if (payload.size() < 4) payload.resize(4, 0);
    LongPacketSpec spec;
    spec.version = version;
    spec.type = type;
    spec.dcid = dcid;
    spec.scid = scid;
    spec.token = token;
    spec.packet_number = pn;
    spec.pn_length = pn_len;
    spec.payload = payload;
    auto p = build_long_packet(spec, keys);
    check(p.ok(), "synth::long_packet: cannot build packet");
    return *p;
}

Buf short_packet(Bytes dcid, std::uint64_t pn, Buf payload, const PacketKeys& keys, bool fixed_bit) {
    Buf h;
    u8(h, (fixed_bit ? 0x40 : 0x00) | 0x03);  // fixed bit, 4-byte packet number
    append(h, dcid);
    const std::size_t pn_offset = h.size();
    u32(h, pn);
    if (payload.size() < 4) payload.resize(4, 0);
    auto p = seal_packet(h, pn_offset, pn, payload, keys);
    check(p.ok(), "synth::short_packet: cannot seal");
    return *p;
}

Buf retry(std::uint32_t version, Bytes dcid, Bytes scid, Bytes token, Bytes original_dcid) {
    Buf p;
    u8(p, 0xc0 | (long_type_to_bits(version, LongType::retry) << 4) | 0x0f);
    u32(p, version);
    u8(p, dcid.size());
    append(p, dcid);
    u8(p, scid.size());
    append(p, scid);
    append(p, token);
    auto tag = retry_integrity_tag(version, original_dcid, p);
    check(tag.ok(), "synth::retry: cannot compute tag");
    append(p, *tag);
    return p;
}

Buf version_negotiation(Bytes dcid, Bytes scid, const std::vector<std::uint32_t>& versions) {
    Buf p;
    u8(p, 0x80 | 0x2a);
    u32(p, 0);
    u8(p, dcid.size());
    append(p, dcid);
    u8(p, scid.size());
    append(p, scid);
    for (auto v : versions) u32(p, v);
    return p;
}

}  // namespace edge::quic::synth
