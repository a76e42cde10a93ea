// quic-probe decode: one "flow" record per QUIC connection in a capture (and, with
// --packets, one "quic_packet" record per QUIC packet).
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "cli/error.hpp"
#include "net/flow.hpp"
#include "options.hpp"
#include "pcap/filter.hpp"
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

std::vector<std::string> hexes(const std::vector<q::Cid>& cids) {
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

std::vector<std::string> versions(const std::vector<std::uint32_t>& v) {
    std::vector<std::string> out;
    for (auto x : v) out.push_back(q::version_name(x));
    return out;
}

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
    r.strings("vn_versions", versions(c.vn_versions));
    r.boolean("retry", c.retry);
    r.num("retry_token_bytes", uint64_t{c.retry_token_bytes});
    if (c.retry_tag_ok < 0) r.null("retry_tag_ok");
    else r.boolean("retry_tag_ok", c.retry_tag_ok == 1);
    if (c.handshake_seen) r.str("original_dcid", hex(c.original_dcid));
    else r.null("original_dcid");
    r.strings("dcids", hexes(c.dcids)).strings("scids", hexes(c.scids));
    r.strings("client_cids", hexes(c.client_cids)).strings("server_cids", hexes(c.server_cids));

    const auto& ch = c.client_hello;
    if (c.has_client_hello) {
        r.str("sni", ch.sni).strings("alpn", ch.alpn);
    } else {
        r.null("sni").strings("alpn", {});
    }
    if (c.has_encrypted_extensions) r.str("alpn_selected", c.alpn_selected);
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
        {"vn_us", "Version Negotiation", c.t_vn},
        {"retry_us", "Retry", c.t_retry},
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
    if (c.has_server_hello) {
        Record s("server_hello");
        s.str("cipher_suite", u16_name(c.server_hello.cipher_suite, q::cipher_suite_name(c.server_hello.cipher_suite)))
            .str("key_share_group", u16_name(c.server_hello.key_share_group,
                                             q::named_group_name(c.server_hello.key_share_group)))
            .str("tls_version", tls_version(c.server_hello.selected_version))
            .boolean("hello_retry_request", c.hello_retry_request);
        r.object("server_hello", s);
    } else {
        r.null("server_hello");
    }
    std::string stp_text;
    if (c.has_encrypted_extensions) r.object("server_transport_params", transport_params(c.server_transport_params, stp_text));

    r.boolean("keylog_found", c.keylog_found);
    r.num("initial_decrypted", c.decrypted[0])
        .num("handshake_decrypted", c.decrypted[1])
        .num("onertt_decrypted", c.decrypted[2])
        .num("zero_rtt_packets", c.zero_rtt_packets)
        .num("decrypt_failed", c.decrypt_failed)
        .num("undecryptable", c.no_keys)
        .num("path_changes", c.path_changes);
    if (c.close.seen) {
        Record cl("close");
        cl.str("by", c.close.by_client ? "client" : "server")
            .boolean("application", c.close.application)
            .num("error_code", c.close.error_code)
            .str("reason", c.close.reason)
            .num("at_us", c.close.ts_us - t0);
        r.object("close", cl);
    } else {
        r.null("close");
    }

    // Text: a block an SRE can read.
    std::string head = fmt::format("#{} {} -> {} udp {}", c.id, c.client.to_string(), c.server.to_string(),
                                   version.empty() ? "?" : version);
    if (c.versions.size() > 1) head += fmt::format(" (versions {})", join(versions(c.versions)));
    if (c.has_client_hello) {
        head += fmt::format("  sni={}  alpn={}", ch.sni.empty() ? "-" : ch.sni, ch.alpn.empty() ? "-" : join(ch.alpn));
    }
    if (c.has_encrypted_extensions) head += fmt::format(" (chosen {})", c.alpn_selected.empty() ? "-" : c.alpn_selected);
    if (!c.handshake_seen) head += "  [no client Initial seen: capture started mid-connection, or not QUIC]";
    else if (c.close.seen) head += "  [closed]";
    else if (c.t_client_handshake != q::kNoTime) head += "  [handshake completed]";
    else if (c.t_server_initial != q::kNoTime) head += "  [handshake started]";
    else head += "  [no answer]";
    lines.push_back(head);
    auto cid_list = [](const std::vector<q::Cid>& v) {
        std::vector<std::string> s;
        for (auto& x : v) s.push_back(x.empty() ? "(empty)" : hex(x));
        return s.empty() ? std::string("-") : join(s, " ");
    };
    lines.push_back(fmt::format("  original dcid: {}", c.handshake_seen ? (c.original_dcid.empty() ? "(empty)" : hex(c.original_dcid)) : "-"));
    lines.push_back("  client cids: " + cid_list(c.client_cids));
    lines.push_back("  server cids: " + cid_list(c.server_cids));
    if (c.version_negotiation || c.retry) {
        std::string s = "  ";
        if (c.version_negotiation) s += fmt::format("version negotiation: server offers {}  ", join(versions(c.vn_versions)));
        if (c.retry)
            s += fmt::format("retry: token {} bytes, integrity tag {}", c.retry_token_bytes,
                             c.retry_tag_ok < 0 ? "not checked" : c.retry_tag_ok ? "ok" : "BAD");
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
    if (c.has_server_hello)
        lines.push_back(fmt::format("  server hello: {} {}{}", u16_name(c.server_hello.cipher_suite, q::cipher_suite_name(c.server_hello.cipher_suite)),
                                    u16_name(c.server_hello.key_share_group, q::named_group_name(c.server_hello.key_share_group)),
                                    c.hello_retry_request ? " (after HelloRetryRequest)" : ""));
    if (!stp_text.empty()) lines.push_back("  server transport params: " + stp_text);
    std::string dec = fmt::format("  decrypted: {} Initial, {} Handshake, {} 1-RTT", c.decrypted[0], c.decrypted[1], c.decrypted[2]);
    if (c.decrypt_failed) dec += fmt::format("; {} FAILED to decrypt", c.decrypt_failed);
    if (c.no_keys) dec += fmt::format("; {} without keys{}", c.no_keys, c.keylog_found ? "" : " (use --keylog)");
    if (c.zero_rtt_packets) dec += fmt::format("; {} 0-RTT", c.zero_rtt_packets);
    if (c.path_changes) dec += fmt::format("; {} packets on a new path", c.path_changes);
    lines.push_back(dec);
    if (c.close.seen)
        lines.push_back(fmt::format("  closed by {}: {}error 0x{:x}{}", c.close.by_client ? "client" : "server",
                                    c.close.application ? "application " : "", c.close.error_code,
                                    c.close.reason.empty() ? "" : " \"" + c.close.reason + "\""));
    r.text(join(lines, "\n"));
    return r;
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

}  // namespace

int run_decode(const DecodeOptions& o, edge::out::Output& out) {
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
    edge::pcap::Reader r(o.pcap);
    edge::pcap::apply_filter(r, o.filter);

    q::TrackerOptions topts;
    for (auto p : o.ports)
        if (p == 0) edge::usage_error("--port: 0 is not a UDP port");
    topts.ports.insert(topts.ports.end(), o.ports.begin(), o.ports.end());
    topts.heuristics = !o.no_heuristics;
    topts.keylog = o.keylog.empty() ? nullptr : &keylog;
    q::ConnectionTracker tracker(topts);

    std::uint64_t not_udp = 0, fragments = 0;
    std::int64_t t_first = q::kNoTime;
    std::vector<q::PacketRecord> recs;
    auto st = edge::pcap::scan(r, [&](const edge::net::Packet& p, const edge::pcap::Frame& fr) {
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

    if (o.packets && !out.json() && !tracker.connections().empty()) out.line("");
    std::uint64_t with_hello = 0, decrypt_failed = 0, no_keys = 0;
    for (const auto& c : tracker.connections()) {
        out.emit(connection_record(*c));
        if (!out.json()) out.line("");
        with_hello += c->has_client_hello;
        decrypt_failed += c->decrypt_failed;
        no_keys += c->no_keys;
    }
    const auto& ts = tracker.stats();
    Record s("quic_decode");
    s.num("frames", st.frames)
        .num("udp_datagrams", ts.datagrams)
        .num("quic_datagrams", ts.quic_datagrams)
        .num("quic_packets", ts.quic_packets)
        .num("coalesced_datagrams", ts.coalesced)
        .num("connections", uint64_t{tracker.connections().size()})
        .num("connections_with_client_hello", with_hello)
        .num("skipped_not_udp", not_udp)
        .num("skipped_fragments", fragments)
        .num("skipped_not_quic", ts.not_quic)
        .num("skipped_garbage", ts.garbage)
        .num("decrypt_failed", decrypt_failed)
        .num("undecryptable", no_keys)
        .num("skipped_non_ip", st.non_ip)
        .num("skipped_truncated", st.truncated)
        .num("skipped_malformed", st.malformed)
        .boolean("file_truncated", st.file_truncated);
    s.text(fmt::format("{} QUIC connections ({} with a ClientHello), {} QUIC packets in {} datagrams of {} frames",
                       tracker.connections().size(), with_hello, ts.quic_packets, ts.quic_datagrams, st.frames));
    out.emit(s);

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
    if (decrypt_failed)
        edge::out::info(fmt::format("{}: {} QUIC packets failed to decrypt (corrupt, or keys from a lost packet)", r.path(),
                                    decrypt_failed));
    if (!o.keylog.empty()) {
        std::uint64_t found = 0;
        for (const auto& c : tracker.connections()) found += c->keylog_found;
        if (found < with_hello)
            edge::out::info(fmt::format("{}: key log {} has secrets for {} of {} connections", r.path(), o.keylog, found,
                                        with_hello));
    }
    return edge::pcap::report(r, st);
}

}  // namespace quic_probe
