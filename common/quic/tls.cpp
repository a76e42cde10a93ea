#include "quic/tls.hpp"

#include <algorithm>

namespace edge::quic {

std::string_view cipher_suite_name(std::uint16_t suite) noexcept {
    switch (suite) {
        case 0x1301: return "TLS_AES_128_GCM_SHA256";
        case 0x1302: return "TLS_AES_256_GCM_SHA384";
        case 0x1303: return "TLS_CHACHA20_POLY1305_SHA256";
        case 0x1304: return "TLS_AES_128_CCM_SHA256";
        case 0x1305: return "TLS_AES_128_CCM_8_SHA256";
        default: return "";
    }
}

std::string_view named_group_name(std::uint16_t group) noexcept {
    switch (group) {
        case 0x0017: return "secp256r1";
        case 0x0018: return "secp384r1";
        case 0x0019: return "secp521r1";
        case 0x001d: return "x25519";
        case 0x001e: return "x448";
        case 0x0100: return "ffdhe2048";
        case 0x0101: return "ffdhe3072";
        case 0x6399: return "X25519Kyber768Draft00";
        case 0x11ec: return "X25519MLKEM768";
        default: return "";
    }
}

std::string_view tls_extension_name(std::uint16_t type) noexcept {
    switch (type) {
        case 0: return "server_name";
        case 5: return "status_request";
        case 10: return "supported_groups";
        case 13: return "signature_algorithms";
        case 16: return "application_layer_protocol_negotiation";
        case 18: return "signed_certificate_timestamp";
        case 27: return "compress_certificate";
        case 28: return "record_size_limit";
        case 41: return "pre_shared_key";
        case 42: return "early_data";
        case 43: return "supported_versions";
        case 44: return "cookie";
        case 45: return "psk_key_exchange_modes";
        case 51: return "key_share";
        case 57: return "quic_transport_parameters";
        case 0xff01: return "renegotiation_info";
        case 0xffa5: return "quic_transport_parameters_draft";
        default: return "";
    }
}

std::string_view transport_param_name(std::uint64_t id) noexcept {
    switch (id) {
        case 0x00: return "original_destination_connection_id";
        case 0x01: return "max_idle_timeout";
        case 0x02: return "stateless_reset_token";
        case 0x03: return "max_udp_payload_size";
        case 0x04: return "initial_max_data";
        case 0x05: return "initial_max_stream_data_bidi_local";
        case 0x06: return "initial_max_stream_data_bidi_remote";
        case 0x07: return "initial_max_stream_data_uni";
        case 0x08: return "initial_max_streams_bidi";
        case 0x09: return "initial_max_streams_uni";
        case 0x0a: return "ack_delay_exponent";
        case 0x0b: return "max_ack_delay";
        case 0x0c: return "disable_active_migration";
        case 0x0d: return "preferred_address";
        case 0x0e: return "active_connection_id_limit";
        case 0x0f: return "initial_source_connection_id";
        case 0x10: return "retry_source_connection_id";
        case 0x11: return "version_information";       // RFC 9368
        case 0x20: return "max_datagram_frame_size";   // RFC 9221
        case 0x2ab2: return "grease_quic_bit";          // RFC 9287
        default: return "";
    }
}

namespace {

bool is_integer_param(std::uint64_t id) noexcept {
    return id == 0x01 || (id >= 0x03 && id <= 0x0b) || id == 0x0e || id == 0x20;
}

// Reads a vector of uint16 values carried in `b` (length already stripped).
bool read_u16_list(Bytes b, std::vector<std::uint16_t>& out) {
    if (b.size() % 2 != 0) return false;
    Reader r(b);
    std::uint16_t v = 0;
    while (r.u16(v)) out.push_back(v);
    return true;
}

Error parse_sni(Bytes ext, std::string& sni) {
    Reader r(ext);
    Bytes list;
    if (!r.vec16(list)) return Error::truncated;
    Reader lr(list);
    while (!lr.empty()) {
        std::uint8_t type = 0;
        Bytes name;
        if (!lr.u8(type) || !lr.vec16(name)) return Error::truncated;
        // host_name (from a pointer and a length: an iterator range would build a temporary string)
        if (type == 0 && sni.empty()) sni.assign(reinterpret_cast<const char*>(name.data()), name.size());
    }
    return Error::ok;
}

Error parse_alpn(Bytes ext, std::vector<std::string>& out) {
    Reader r(ext);
    Bytes list;
    if (!r.vec16(list)) return Error::truncated;
    Reader lr(list);
    while (!lr.empty()) {
        Bytes proto;
        if (!lr.vec8(proto)) return Error::truncated;
        out.emplace_back(proto.begin(), proto.end());
    }
    return Error::ok;
}

Error parse_key_share_ch(Bytes ext, std::vector<std::uint16_t>& groups) {
    Reader r(ext);
    Bytes list;
    if (!r.vec16(list)) return Error::truncated;
    Reader lr(list);
    while (!lr.empty()) {
        std::uint16_t group = 0;
        Bytes key;
        if (!lr.u16(group) || !lr.vec16(key)) return Error::truncated;
        groups.push_back(group);
    }
    return Error::ok;
}

// Common prefix of ClientHello/ServerHello bodies: legacy_version, random, session id.
Error read_hello_prefix(Reader& r, std::uint16_t& version, std::array<std::uint8_t, 32>& random,
                        Bytes& session_id) {
    Bytes rnd;
    if (!r.u16(version) || !r.bytes(random.size(), rnd) || !r.vec8(session_id)) return Error::truncated;
    std::copy(rnd.begin(), rnd.end(), random.begin());
    return session_id.size() <= 32 ? Error::ok : Error::invalid;
}

}  // namespace

Result<std::vector<TransportParam>> parse_transport_params(Bytes ext) {
    std::vector<TransportParam> out;
    if (Error e = parse_transport_params(ext, out); e != Error::ok) return e;
    return out;
}

Error parse_transport_params(Bytes ext, std::vector<TransportParam>& out) {
    out.clear();
    Reader r(ext);
    while (!r.empty()) {
        TransportParam p;
        std::uint64_t len = 0;
        if (!r.varint(p.id) || !r.varint(len) || len > r.remaining()) return Error::truncated;
        r.bytes(static_cast<std::size_t>(len), p.value);
        p.name = transport_param_name(p.id);
        if (is_integer_param(p.id)) {
            std::size_t pos = 0;
            auto v = decode_varint(p.value, pos);
            if (!v || pos != p.value.size()) return Error::invalid;
            p.integer = *v;
        }
        out.push_back(p);
    }
    return Error::ok;
}

Result<HandshakeMessage> next_handshake_message(Bytes stream) {
    Reader r(stream);
    HandshakeMessage m;
    std::uint32_t len = 0;
    if (!r.u8(m.type) || !r.u24(len) || !r.bytes(len, m.body)) return Error::truncated;
    m.size = 4 + static_cast<std::size_t>(len);
    return m;
}

Result<ClientHello> parse_client_hello(Bytes msg) {
    ClientHello ch;
    if (Error e = parse_client_hello(msg, ch); e != Error::ok) return e;
    return ch;
}

Error parse_client_hello(Bytes msg, ClientHello& ch) {
    // Reset every field, keeping the vectors' storage.
    ch.legacy_version = 0;
    ch.random = {};
    ch.session_id = {};
    ch.cipher_suites.clear();
    ch.extension_types.clear();
    ch.sni.clear();
    ch.alpn.clear();
    ch.supported_versions.clear();
    ch.key_share_groups.clear();
    ch.supported_groups.clear();
    ch.signature_algorithms.clear();
    ch.has_transport_params = false;
    ch.transport_params.clear();
    auto m = next_handshake_message(msg);
    if (!m) return m.error;
    if (m->type != tls::kClientHello) return Error::not_found;
    // Only the message body is parsed; bytes after it belong to later messages.
    Reader r(m->body);
    if (Error e = read_hello_prefix(r, ch.legacy_version, ch.random, ch.session_id); e != Error::ok)
        return e;
    Bytes suites, compression, exts;
    if (!r.vec16(suites) || !r.vec8(compression)) return Error::truncated;
    if (!read_u16_list(suites, ch.cipher_suites)) return Error::invalid;
    if (r.empty()) return Error::ok;  // extensions are optional in the grammar
    if (!r.vec16(exts)) return Error::truncated;

    Reader er(exts);
    while (!er.empty()) {
        std::uint16_t type = 0;
        Bytes body;
        if (!er.u16(type) || !er.vec16(body)) return Error::truncated;
        ch.extension_types.push_back(type);
        Error e = Error::ok;
        switch (type) {
            case tls::kExtServerName: e = parse_sni(body, ch.sni); break;
            case tls::kExtAlpn: e = parse_alpn(body, ch.alpn); break;
            case tls::kExtKeyShare: e = parse_key_share_ch(body, ch.key_share_groups); break;
            case tls::kExtSupportedVersions: {
                Reader vr(body);
                Bytes list;
                if (!vr.vec8(list)) e = Error::truncated;
                else if (!read_u16_list(list, ch.supported_versions)) e = Error::invalid;
                break;
            }
            case tls::kExtSupportedGroups:
            case tls::kExtSignatureAlgorithms: {
                Reader gr(body);
                Bytes list;
                auto& dst = type == tls::kExtSupportedGroups ? ch.supported_groups : ch.signature_algorithms;
                if (!gr.vec16(list)) e = Error::truncated;
                else if (!read_u16_list(list, dst)) e = Error::invalid;
                break;
            }
            case tls::kExtQuicTransportParams:
            case tls::kExtQuicTransportParamsDraft: {
                // Into the list's own storage (kept when `ch` is reused); a later
                // duplicate extension replaces an earlier one's list, as before.
                e = parse_transport_params(body, ch.transport_params);
                if (e != Error::ok) break;
                ch.has_transport_params = true;
                break;
            }
            default: break;
        }
        if (e != Error::ok) return e;
    }
    return Error::ok;
}

Result<ServerHello> parse_server_hello(Bytes msg) {
    // SHA-256("HelloRetryRequest"), RFC 8446 4.1.3.
    static constexpr std::array<std::uint8_t, 32> kHrrRandom = {
        0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
        0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c};
    ServerHello sh;
    auto m = next_handshake_message(msg);
    if (!m) return m.error;
    if (m->type != tls::kServerHello) return Error::not_found;
    // Only the message body is parsed; bytes after it belong to later messages.
    Reader r(m->body);
    if (Error e = read_hello_prefix(r, sh.legacy_version, sh.random, sh.session_id); e != Error::ok)
        return e;
    std::uint8_t compression = 0;
    if (!r.u16(sh.cipher_suite) || !r.u8(compression)) return Error::truncated;
    sh.hello_retry_request = sh.random == kHrrRandom;
    sh.selected_version = sh.legacy_version;
    if (r.empty()) return sh;
    Bytes exts;
    if (!r.vec16(exts)) return Error::truncated;
    Reader er(exts);
    while (!er.empty()) {
        std::uint16_t type = 0;
        Bytes body;
        if (!er.u16(type) || !er.vec16(body)) return Error::truncated;
        sh.extension_types.push_back(type);
        Reader br(body);
        if (type == tls::kExtSupportedVersions) {
            if (!br.u16(sh.selected_version)) return Error::truncated;
        } else if (type == tls::kExtKeyShare) {
            // ServerHello: KeyShareEntry; HelloRetryRequest: only the group.
            if (!br.u16(sh.key_share_group)) return Error::truncated;
        }
    }
    return sh;
}

}  // namespace edge::quic
