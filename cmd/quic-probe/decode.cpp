// quic-probe decode: one "flow" record per QUIC connection in a capture (and, with
// --packets, one "quic_packet" record per QUIC packet).
#include <cerrno>
#include <malloc.h>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <algorithm>
#include <array>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <span>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "cli/error.hpp"
#include "net/flow.hpp"
#include "options.hpp"
#include "out/json.hpp"
#include "pcap/filter.hpp"
#include "pcap/parallel_scan.hpp"
#include "pcap/scan.hpp"
#include "quic/conntrack.hpp"
#include "quic/version.hpp"
#include "records/flow.hpp"

namespace quic_probe {

namespace q = edge::quic;
using edge::out::Record;

namespace {

std::string hex(q::Bytes b) {
    static const char* digits = "0123456789abcdef";
    std::string s;
    s.reserve(b.size() * 2);
    for (auto x : b) {
        s.push_back(digits[x >> 4]);
        s.push_back(digits[x & 15]);
    }
    return s;
}

std::vector<std::string> hexes(std::span<const q::Cid> cids) {
    std::vector<std::string> v;
    for (auto& c : cids) v.push_back(hex(c));
    return v;
}

std::string u16_name(std::uint16_t v, std::string_view name) {
    return name.empty() ? fmt::format("0x{:04x}", v) : std::string(name);
}

std::vector<std::string> suites(const std::vector<std::uint16_t>& v) {
    std::vector<std::string> out;
    for (auto x : v) out.push_back(u16_name(x, q::cipher_suite_name(x)));
    return out;
}

std::vector<std::string> groups(const std::vector<std::uint16_t>& v) {
    std::vector<std::string> out;
    for (auto x : v) out.push_back(u16_name(x, q::named_group_name(x)));
    return out;
}

std::string tls_version(std::uint16_t v) {
    switch (v) {
        case 0x0304: return "tls1.3";
        case 0x0303: return "tls1.2";
        default: return fmt::format("0x{:04x}", v);
    }
}

std::vector<std::string> versions(std::span<const std::uint32_t> v) {
    std::vector<std::string> out;
    for (auto x : v) out.push_back(q::version_name(x));
    return out;
}

std::vector<std::string> strings(const q::ArenaStrings& v) { return {v.begin(), v.end()}; }

std::string join(const std::vector<std::string>& v, std::string_view sep = ",") {
    std::string s;
    for (auto& x : v) {
        if (!s.empty()) s += sep;
        s += x;
    }
    return s;
}

Record transport_params(const std::vector<q::TransportParam>& tps, std::string& text) {
    Record r("transport_params");
    for (auto& tp : tps) {
        std::string name = tp.name.empty() ? fmt::format("0x{:x}", tp.id) : std::string(tp.name);
        std::string value = tp.integer ? fmt::format("{}", *tp.integer) : hex(tp.value);
        if (tp.integer) r.num(name, *tp.integer);
        else r.str(name, value);
        if (!text.empty()) text += ' ';
        text += name + "=" + (value.empty() ? "-" : value);
    }
    return r;
}

std::string ms(std::int64_t us) { return fmt::format("{:.3f} ms", static_cast<double>(us) / 1000.0); }

Record connection_record(const q::Connection& c) {
    const q::ConnectionDetail& d = c.detail();
    const auto key = edge::net::make_flow_key(c.client.addr, c.client.port, c.server.addr, c.server.port,
                                              edge::net::kProtoUdp);
    Record r = edge::records::flow(key);
    std::vector<std::string> lines;
    r.num("conn", uint64_t{c.id});
    r.str("client", c.client.to_string()).str("server", c.server.to_string());
    r.boolean("roles_known", c.roles_known).boolean("handshake_seen", c.handshake_seen);
    const std::string version = c.versions.empty() ? "" : q::version_name(c.versions.back());
    if (c.versions.empty()) r.null("version");
    else r.str("version", version);
    r.strings("versions", versions(c.versions));
    r.boolean("version_negotiation", c.version_negotiation);
    r.strings("vn_versions", versions(d.vn_versions));
    r.boolean("retry", c.retry);
    r.num("retry_token_bytes", uint64_t{d.retry_token_bytes});
    if (d.retry_tag_ok < 0) r.null("retry_tag_ok");
    else r.boolean("retry_tag_ok", d.retry_tag_ok == 1);
    if (c.handshake_seen) r.str("original_dcid", hex(c.original_dcid));
    else r.null("original_dcid");
    r.strings("dcids", hexes(c.dcids)).strings("scids", hexes(c.scids));
    r.strings("client_cids", hexes(c.client_cids)).strings("server_cids", hexes(c.server_cids));

    const auto& ch = d.client_hello;
    if (c.has_client_hello) {
        r.str("sni", c.sni).strings("alpn", strings(c.alpn));
    } else {
        r.null("sni").strings("alpn", {});
    }
    if (d.has_encrypted_extensions) r.str("alpn_selected", d.alpn_selected);
    else r.null("alpn_selected");

    r.num("client_datagrams", c.from_client.datagrams)
        .num("client_packets", c.from_client.packets)
        .num("client_bytes", c.from_client.bytes)
        .num("server_datagrams", c.from_server.datagrams)
        .num("server_packets", c.from_server.packets)
        .num("server_bytes", c.from_server.bytes);
    r.num("client_bytes_unvalidated", c.client_bytes_unvalidated)
        .num("server_bytes_unvalidated", c.server_bytes_unvalidated);
    double amp = c.client_bytes_unvalidated ? static_cast<double>(c.server_bytes_unvalidated) /
                                                  static_cast<double>(c.client_bytes_unvalidated)
                                            : 0.0;
    if (c.client_bytes_unvalidated) r.real("amplification", amp, 2);
    else r.null("amplification");

    // Handshake timing, from the connection's first packet (normally the client's first Initial).
    const std::int64_t t0 = c.first_us;
    r.num("first_ts_us", c.first_us).num("duration_us", c.last_us - c.first_us);
    struct T {
        const char* key;
        const char* label;
        std::int64_t t;
    };
    const T times[] = {
        {"vn_us", "Version Negotiation", d.t_vn},
        {"retry_us", "Retry", d.t_retry},
        {"server_initial_us", "server Initial", c.t_server_initial},
        {"server_handshake_us", "server Handshake", c.t_server_handshake},
        {"client_handshake_us", "client Handshake", c.t_client_handshake},
        {"client_1rtt_us", "client 1-RTT", c.t_client_1rtt},
        {"server_1rtt_us", "server 1-RTT", c.t_server_1rtt},
        {"handshake_done_us", "HANDSHAKE_DONE", c.t_handshake_done},
    };
    std::vector<std::string> timing;
    for (const auto& t : times) {
        if (t.t == q::kNoTime) {
            r.null(t.key);
            continue;
        }
        r.num(t.key, t.t - t0);
        timing.push_back(fmt::format("{} +{}", t.label, ms(t.t - t0)));
    }

    std::string tp_text;
    if (c.has_client_hello) {
        Record h("client_hello");
        h.strings("cipher_suites", suites(ch.cipher_suites))
            .strings("supported_groups", groups(ch.supported_groups))
            .strings("key_share_groups", groups(ch.key_share_groups));
        std::vector<std::string> tv, exts, sigs;
        for (auto v : ch.supported_versions) tv.push_back(tls_version(v));
        for (auto e : ch.extension_types) exts.push_back(u16_name(e, q::tls_extension_name(e)));
        for (auto s : ch.signature_algorithms) sigs.push_back(fmt::format("0x{:04x}", s));
        h.strings("supported_versions", tv).strings("signature_algorithms", sigs).strings("extensions", exts);
        h.object("transport_params", transport_params(ch.transport_params, tp_text));
        r.object("client_hello", h);
    } else {
        r.null("client_hello");
    }
    if (d.has_server_hello) {
        Record s("server_hello");
        s.str("cipher_suite", u16_name(d.server_hello.cipher_suite, q::cipher_suite_name(d.server_hello.cipher_suite)))
            .str("key_share_group", u16_name(d.server_hello.key_share_group,
                                             q::named_group_name(d.server_hello.key_share_group)))
            .str("tls_version", tls_version(d.server_hello.selected_version))
            .boolean("hello_retry_request", d.hello_retry_request);
        r.object("server_hello", s);
    } else {
        r.null("server_hello");
    }
    std::string stp_text;
    if (d.has_encrypted_extensions) r.object("server_transport_params", transport_params(d.server_transport_params, stp_text));

    r.boolean("keylog_found", d.keylog_found);
    r.num("initial_decrypted", c.decrypted[0])
        .num("handshake_decrypted", c.decrypted[1])
        .num("onertt_decrypted", c.decrypted[2])
        .num("zero_rtt_packets", d.zero_rtt_packets)
        .num("decrypt_failed", c.decrypt_failed)
        .num("undecryptable", c.no_keys)
        .num("path_changes", c.path_changes);
    if (d.close.seen) {
        Record cl("close");
        cl.str("by", d.close.by_client ? "client" : "server")
            .boolean("application", d.close.application)
            .num("error_code", d.close.error_code)
            .str("reason", d.close.reason)
            .num("at_us", d.close.ts_us - t0);
        r.object("close", cl);
    } else {
        r.null("close");
    }

    // Text: a block an SRE can read.
    std::string head = fmt::format("#{} {} -> {} udp {}", c.id, c.client.to_string(), c.server.to_string(),
                                   version.empty() ? "?" : version);
    if (c.versions.size() > 1) head += fmt::format(" (versions {})", join(versions(c.versions)));
    if (c.has_client_hello) {
        head += fmt::format("  sni={}  alpn={}", c.sni.empty() ? "-" : c.sni, c.alpn.empty() ? "-" : join(strings(c.alpn)));
    }
    if (d.has_encrypted_extensions) head += fmt::format(" (chosen {})", d.alpn_selected.empty() ? "-" : d.alpn_selected);
    if (!c.handshake_seen) head += "  [no client Initial seen: capture started mid-connection, or not QUIC]";
    else if (d.close.seen) head += "  [closed]";
    else if (c.t_client_handshake != q::kNoTime) head += "  [handshake completed]";
    else if (c.t_server_initial != q::kNoTime) head += "  [handshake started]";
    else head += "  [no answer]";
    lines.push_back(head);
    auto cid_list = [](std::span<const q::Cid> v) {
        std::vector<std::string> s;
        for (auto& x : v) s.push_back(x.empty() ? "(empty)" : hex(x));
        return s.empty() ? std::string("-") : join(s, " ");
    };
    lines.push_back(fmt::format("  original dcid: {}", c.handshake_seen ? (c.original_dcid.empty() ? "(empty)" : hex(c.original_dcid)) : "-"));
    lines.push_back("  client cids: " + cid_list(c.client_cids));
    lines.push_back("  server cids: " + cid_list(c.server_cids));
    if (c.version_negotiation || c.retry) {
        std::string s = "  ";
        if (c.version_negotiation) s += fmt::format("version negotiation: server offers {}  ", join(versions(d.vn_versions)));
        if (c.retry)
            s += fmt::format("retry: token {} bytes, integrity tag {}", d.retry_token_bytes,
                             d.retry_tag_ok < 0 ? "not checked" : d.retry_tag_ok ? "ok" : "BAD");
        lines.push_back(s);
    }
    std::string traffic = fmt::format("  client: {} datagrams, {} packets, {} bytes;  server: {} datagrams, {} packets, {} bytes",
                                      c.from_client.datagrams, c.from_client.packets, c.from_client.bytes,
                                      c.from_server.datagrams, c.from_server.packets, c.from_server.bytes);
    if (c.client_bytes_unvalidated) traffic += fmt::format(";  amplification {:.2f}x before validation", amp);
    lines.push_back(traffic);
    lines.push_back(fmt::format("  timing: {}{}duration {}", join(timing, ", "), timing.empty() ? "" : ", ",
                                ms(c.last_us - c.first_us)));
    if (c.has_client_hello)
        lines.push_back(fmt::format("  client hello: suites {}; groups {}; key share {}", join(suites(ch.cipher_suites)),
                                    join(groups(ch.supported_groups)), join(groups(ch.key_share_groups))));
    if (!tp_text.empty()) lines.push_back("  client transport params: " + tp_text);
    if (d.has_server_hello)
        lines.push_back(fmt::format("  server hello: {} {}{}", u16_name(d.server_hello.cipher_suite, q::cipher_suite_name(d.server_hello.cipher_suite)),
                                    u16_name(d.server_hello.key_share_group, q::named_group_name(d.server_hello.key_share_group)),
                                    d.hello_retry_request ? " (after HelloRetryRequest)" : ""));
    if (!stp_text.empty()) lines.push_back("  server transport params: " + stp_text);
    std::string dec = fmt::format("  decrypted: {} Initial, {} Handshake, {} 1-RTT", c.decrypted[0], c.decrypted[1], c.decrypted[2]);
    if (c.decrypt_failed) dec += fmt::format("; {} FAILED to decrypt", c.decrypt_failed);
    if (c.no_keys) dec += fmt::format("; {} without keys{}", c.no_keys, d.keylog_found ? "" : " (use --keylog)");
    if (d.zero_rtt_packets) dec += fmt::format("; {} 0-RTT", d.zero_rtt_packets);
    if (c.path_changes) dec += fmt::format("; {} packets on a new path", c.path_changes);
    lines.push_back(dec);
    if (d.close.seen)
        lines.push_back(fmt::format("  closed by {}: {}error 0x{:x}{}", d.close.by_client ? "client" : "server",
                                    d.close.application ? "application " : "", d.close.error_code,
                                    d.close.reason.empty() ? "" : " \"" + d.close.reason + "\""));
    r.text(join(lines, "\n"));
    return r;
}

// The flow record as a JSON Line, written straight into `o`: the same bytes as
// connection_record(c).json(), without building the text rendering, the key=value
// pairs and the per-field strings (on a capture of 100 k connections that was most of
// the run time).
class JsonOut {
public:
    // continuing: fields follow others already in `o`. Output is staged in a buffer here
    // and appended to `o` in blocks: a record is ~100 small pieces, and a std::string
    // call for each made building the JSON a quarter of a full decode. raw() flushes
    // and gives `o` itself, for writing to it directly.
    explicit JsonOut(std::string& o, bool continuing = false) : o_(o), first_(!continuing) {}
    ~JsonOut() { flush(); }
    JsonOut(const JsonOut&) = delete;
    JsonOut& operator=(const JsonOut&) = delete;
    // Keys and strings of up to kShort bytes (nearly all) are copied in one piece.
    JsonOut& key(std::string_view k) {
        if (k.size() > kShort) {
            if (!first_) put(',');
            first_ = false;
            put('"');
            put(k);
            put("\":");
            return *this;
        }
        char* p = room(k.size() + 4);
        if (!first_) *p++ = ',';
        first_ = false;
        *p++ = '"';
        std::memcpy(p, k.data(), k.size());
        p += k.size();
        *p++ = '"';
        *p++ = ':';
        n_ = static_cast<std::size_t>(p - buf_);
        return *this;
    }
    void string(std::string_view v) {
        // Printable ASCII but '"' and '\\' is written as it is; anything else is escaped.
        for (unsigned char ch : v)
            if (kEscape[ch]) {
                edge::out::append_json_string(raw(), v);
                return;
            }
        if (v.size() > kShort) {
            put('"');
            put(v);
            put('"');
            return;
        }
        char* p = room(v.size() + 2);
        *p++ = '"';
        std::memcpy(p, v.data(), v.size());
        p += v.size();
        *p++ = '"';
        n_ = static_cast<std::size_t>(p - buf_);
    }
    void hex_string(q::Bytes b) {
        static const char* digits = "0123456789abcdef";
        if (b.size() > 64) {
            put('"');
            put(quic_probe::hex(b));
            put('"');
            return;
        }
        char* p = room(2 + 2 * 64);
        *p++ = '"';
        for (auto x : b) {
            *p++ = digits[x >> 4];
            *p++ = digits[x & 15];
        }
        *p++ = '"';
        n_ = static_cast<std::size_t>(p - buf_);
    }
    template <typename T>
    void number(T v) {
        char* p = room(24);
        n_ = static_cast<std::size_t>(std::to_chars(p, p + 24, v).ptr - buf_);
    }
    JsonOut& str(std::string_view k, std::string_view v) { return key(k), string(v), *this; }
    JsonOut& hex(std::string_view k, q::Bytes v) { return key(k), hex_string(v), *this; }
    template <typename T>
    JsonOut& num(std::string_view k, T v) { return key(k), number(v), *this; }
    JsonOut& boolean(std::string_view k, bool v) { return key(k), put(v ? "true" : "false"), *this; }
    JsonOut& null(std::string_view k) { return key(k), put("null"), *this; }
    template <typename List, typename F>
    JsonOut& list(std::string_view k, const List& l, F&& each) {
        key(k);
        put('[');
        bool first = true;
        for (const auto& x : l) {
            if (!first) put(',');
            first = false;
            each(x);
        }
        put(']');
        return *this;
    }
    JsonOut& names16(std::string_view k, const std::vector<std::uint16_t>& v, std::string_view (*name)(std::uint16_t) noexcept) {
        // u16_name() without a std::string per element.
        return list(k, v, [&](std::uint16_t x) {
            const std::string_view n = name(x);
            if (!n.empty()) return string(n);
            char b[8];
            auto r = fmt::format_to_n(b, sizeof b, "0x{:04x}", x);
            string(std::string_view(b, std::min(r.size, sizeof b)));  // (always 6)
        });
    }
    // A nested object: begin, fields, end.
    JsonOut& begin(std::string_view k) {
        key(k);
        put('{');
        first_ = true;
        return *this;
    }
    JsonOut& end() {
        put('}');
        first_ = false;
        return *this;
    }
    // The string itself, with everything staged so far in it.
    std::string& raw() {
        flush();
        return o_;
    }

private:
    static constexpr std::size_t kBuf = 2048, kShort = 256;
    static constexpr std::array<bool, 256> kEscape = [] {
        std::array<bool, 256> t{};
        for (int c = 0; c < 256; ++c) t[static_cast<std::size_t>(c)] = c < 0x20 || c >= 0x7f || c == '"' || c == '\\';
        return t;
    }();
    void flush() {
        o_.append(buf_, n_);
        n_ = 0;
    }
    // Room for k <= kBuf more bytes at the returned pointer.
    char* room(std::size_t k) {
        if (kBuf - n_ < k) flush();
        return buf_ + n_;
    }
    void put(char c) {
        if (n_ == kBuf) flush();
        buf_[n_++] = c;
    }
    void put(std::string_view v) {
        if (v.size() > kBuf - n_) {
            flush();
            if (v.size() > kBuf) {
                o_.append(v);
                return;
            }
        }
        std::memcpy(buf_ + n_, v.data(), v.size());
        n_ += v.size();
    }
    std::string& o_;
    bool first_ = true;
    std::size_t n_ = 0;
    char buf_[kBuf];
};

void transport_params_json(JsonOut& j, std::string_view key, const std::vector<q::TransportParam>& tps) {
    j.begin(key);
    for (const auto& tp : tps) {
        if (tp.name.empty()) {
            char name[24];
            auto r = fmt::format_to_n(name, sizeof name, "0x{:x}", tp.id);
            j.key(std::string_view(name, r.size));
        } else {
            j.key(tp.name);
        }
        if (tp.integer) j.number(*tp.integer);
        else j.hex_string(tp.value);
    }
    j.end();
}

// IpAddr::to_string() without inet_ntop for IPv4 (the same dotted quad).
void append_addr(std::string& o, const edge::net::IpAddr& a) {
    if (!a.is_v4()) {
        o += a.to_string();
        return;
    }
    char b[16];
    char* p = b;
    const auto by = a.bytes();
    for (int i = 0; i < 4; ++i) {
        p = std::to_chars(p, b + sizeof b, unsigned{by[static_cast<std::size_t>(i)]}).ptr;
        if (i < 3) *p++ = '.';
    }
    o.append(b, p);
}

// Endpoint::to_string(): "a.b.c.d:port" or "[v6]:port".
void append_endpoint(std::string& o, const edge::net::Endpoint& e) {
    if (!e.addr.is_v4()) o.push_back('[');
    append_addr(o, e.addr);
    if (!e.addr.is_v4()) o.push_back(']');
    o.push_back(':');
    char b[8];
    o.append(b, std::to_chars(b, b + sizeof b, unsigned{e.port}).ptr);
}

void connection_json(const q::Connection& c, std::string& o) {
    const q::ConnectionDetail& d = c.detail();
    // The cross-tool flow fields in records::flow's order and format (src, sport, dst,
    // dport, proto, flow), from the addresses formatted once.
    std::string ca, sa, ce, se;
    append_addr(ca, c.client.addr);
    append_addr(sa, c.server.addr);
    append_endpoint(ce, c.client);
    append_endpoint(se, c.server);
    o += "{\"type\":\"flow\"";
    JsonOut j(o, true);
    j.str("src", ca).num("sport", unsigned{c.client.port}).str("dst", sa).num("dport", unsigned{c.server.port});
    j.str("proto", "udp").str("flow", ce + "-" + se + "/udp");
    j.num("conn", uint64_t{c.id});
    j.str("client", ce).str("server", se);
    j.boolean("roles_known", c.roles_known).boolean("handshake_seen", c.handshake_seen);
    auto version_list = [&](std::string_view k, std::span<const std::uint32_t> v) {
        j.list(k, v, [&](std::uint32_t x) { j.string(q::version_name(x)); });
    };
    if (c.versions.empty()) j.null("version");
    else j.str("version", q::version_name(c.versions.back()));
    version_list("versions", c.versions);
    j.boolean("version_negotiation", c.version_negotiation);
    version_list("vn_versions", d.vn_versions);
    j.boolean("retry", c.retry);
    j.num("retry_token_bytes", uint64_t{d.retry_token_bytes});
    if (d.retry_tag_ok < 0) j.null("retry_tag_ok");
    else j.boolean("retry_tag_ok", d.retry_tag_ok == 1);
    if (c.handshake_seen) j.hex("original_dcid", c.original_dcid);
    else j.null("original_dcid");
    auto cids = [&](std::string_view k, std::span<const q::Cid> v) {
        j.list(k, v, [&](const q::Cid& x) { j.hex_string(x); });
    };
    cids("dcids", c.dcids);
    cids("scids", c.scids);
    cids("client_cids", c.client_cids);
    cids("server_cids", c.server_cids);
    const auto& ch = d.client_hello;
    if (c.has_client_hello) {
        j.str("sni", c.sni);
        j.list("alpn", c.alpn, [&](std::string_view x) { j.string(x); });
    } else {
        j.null("sni");
        j.key("alpn");
        j.raw() += "[]";
    }
    if (d.has_encrypted_extensions) j.str("alpn_selected", d.alpn_selected);
    else j.null("alpn_selected");
    j.num("client_datagrams", c.from_client.datagrams)
        .num("client_packets", c.from_client.packets)
        .num("client_bytes", c.from_client.bytes)
        .num("server_datagrams", c.from_server.datagrams)
        .num("server_packets", c.from_server.packets)
        .num("server_bytes", c.from_server.bytes);
    j.num("client_bytes_unvalidated", c.client_bytes_unvalidated)
        .num("server_bytes_unvalidated", c.server_bytes_unvalidated);
    if (c.client_bytes_unvalidated) {
        const double amp = static_cast<double>(c.server_bytes_unvalidated) / static_cast<double>(c.client_bytes_unvalidated);
        j.key("amplification");
        edge::out::append_json_number(j.raw(), amp);
    } else {
        j.null("amplification");
    }
    const std::int64_t t0 = c.first_us;
    j.num("first_ts_us", c.first_us).num("duration_us", c.last_us - c.first_us);
    const std::pair<const char*, std::int64_t> times[] = {
        {"vn_us", d.t_vn},
        {"retry_us", d.t_retry},
        {"server_initial_us", c.t_server_initial},
        {"server_handshake_us", c.t_server_handshake},
        {"client_handshake_us", c.t_client_handshake},
        {"client_1rtt_us", c.t_client_1rtt},
        {"server_1rtt_us", c.t_server_1rtt},
        {"handshake_done_us", c.t_handshake_done},
    };
    for (const auto& [k, t] : times) {
        if (t == q::kNoTime) j.null(k);
        else j.num(k, t - t0);
    }
    if (c.has_client_hello) {
        j.begin("client_hello");
        j.names16("cipher_suites", ch.cipher_suites, q::cipher_suite_name)
            .names16("supported_groups", ch.supported_groups, q::named_group_name)
            .names16("key_share_groups", ch.key_share_groups, q::named_group_name);
        j.list("supported_versions", ch.supported_versions, [&](std::uint16_t v) { j.string(tls_version(v)); });
        j.list("signature_algorithms", ch.signature_algorithms, [&](std::uint16_t v) {
            char b[8];
            auto r = fmt::format_to_n(b, sizeof b, "0x{:04x}", v);
            j.string(std::string_view(b, std::min(r.size, sizeof b)));  // (always 6)
        });
        j.names16("extensions", ch.extension_types, q::tls_extension_name);
        transport_params_json(j, "transport_params", ch.transport_params);
        j.end();
    } else {
        j.null("client_hello");
    }
    if (d.has_server_hello) {
        const auto& sh = d.server_hello;
        j.begin("server_hello");
        j.str("cipher_suite", u16_name(sh.cipher_suite, q::cipher_suite_name(sh.cipher_suite)))
            .str("key_share_group", u16_name(sh.key_share_group, q::named_group_name(sh.key_share_group)))
            .str("tls_version", tls_version(sh.selected_version))
            .boolean("hello_retry_request", d.hello_retry_request);
        j.end();
    } else {
        j.null("server_hello");
    }
    if (d.has_encrypted_extensions) transport_params_json(j, "server_transport_params", d.server_transport_params);
    j.boolean("keylog_found", d.keylog_found);
    j.num("initial_decrypted", c.decrypted[0])
        .num("handshake_decrypted", c.decrypted[1])
        .num("onertt_decrypted", c.decrypted[2])
        .num("zero_rtt_packets", d.zero_rtt_packets)
        .num("decrypt_failed", c.decrypt_failed)
        .num("undecryptable", c.no_keys)
        .num("path_changes", c.path_changes);
    if (d.close.seen) {
        j.begin("close");
        j.str("by", d.close.by_client ? "client" : "server")
            .boolean("application", d.close.application)
            .num("error_code", d.close.error_code)
            .str("reason", d.close.reason)
            .num("at_us", d.close.ts_us - t0);
        j.end();
    } else {
        j.null("close");
    }
    j.raw() += "}\n";
}

// --fields: chosen fields of the flow record, as TSV (text) or a small JSON object.
// A value is written through one of these, so both renderings come from the same code.
struct FieldSink {
    bool json = false;
    std::string* o = nullptr;
    void null() {
        if (json) o->append("null");
    }
    void boolean(bool v) { o->append(v ? "true" : "false"); }
    template <typename T>
    void number(T v) {
        char buf[24];
        o->append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
    }
    void real(double v) { edge::out::append_json_number(*o, v); }
    // Text: control characters, tab and backslash escaped (\xHH, \\): one line per connection.
    void string(std::string_view v) {
        if (json) {
            JsonOut(*o, true).string(v);
            return;
        }
        // Mostly nothing to escape: appended whole.
        if (std::none_of(v.begin(), v.end(), [](unsigned char ch) { return ch < 0x20 || ch == 0x7f || ch == '\\'; })) {
            o->append(v);
            return;
        }
        for (unsigned char ch : v) {
            if (ch < 0x20 || ch == 0x7f || ch == '\\') {
                char b[8];
                auto r = fmt::format_to_n(b, sizeof b, "\\x{:02x}", unsigned{ch});
                if (ch == '\\') o->append("\\\\");
                else o->append(b, r.size);
            } else {
                o->push_back(static_cast<char>(ch));
            }
        }
    }
    void hex_string(q::Bytes b) {
        if (json) {
            JsonOut(*o, true).hex_string(b);
            return;
        }
        static const char* digits = "0123456789abcdef";
        char buf[128];  // a CID's 40 hex digits (longer ones in pieces): one append, not one per digit
        std::size_t n = 0;
        for (auto x : b) {
            if (n == sizeof buf) {
                o->append(buf, n);
                n = 0;
            }
            buf[n++] = digits[x >> 4];
            buf[n++] = digits[x & 15];
        }
        o->append(buf, n);
    }
    // A list: JSON array, or comma-separated in text (as tshark prints repeated fields).
    template <typename List, typename F>
    void list(const List& l, F&& each) {
        if (json) o->push_back('[');
        bool first = true;
        for (const auto& x : l) {
            if (!first) o->push_back(',');
            first = false;
            each(x);
        }
        if (json) o->push_back(']');
    }
};

struct FieldDef {
    const char* name;
    // false: needs Initial packets that --fields leaves encrypted otherwise (server
    // Initials, client Initials after the ClientHello): asking for it decrypts them all.
    // (Handshake and 1-RTT packets need --keylog, which always decrypts everything.)
    bool client_hello_only;
    void (*write)(const q::Connection&, FieldSink&);
};

std::int64_t rel_time(const q::Connection& c, std::int64_t t) { return t == q::kNoTime ? t : t - c.first_us; }
void time_field(const q::Connection& c, std::int64_t t, FieldSink& s) {
    if (t == q::kNoTime) s.null();
    else s.number(rel_time(c, t));
}
void endpoint_field(const edge::net::Endpoint& e, FieldSink& s) {
    std::string v;
    append_endpoint(v, e);
    s.string(v);
}
void addr_field(const edge::net::IpAddr& a, FieldSink& s) {
    std::string v;
    append_addr(v, a);
    s.string(v);
}
void versions_field(std::span<const std::uint32_t> v, FieldSink& s) {
    s.list(v, [&](std::uint32_t x) { s.string(q::version_name(x)); });
}
void cids_field(std::span<const q::Cid> v, FieldSink& s) {
    s.list(v, [&](const q::Cid& x) { s.hex_string(x); });
}

// The flow record's top-level fields that are not objects, in its order.
const FieldDef kFields[] = {
    {"src", true, [](const q::Connection& c, FieldSink& s) { addr_field(c.client.addr, s); }},
    {"sport", true, [](const q::Connection& c, FieldSink& s) { s.number(unsigned{c.client.port}); }},
    {"dst", true, [](const q::Connection& c, FieldSink& s) { addr_field(c.server.addr, s); }},
    {"dport", true, [](const q::Connection& c, FieldSink& s) { s.number(unsigned{c.server.port}); }},
    {"proto", true, [](const q::Connection&, FieldSink& s) { s.string("udp"); }},
    {"flow", true,
     [](const q::Connection& c, FieldSink& s) {
         std::string v;
         append_endpoint(v, c.client);
         v.push_back('-');
         append_endpoint(v, c.server);
         v += "/udp";
         s.string(v);
     }},
    {"conn", true, [](const q::Connection& c, FieldSink& s) { s.number(uint64_t{c.id}); }},
    {"client", true, [](const q::Connection& c, FieldSink& s) { endpoint_field(c.client, s); }},
    {"server", true, [](const q::Connection& c, FieldSink& s) { endpoint_field(c.server, s); }},
    {"roles_known", true, [](const q::Connection& c, FieldSink& s) { s.boolean(c.roles_known); }},
    {"handshake_seen", true, [](const q::Connection& c, FieldSink& s) { s.boolean(c.handshake_seen); }},
    {"version", true,
     [](const q::Connection& c, FieldSink& s) {
         if (c.versions.empty()) s.null();
         else s.string(q::version_name(c.versions.back()));
     }},
    {"versions", true, [](const q::Connection& c, FieldSink& s) { versions_field(c.versions, s); }},
    {"version_negotiation", true, [](const q::Connection& c, FieldSink& s) { s.boolean(c.version_negotiation); }},
    {"vn_versions", true, [](const q::Connection& c, FieldSink& s) { versions_field(c.detail().vn_versions, s); }},
    {"retry", true, [](const q::Connection& c, FieldSink& s) { s.boolean(c.retry); }},
    {"retry_token_bytes", true, [](const q::Connection& c, FieldSink& s) { s.number(uint64_t{c.detail().retry_token_bytes}); }},
    {"retry_tag_ok", true,
     [](const q::Connection& c, FieldSink& s) {
         if (c.detail().retry_tag_ok < 0) s.null();
         else s.boolean(c.detail().retry_tag_ok == 1);
     }},
    {"original_dcid", true,
     [](const q::Connection& c, FieldSink& s) {
         if (c.handshake_seen) s.hex_string(c.original_dcid);
         else s.null();
     }},
    {"dcids", true, [](const q::Connection& c, FieldSink& s) { cids_field(c.dcids, s); }},
    {"scids", true, [](const q::Connection& c, FieldSink& s) { cids_field(c.scids, s); }},
    {"client_cids", true, [](const q::Connection& c, FieldSink& s) { cids_field(c.client_cids, s); }},
    {"server_cids", true, [](const q::Connection& c, FieldSink& s) { cids_field(c.server_cids, s); }},
    {"sni", true,
     [](const q::Connection& c, FieldSink& s) {
         if (c.has_client_hello) s.string(c.sni);
         else s.null();
     }},
    {"alpn", true,
     [](const q::Connection& c, FieldSink& s) {
         s.list(c.has_client_hello ? c.alpn : q::ArenaStrings{}, [&](std::string_view x) { s.string(x); });
     }},
    {"alpn_selected", true,
     [](const q::Connection& c, FieldSink& s) {
         if (c.detail().has_encrypted_extensions) s.string(c.detail().alpn_selected);
         else s.null();
     }},
    {"client_datagrams", true, [](const q::Connection& c, FieldSink& s) { s.number(c.from_client.datagrams); }},
    {"client_packets", true, [](const q::Connection& c, FieldSink& s) { s.number(c.from_client.packets); }},
    {"client_bytes", true, [](const q::Connection& c, FieldSink& s) { s.number(c.from_client.bytes); }},
    {"server_datagrams", true, [](const q::Connection& c, FieldSink& s) { s.number(c.from_server.datagrams); }},
    {"server_packets", true, [](const q::Connection& c, FieldSink& s) { s.number(c.from_server.packets); }},
    {"server_bytes", true, [](const q::Connection& c, FieldSink& s) { s.number(c.from_server.bytes); }},
    {"client_bytes_unvalidated", true, [](const q::Connection& c, FieldSink& s) { s.number(c.client_bytes_unvalidated); }},
    {"server_bytes_unvalidated", true, [](const q::Connection& c, FieldSink& s) { s.number(c.server_bytes_unvalidated); }},
    {"amplification", true,
     [](const q::Connection& c, FieldSink& s) {
         if (!c.client_bytes_unvalidated) return s.null();
         s.real(static_cast<double>(c.server_bytes_unvalidated) / static_cast<double>(c.client_bytes_unvalidated));
     }},
    {"first_ts_us", true, [](const q::Connection& c, FieldSink& s) { s.number(c.first_us); }},
    {"duration_us", true, [](const q::Connection& c, FieldSink& s) { s.number(c.last_us - c.first_us); }},
    {"vn_us", true, [](const q::Connection& c, FieldSink& s) { time_field(c, c.detail().t_vn, s); }},
    {"retry_us", true, [](const q::Connection& c, FieldSink& s) { time_field(c, c.detail().t_retry, s); }},
    {"server_initial_us", true, [](const q::Connection& c, FieldSink& s) { time_field(c, c.t_server_initial, s); }},
    {"server_handshake_us", true, [](const q::Connection& c, FieldSink& s) { time_field(c, c.t_server_handshake, s); }},
    {"client_handshake_us", true, [](const q::Connection& c, FieldSink& s) { time_field(c, c.t_client_handshake, s); }},
    {"client_1rtt_us", true, [](const q::Connection& c, FieldSink& s) { time_field(c, c.t_client_1rtt, s); }},
    {"server_1rtt_us", true, [](const q::Connection& c, FieldSink& s) { time_field(c, c.t_server_1rtt, s); }},
    {"handshake_done_us", true, [](const q::Connection& c, FieldSink& s) { time_field(c, c.t_handshake_done, s); }},
    {"keylog_found", true, [](const q::Connection& c, FieldSink& s) { s.boolean(c.detail().keylog_found); }},
    {"initial_decrypted", false, [](const q::Connection& c, FieldSink& s) { s.number(c.decrypted[0]); }},
    {"handshake_decrypted", true, [](const q::Connection& c, FieldSink& s) { s.number(c.decrypted[1]); }},
    {"onertt_decrypted", true, [](const q::Connection& c, FieldSink& s) { s.number(c.decrypted[2]); }},
    {"zero_rtt_packets", true, [](const q::Connection& c, FieldSink& s) { s.number(c.detail().zero_rtt_packets); }},
    {"decrypt_failed", false, [](const q::Connection& c, FieldSink& s) { s.number(c.decrypt_failed); }},
    {"undecryptable", true, [](const q::Connection& c, FieldSink& s) { s.number(c.no_keys); }},
    {"path_changes", true, [](const q::Connection& c, FieldSink& s) { s.number(c.path_changes); }},
};

// One connection's chosen fields: TSV, or {"type":"quic_connection", ...}.
void fields_line(const q::Connection& c, const std::vector<const FieldDef*>& fields, bool json, std::string& o) {
    FieldSink s{json, &o};
    if (json) o += "{\"type\":\"quic_connection\"";
    bool first = true;
    for (const FieldDef* f : fields) {
        if (json) {
            o.push_back(',');
            o.push_back('"');
            o += f->name;
            o += "\":";
        } else if (!first) {
            o.push_back('\t');
        }
        first = false;
        f->write(c, s);
    }
    o += json ? "}\n" : "\n";
}

std::vector<const FieldDef*> parse_fields(const std::vector<std::string>& names) {
    std::vector<const FieldDef*> out;
    for (const auto& n : names) {
        const FieldDef* hit = nullptr;
        for (const auto& f : kFields)
            if (n == f.name) hit = &f;
        if (!hit) {
            std::string known;
            for (const auto& f : kFields) known += std::string(known.empty() ? "" : ",") + f.name;
            edge::usage_error("--fields: unknown field '{}': choose from {}", n, known);
        }
        out.push_back(hit);
    }
    if (out.empty()) edge::usage_error("--fields: name at least one field, e.g. --fields original_dcid,sni");
    return out;
}

Record packet_record(const q::PacketRecord& p, const q::Connection& c, std::int64_t ts, std::int64_t t_first) {
    Record r("quic_packet");
    const bool cs = p.dir == q::Dir::to_server;
    const auto& src = cs ? c.client : c.server;
    const auto& dst = cs ? c.server : c.client;
    r.num("conn", uint64_t{p.conn}).num("ts_us", ts).str("from", cs ? "client" : "server");
    r.str("src", src.to_string()).str("dst", dst.to_string());
    r.str("packet_type", q::packet_type_name(p.type));
    const bool has_version = p.type != q::PacketType::one_rtt;
    if (has_version) r.str("version", q::version_name(p.version));
    else r.null("version");
    r.str("dcid", hex(p.dcid)).str("scid", hex(p.scid));
    r.num("token_bytes", uint64_t{p.token_bytes}).num("bytes", uint64_t{p.size}).num("index", uint64_t{p.index});
    r.boolean("decrypted", p.decrypted);
    if (p.decrypted) r.num("packet_number", p.packet_number);
    else r.null("packet_number");
    std::vector<std::string> frames;
    for (auto f : p.frames) frames.push_back(std::string(q::frame_type_name(f)));
    r.strings("frames", frames);
    r.str("note", p.note);
    std::string line = fmt::format("{:>10.6f} #{} {} {} {:<9} {:<8} dcid={} scid={} {}B", static_cast<double>(ts - t_first) / 1e6,
                                   p.conn, cs ? "c>s" : "s>c", p.index ? "+" : " ", q::packet_type_name(p.type),
                                   has_version ? q::version_name(p.version) : "-", p.dcid.empty() ? "-" : hex(p.dcid),
                                   p.scid.empty() ? "-" : hex(p.scid), p.size);
    if (p.token_bytes) line += fmt::format(" token={}B", p.token_bytes);
    if (p.decrypted) line += fmt::format(" pn={} [{}]", p.packet_number, join(frames));
    if (!p.note.empty()) line += " (" + p.note + ")";
    r.text(line);
    return r;
}

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) edge::usage_error("cannot read key log {}: {}", path, std::strerror(errno));
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// The datagrams of one shard, in capture order.
struct ShardItem {
    edge::pcap::Frame fr;
    edge::net::Endpoint src, dst;
    std::uint32_t off = 0, len = 0;
    std::size_t udp_bytes = 0;
    std::uint64_t seq = 0;
};

// Both directions of an address pair hash alike, so they go to the same shard.
std::size_t pair_hash(const edge::net::Endpoint& a, const edge::net::Endpoint& b) {
    auto one = [](const edge::net::Endpoint& e) {
        std::uint64_t h = 0xcbf29ce484222325ULL ^ e.port;
        for (auto x : e.addr.bytes()) h = (h ^ x) * 0x100000001b3ULL;
        h ^= h >> 29;
        return h * 0xbf58476d1ce4e5b9ULL;
    };
    const std::uint64_t h = one(a) ^ one(b);
    return static_cast<std::size_t>(h ^ (h >> 32));
}

// Like pcap::scan, but the UDP datagrams go to trackers[pair_hash % n], in capture order
// per shard. A shard is fed by one thread at a time, not a fixed one: batches wait in the
// shard's queue and whichever thread is free takes the oldest batch of a shard nobody is
// feeding. The reading thread is one of them (it feeds instead of waiting when work is
// queued), so one thread per core in all (on 2 cores a third thread only took turns with
// the others), whatever n. The reader must be mapped (frames stay valid).
edge::pcap::ScanStats sharded_scan(edge::pcap::Reader& r, std::vector<std::unique_ptr<q::ConnectionTracker>>& trackers,
                                   std::uint64_t& not_udp, std::uint64_t& fragments, std::int64_t& t_first) {
    edge::pcap::require_link(r);
    const edge::net::LinkType link = *r.link();
    const std::size_t n = trackers.size();
    // Frames are handed out every `window` frames or `window_bytes` of capture, whichever
    // comes first, and at most `budget` bytes of them wait to be fed: the reader releases
    // the mapping 16 MiB behind its position, and a batch fed further behind would fault
    // the pages in again (and keep them). 2048 frames, not 512: a quarter of the hand-offs
    // (-6 to -8% wall on recorded handshakes, alternating A/Bs; neutral on Initials only).
    constexpr std::size_t window = 2048, window_bytes = 2u << 20, budget = 4u << 20;
    struct Shard {
        std::deque<std::pair<std::vector<ShardItem>, std::size_t>> q;  // batch, its bytes
        bool busy = false;                                               // a thread is feeding it
    };
    std::mutex mu;
    std::condition_variable work;  // a batch became takeable, or the end
    std::condition_variable room;  // bytes were fed
    std::size_t inflight = 0;
    bool done = false;
    std::vector<Shard> shards(n);
    // With mu held: a shard with a batch and nobody feeding it, or n.
    auto takeable = [&] {
        for (std::size_t w = 0; w < n; ++w)
            if (!shards[w].busy && !shards[w].q.empty()) return w;
        return n;
    };
    // With lk holding mu, shard w takeable: feeds its oldest batch (mu released meanwhile).
    auto feed_one = [&](std::unique_lock<std::mutex>& lk, std::size_t w) {
        Shard& sh = shards[w];
        std::vector<ShardItem> batch = std::move(sh.q.front().first);
        const std::size_t bytes = sh.q.front().second;
        sh.q.pop_front();
        sh.busy = true;
        lk.unlock();
        q::ConnectionTracker& t = *trackers[w];
        for (std::size_t i = 0; i < batch.size(); ++i) {
            // The reader touched only a datagram's first bytes: the rest (a client Initial
            // is decrypted whole) is asked for 4 datagrams ahead, not met cold by the AEAD.
            if (i + 4 < batch.size()) {
                const ShardItem& ahead = batch[i + 4];
                const std::uint8_t* d = ahead.fr.data.data() + ahead.off;
                const std::size_t len = std::min<std::size_t>(ahead.len, 1280);
                for (std::size_t at = 64; at < len; at += 64) __builtin_prefetch(d + at);
            }
            // And the index slots its lookups will read, 3 ahead (measured: 2-3 best, 8 less).
            if (i + 3 < batch.size()) {
                const ShardItem& ahead = batch[i + 3];
                t.prefetch(ahead.src, ahead.dst, ahead.fr.data.subspan(ahead.off, ahead.len));
            }
            const ShardItem& it = batch[i];
            t.set_sequence(it.seq);
            t.feed(it.fr.ts_us, it.src, it.dst, it.fr.data.subspan(it.off, it.len), it.udp_bytes, nullptr);
        }
        lk.lock();
        sh.busy = false;
        inflight -= bytes;
        if (!sh.q.empty()) work.notify_one();
        room.notify_one();
    };
    auto worker = [&] {
        std::unique_lock lk(mu);
        while (true) {
            std::size_t w;
            work.wait(lk, [&] { return (w = takeable()) < n || done; });
            if (w == n) return;  // done, and nothing left that nobody is feeding
            feed_one(lk, w);
        }
    };
    {
        // BoringSSL builds its digest and AEAD tables on first use (pthread_once): do it
        // here, before the workers exist, so race detectors have nothing to report.
        q::KeyMaterial a, b;
        q::PreparedKeys k;
        if (q::derive_initial_key_material(q::kVersion1, {}, a, b) == q::Error::ok) (void)k.init(a);
    }
    std::vector<std::thread> threads;
    for (std::size_t w = 1; w < std::min<std::size_t>(n, edge::pcap::scan_threads(4)); ++w) threads.emplace_back(worker);
    std::vector<std::vector<ShardItem>> batches(n);
    std::vector<std::size_t> batch_bytes(n);
    std::size_t in_window = 0, in_window_bytes = 0;
    auto push_all = [&] {
        std::size_t bytes = 0;
        for (auto b : batch_bytes) bytes += b;
        {
            std::unique_lock lk(mu);
            // Queued work first: feed it here while it is over a window per thread (the
            // others keep theirs), or the budget has no room; wait only when every shard
            // with work is being fed.
            while (true) {
                const bool full = inflight != 0 && inflight + bytes > budget;
                std::size_t queued = 0;
                for (const auto& sh : shards) queued += sh.q.size();
                if (!full && queued < n) break;
                const std::size_t w = takeable();
                if (w < n) {
                    feed_one(lk, w);
                } else if (full) {
                    room.wait(lk);
                } else {
                    break;
                }
            }
            inflight += bytes;
            for (std::size_t w = 0; w < n; ++w)
                if (!batches[w].empty()) shards[w].q.emplace_back(std::move(batches[w]), batch_bytes[w]);
        }
        work.notify_all();
        for (std::size_t w = 0; w < n; ++w) {
            batches[w] = {};
            batches[w].reserve(2 * window / n);
            batch_bytes[w] = 0;
        }
        in_window = 0;
        in_window_bytes = 0;
    };

    edge::pcap::ScanStats st;
    edge::out::Progress progress("reading " + r.path(), r.size());
    edge::pcap::Frame fr;
    std::uint64_t seq = 0;
    while (r.next(fr)) {
        st.frames++;
        st.bytes += fr.wire_len;
        progress.tick([&] { return r.position(); });
        // counts every frame: the reader releases by position
        if (++in_window >= window || in_window_bytes >= window_bytes) push_all();
        in_window_bytes += fr.data.size();
        edge::net::PlainUdp u;
        if (!edge::net::parse_plain_udp4(fr.data, link, u)) {
            const edge::net::Packet p = edge::net::parse_packet(fr.data, link, {false});
            switch (p.status) {
                case edge::net::ParseStatus::ok: break;
                case edge::net::ParseStatus::not_ip: st.non_ip++; continue;
                case edge::net::ParseStatus::truncated: st.truncated++; continue;
                default: st.malformed++; continue;
            }
            if (p.proto != edge::net::kProtoUdp || !p.has_l4 || p.fragment) {
                st.ip++;
                (p.fragment ? fragments : not_udp)++;
                continue;
            }
            u.src = p.src;
            u.dst = p.dst;
            u.sport = p.sport;
            u.dport = p.dport;
            u.udp_len = p.udp_len;
            u.payload_off = p.payload_off;
            u.payload_len = p.payload_len;
        }
        st.ip++;
        if (t_first == q::kNoTime) t_first = fr.ts_us;
        ShardItem it;
        it.fr = fr;
        it.src = {u.src, u.sport};
        it.dst = {u.dst, u.dport};
        it.off = static_cast<std::uint32_t>(u.payload_off);
        it.len = static_cast<std::uint32_t>(u.payload_len);
        it.udp_bytes = u.udp_len >= 8 ? u.udp_len - 8u : u.payload_len;
        it.seq = seq++;
        const std::size_t w = pair_hash(it.src, it.dst) % n;
        batches[w].push_back(it);
        batch_bytes[w] += fr.data.size();
    }
    push_all();
    {
        // Help with what is left, then let the workers go.
        std::unique_lock lk(mu);
        for (std::size_t w; (w = takeable()) < n;) feed_one(lk, w);
        done = true;
    }
    work.notify_all();
    for (auto& t : threads) t.join();
    progress.finish();
    st.file_truncated = r.truncated();
    st.file_error = r.error();
    return st;
}

}  // namespace

int run_decode(const DecodeOptions& o, edge::out::Output& out) {
    // Connection state is many small allocations, made by the shard threads. glibc gives
    // each thread an arena of its own that grows a page at a time with mprotect (a system
    // call and a mapping change per 4 KiB: ~10% of a run over a big capture). One arena
    // that grows by brk in large steps does not.
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_TOP_PAD, 64 << 20);
    q::KeyLog keylog;
    if (!o.keylog.empty()) {
        const std::size_t bad = keylog.parse(read_file(o.keylog));
        if (keylog.size() == 0)
            edge::usage_error("key log {} has no TLS 1.3 secrets: expected SSLKEYLOGFILE lines such as "
                              "'CLIENT_HANDSHAKE_TRAFFIC_SECRET <random> <secret>'",
                              o.keylog);
        if (bad)
            edge::out::warn(fmt::format("{}:{}: skipped {} malformed key log line{}", o.keylog, keylog.first_bad_line(),
                                        bad, bad == 1 ? "" : "s"));
    }
    auto reader = std::make_unique<edge::pcap::Reader>(o.pcap);
    edge::pcap::apply_filter(*reader, o.filter);

    q::TrackerOptions topts;
    for (auto p : o.ports)
        if (p == 0) edge::usage_error("--port: 0 is not a UDP port");
    topts.ports.insert(topts.ports.end(), o.ports.begin(), o.ports.end());
    topts.heuristics = !o.no_heuristics;
    topts.keylog = o.keylog.empty() ? nullptr : &keylog;
    std::vector<const FieldDef*> fields;
    if (o.fields_given) {
        if (o.packets) edge::usage_error("--fields and --packets do not go together: per-packet records have their own fields");
        fields = parse_fields(o.fields);
        topts.client_hello_only = o.keylog.empty() && std::all_of(fields.begin(), fields.end(), [](const FieldDef* f) {
                                      return f->client_hello_only;
                                  });
    }
    // Deliberately never destroyed: freeing every connection's state at exit cost ~10%
    // of a run over a big capture, and the process ends right after. The static pointer
    // keeps it reachable, so leak checkers stay quiet.
    static auto* kept = new std::vector<std::unique_ptr<q::ConnectionTracker>>;
    auto& trackers = *kept;

    std::uint64_t not_udp = 0, fragments = 0;
    std::int64_t t_first = q::kNoTime;
    edge::pcap::ScanStats st;
    bool done = false;
    // Big mapped captures on several cores: trackers (shards) each fed the datagrams of
    // their own address pairs, then checked for connection IDs that cross shards
    // (migration, rebinding); if any, the capture is decoded again on one thread. One
    // shard more than threads: a thread that finishes a batch then mostly finds one of a
    // shard nobody is feeding (with as many, the second core idled ~25% of the scan,
    // waiting for the shard the reading thread was feeding; --fields 6-7% faster).
    const unsigned cores = edge::pcap::scan_threads(4);
    const unsigned shards = !o.packets && reader->mapped() && reader->size() >= (16u << 20) && cores >= 2 ? cores + 1 : 1;
    if (shards >= 2) {
        for (unsigned i = 0; i < shards; ++i) {
            trackers.push_back(std::make_unique<q::ConnectionTracker>(topts));
            trackers.back()->enable_shard_log();
            // Pre-size each shard's indexes for a connection per 8 KB of capture (a
            // recorded handshake with a small certificate; the tables grow when there are
            // more): sized for the smallest handshakes (2 KB, 4x as many) they took ~30 ms
            // to fault in on a capture of 100 k full ones.
            trackers.back()->reserve(reader->size() / 8000 / shards);
        }
        st = sharded_scan(*reader, trackers, not_udp, fragments, t_first);
        std::vector<const q::ConnectionTracker*> v;
        for (const auto& t : trackers) v.push_back(t.get());
        if (q::cross_shard_free(v)) {
            done = true;
        } else {
            edge::out::debug("connection IDs link address pairs of different shards: decoding on one thread");
            trackers.clear();
            not_udp = fragments = 0;
            t_first = q::kNoTime;
            reader = std::make_unique<edge::pcap::Reader>(o.pcap);
            edge::pcap::apply_filter(*reader, o.filter);
        }
    }
    if (!done) {
        trackers.push_back(std::make_unique<q::ConnectionTracker>(topts));
        q::ConnectionTracker& tracker = *trackers.back();
        std::vector<q::PacketRecord> recs;
        st = edge::pcap::scan(*reader, [&](const edge::net::Packet& p, const edge::pcap::Frame& fr) {
            if (p.proto != edge::net::kProtoUdp || !p.has_l4) {
                // Non-first fragments have no UDP header: count them with the fragments.
                (p.fragment ? fragments : not_udp)++;
                return;
            }
            if (p.fragment) {  // the first fragment of a datagram we cannot reassemble
                fragments++;
                return;
            }
            if (t_first == q::kNoTime) t_first = fr.ts_us;
            const edge::net::Endpoint src{p.src, p.sport}, dst{p.dst, p.dport};
            const auto payload = fr.data.subspan(p.payload_off, p.payload_len);
            const std::size_t udp_bytes = p.udp_len >= 8 ? p.udp_len - 8u : payload.size();
            recs.clear();
            tracker.feed(fr.ts_us, src, dst, payload, udp_bytes, o.packets ? &recs : nullptr);
            for (const auto& rec : recs)
                out.emit(packet_record(rec, *tracker.connections()[rec.conn - 1], fr.ts_us, t_first));
        });
    }
    const edge::pcap::Reader& r = *reader;

    // Every connection in order of its first datagram (shards interleave), numbered again.
    std::vector<q::Connection*> conns;
    q::TrackerStats ts;
    std::size_t total = 0;
    for (const auto& t : trackers) total += t->connections().size();
    conns.reserve(total);
    for (const auto& t : trackers) {
        if (trackers.size() == 1)
            for (const auto& c : t->connections()) conns.push_back(c.get());
        const auto& s = t->stats();
        ts.datagrams += s.datagrams;
        ts.quic_datagrams += s.quic_datagrams;
        ts.quic_packets += s.quic_packets;
        ts.coalesced += s.coalesced;
        ts.not_quic += s.not_quic;
        ts.garbage += s.garbage;
        ts.trailing_bytes += s.trailing_bytes;
        ts.client_hellos += s.client_hellos;
        ts.decrypt_failed += s.decrypt_failed;
        ts.no_keys += s.no_keys;
    }
    if (trackers.size() > 1) {
        // Each shard made its connections in capture order: merged by their sequence
        // numbers, read from the shards' arrays (not from the connections: cold by now).
        std::vector<std::size_t> at(trackers.size(), 0);
        conns.clear();
        while (conns.size() < total) {
            std::size_t best = trackers.size();
            std::uint64_t best_seq = 0;
            for (std::size_t t = 0; t < trackers.size(); ++t) {
                const auto& seqs = trackers[t]->first_seqs();
                if (at[t] < seqs.size() && (best == trackers.size() || seqs[at[t]] < best_seq)) {
                    best = t;
                    best_seq = seqs[at[t]];
                }
            }
            conns.push_back(trackers[best]->connections()[at[best]++].get());
        }
    }
    if (o.packets && !out.json() && !conns.empty()) out.line("");
    // All records are ready at once here: written in large blocks (per-record flushes,
    // what out.emit does for streaming, would only add system calls), built by several
    // threads on big captures, a chunk of connections at a time, in order.
    auto write_all = [&](std::size_t bytes_each, auto&& one) {
        const unsigned threads = conns.size() >= 4096 ? edge::pcap::scan_threads(4) : 1;
        // Chunks of ~8 MB of text: each one starts and joins the threads (short lines came
        // in 25 chunks per 100 k connections, a thread start and join each).
        const std::size_t chunk = std::max<std::size_t>(4096, (std::size_t{8} << 20) / bytes_each);
        std::vector<std::string> bufs(threads);
        for (auto& b : bufs) b.reserve(std::min(conns.size(), chunk) / threads * bytes_each);
        for (std::size_t base = 0; base < conns.size(); base += chunk) {
            const std::size_t end = std::min(conns.size(), base + chunk), per = (end - base + threads - 1) / threads;
            auto build = [&](unsigned t) {
                bufs[t].clear();
                const std::size_t to = std::min(end, base + (t + 1) * per);
                for (std::size_t i = base + t * per; i < to; ++i) {
                    if (i + 16 < to) __builtin_prefetch(conns[i + 16], 1);
                    if (i + 8 < to) __builtin_prefetch(conns[i + 8]->sni.data());
                    conns[i]->id = i + 1;  // numbered in output order (shards merged)
                    one(*conns[i], bufs[t]);
                }
            };
            std::vector<std::thread> pool;
            for (unsigned t = 1; t < threads; ++t) pool.emplace_back(build, t);
            build(0);
            for (auto& th : pool) th.join();
            for (const auto& b : bufs) std::fwrite(b.data(), 1, b.size(), stdout);
        }
        std::fflush(stdout);
    };
    if (!fields.empty()) {
        // Just the chosen fields, one line per connection (like tshark -T fields), and no
        // summary record.
        const bool json = out.json();
        write_all(64 * fields.size(), [&](const q::Connection& c, std::string& buf) { fields_line(c, fields, json, buf); });
    } else if (out.json()) {
        write_all(2500, [](const q::Connection& c, std::string& buf) { connection_json(c, buf); });
    }
    if (fields.empty() && !out.json())
        for (std::size_t i = 0; i < conns.size(); ++i) {
            conns[i]->id = i + 1;
            out.emit(connection_record(*conns[i]));
            out.line("");
        }
    Record s("quic_decode");
    s.num("frames", st.frames)
        .num("udp_datagrams", ts.datagrams)
        .num("quic_datagrams", ts.quic_datagrams)
        .num("quic_packets", ts.quic_packets)
        .num("coalesced_datagrams", ts.coalesced)
        .num("connections", uint64_t{conns.size()})
        .num("connections_with_client_hello", ts.client_hellos)
        .num("skipped_not_udp", not_udp)
        .num("skipped_fragments", fragments)
        .num("skipped_not_quic", ts.not_quic)
        .num("skipped_garbage", ts.garbage)
        .num("decrypt_failed", ts.decrypt_failed)
        .num("undecryptable", ts.no_keys)
        .num("skipped_non_ip", st.non_ip)
        .num("skipped_truncated", st.truncated)
        .num("skipped_malformed", st.malformed)
        .boolean("file_truncated", st.file_truncated);
    s.text(fmt::format("{} QUIC connections ({} with a ClientHello), {} QUIC packets in {} datagrams of {} frames",
                       conns.size(), ts.client_hellos, ts.quic_packets, ts.quic_datagrams, st.frames));
    if (fields.empty()) out.emit(s);

    // Everything not decoded is said once on stderr.
    std::vector<std::string> skipped;
    auto add = [&](std::uint64_t n, const char* what) {
        if (n) skipped.push_back(fmt::format("{} {}", n, what));
    };
    add(not_udp, "not UDP");
    add(fragments, "IP fragments");
    add(ts.not_quic, "UDP datagrams not QUIC");
    add(ts.garbage, "datagrams on QUIC ports that do not parse as QUIC");
    if (!skipped.empty()) edge::out::info(fmt::format("{}: skipped {}", r.path(), join(skipped, ", ")));
    if (ts.decrypt_failed)
        edge::out::info(fmt::format("{}: {} QUIC packets failed to decrypt (corrupt, or keys from a lost packet)", r.path(),
                                    ts.decrypt_failed));
    if (!o.keylog.empty()) {
        std::uint64_t found = 0;
        for (const auto* c : conns) found += c->detail().keylog_found;
        if (found < ts.client_hellos)
            edge::out::info(fmt::format("{}: key log {} has secrets for {} of {} connections", r.path(), o.keylog, found,
                                        ts.client_hellos));
    }
    return edge::pcap::report(r, st);
}

}  // namespace quic_probe
