// quic-probe probe: connect to HOST[:PORT] over QUIC and report how the edge behaves,
// with optional interop-runner style checks; many targets with bounded concurrency.
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gnutls/x509.h>

#include "cli/error.hpp"
#include "options.hpp"
#include "quic/version.hpp"
#include "quic_conn.hpp"

namespace quic_probe {

using edge::out::Record;

namespace {

constexpr const char* kPriorityBase =
    "%DISABLE_TLS13_COMPAT_MODE:NORMAL:-VERS-ALL:+VERS-TLS1.3:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:"
    "+GROUP-SECP384R1:+GROUP-SECP521R1";
constexpr const char* kCiphersAll = ":-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:+AES-128-CCM";
constexpr const char* kCiphersChacha = ":-CIPHER-ALL:+CHACHA20-POLY1305";

struct Shared {
    const ProbeOptions* o = nullptr;
    gnutls_certificate_credentials_t cred = nullptr;
    std::vector<std::uint32_t> versions;
    std::vector<std::string> tests;
    std::vector<std::string> alpn;
    int verbose = 0;
    std::mutex session_mu;  // the session file is shared by all targets
};

struct TestResult {
    std::string name;
    std::string result;  // pass, fail, unsupported
    std::string evidence;
    Record extra{"quic_test"};
};

std::string us(std::uint64_t from, std::uint64_t to) {
    if (!from || !to || to < from) return "-";
    return fmt::format("{:.3f} ms", static_cast<double>(to - from) / 1e6);
}
std::int64_t us_num(std::uint64_t from, std::uint64_t to) {
    return (!from || !to || to < from) ? -1 : static_cast<std::int64_t>((to - from) / 1000);
}

// RFC 9000 20.1, RFC 9114 8.1 names for CONNECTION_CLOSE codes.
std::string error_name(const std::string& type, std::uint64_t code) {
    static const char* transport[] = {"NO_ERROR", "INTERNAL_ERROR", "CONNECTION_REFUSED", "FLOW_CONTROL_ERROR",
                                      "STREAM_LIMIT_ERROR", "STREAM_STATE_ERROR", "FINAL_SIZE_ERROR",
                                      "FRAME_ENCODING_ERROR", "TRANSPORT_PARAMETER_ERROR", "CONNECTION_ID_LIMIT_ERROR",
                                      "PROTOCOL_VIOLATION", "INVALID_TOKEN", "APPLICATION_ERROR",
                                      "CRYPTO_BUFFER_EXCEEDED", "KEY_UPDATE_ERROR", "AEAD_LIMIT_REACHED", "NO_VIABLE_PATH"};
    static const char* h3[] = {"H3_NO_ERROR", "H3_GENERAL_PROTOCOL_ERROR", "H3_INTERNAL_ERROR", "H3_STREAM_CREATION_ERROR",
                               "H3_CLOSED_CRITICAL_STREAM", "H3_FRAME_UNEXPECTED", "H3_FRAME_ERROR",
                               "H3_EXCESSIVE_LOAD", "H3_ID_ERROR", "H3_SETTINGS_ERROR", "H3_MISSING_SETTINGS",
                               "H3_REQUEST_REJECTED", "H3_REQUEST_CANCELLED", "H3_REQUEST_INCOMPLETE",
                               "H3_MESSAGE_ERROR", "H3_CONNECT_ERROR", "H3_VERSION_FALLBACK"};
    if (type == "transport") {
        if (code < std::size(transport)) return transport[code];
        if (code >= 0x100 && code <= 0x1ff) {
            const char* a = alert_name(static_cast<gnutls_alert_description_t>(code - 0x100));
            return fmt::format("CRYPTO_ERROR({})", a ? a : fmt::format("alert {}", code - 0x100));
        }
    } else if (type == "application" && code >= 0x100 && code < 0x100 + std::size(h3)) {
        return h3[code - 0x100];
    }
    return fmt::format("0x{:x}", code);
}

std::string vname(std::uint32_t v) { return edge::quic::version_name(v); }

std::string vlist(const std::vector<std::uint32_t>& v) {
    std::string s;
    for (auto x : v) s += (s.empty() ? "" : ",") + vname(x);
    return s;
}

bool wants(const Shared& sh, std::string_view t) {
    return std::find(sh.tests.begin(), sh.tests.end(), t) != sh.tests.end();
}

bool is_ip_literal(const std::string& h) {
    in6_addr a6{};
    in_addr a4{};
    return inet_pton(AF_INET, h.c_str(), &a4) == 1 || inet_pton(AF_INET6, h.c_str(), &a6) == 1;
}

struct CertInfo {
    bool present = false;
    std::string subject, issuer, not_after;
    std::int64_t expires_in_days = 0;
    unsigned chain = 0;
    bool verified = false;
    std::string verify_error;
};

CertInfo cert_info(gnutls_session_t tls, const std::string& verify_name) {
    CertInfo ci;
    unsigned n = 0;
    const gnutls_datum_t* certs = gnutls_certificate_get_peers(tls, &n);
    if (!certs || n == 0) {
        ci.verify_error = "server sent no certificate";
        return ci;
    }
    ci.present = true;
    ci.chain = n;
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) == 0) {
        if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) == 0) {
            gnutls_datum_t d{};
            if (gnutls_x509_crt_get_dn3(crt, &d, 0) == 0) {
                ci.subject.assign(reinterpret_cast<char*>(d.data), d.size);
                gnutls_free(d.data);
            }
            if (gnutls_x509_crt_get_issuer_dn3(crt, &d, 0) == 0) {
                ci.issuer.assign(reinterpret_cast<char*>(d.data), d.size);
                gnutls_free(d.data);
            }
            time_t exp = gnutls_x509_crt_get_expiration_time(crt);
            if (exp != static_cast<time_t>(-1)) {
                std::tm tm{};
                gmtime_r(&exp, &tm);
                char buf[32];
                std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
                ci.not_after = buf;
                ci.expires_in_days = static_cast<std::int64_t>(std::floor((exp - std::time(nullptr)) / 86400.0));
            }
        }
        gnutls_x509_crt_deinit(crt);
    }
    unsigned status = 0;
    int rv = gnutls_certificate_verify_peers3(tls, verify_name.empty() ? nullptr : verify_name.c_str(), &status);
    if (rv != 0) {
        ci.verify_error = gnutls_strerror(rv);
    } else if (status != 0) {
        gnutls_datum_t out{};
        if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0) == 0) {
            ci.verify_error.assign(reinterpret_cast<char*>(out.data), out.size);
            gnutls_free(out.data);
        } else {
            ci.verify_error = fmt::format("status 0x{:x}", status);
        }
    } else {
        ci.verified = true;
    }
    return ci;
}

std::vector<std::pair<std::string, std::uint64_t>> tp_list(const ngtcp2_transport_params* p) {
    std::vector<std::pair<std::string, std::uint64_t>> v;
    if (!p) return v;
    v.emplace_back("initial_max_data", p->initial_max_data);
    v.emplace_back("initial_max_stream_data_bidi_local", p->initial_max_stream_data_bidi_local);
    v.emplace_back("initial_max_stream_data_bidi_remote", p->initial_max_stream_data_bidi_remote);
    v.emplace_back("initial_max_stream_data_uni", p->initial_max_stream_data_uni);
    v.emplace_back("initial_max_streams_bidi", p->initial_max_streams_bidi);
    v.emplace_back("initial_max_streams_uni", p->initial_max_streams_uni);
    v.emplace_back("max_idle_timeout_ms", p->max_idle_timeout / NGTCP2_MILLISECONDS);
    v.emplace_back("max_udp_payload_size", p->max_udp_payload_size);
    v.emplace_back("active_connection_id_limit", p->active_connection_id_limit);
    v.emplace_back("ack_delay_exponent", p->ack_delay_exponent);
    v.emplace_back("max_ack_delay_ms", p->max_ack_delay / NGTCP2_MILLISECONDS);
    v.emplace_back("max_datagram_frame_size", p->max_datagram_frame_size);
    v.emplace_back("disable_active_migration", p->disable_active_migration);
    v.emplace_back("stateless_reset_token", p->stateless_reset_token_present);
    v.emplace_back("preferred_address", p->preferred_address_present);
    v.emplace_back("grease_quic_bit", p->grease_quic_bit);
    return v;
}

// Connect and complete the handshake; on Version Negotiation, start again with the best
// common version (RFC 9368 downgrade protection via original_version).
std::unique_ptr<QuicConn> connect(const ConnConfig& cfg, std::uint64_t deadline) {
    auto c = std::make_unique<QuicConn>(cfg);
    if (!c->start()) return c;
    c->run_until([&] { return c->handshake_completed(); }, deadline);
    if (!c->vn_received) return c;
    auto offered = c->vn_versions;
    std::uint32_t chosen = cfg.versions.empty() ? 0
                                                : ngtcp2_select_version(cfg.versions.data(), cfg.versions.size(),
                                                                        offered.data(), offered.size());
    if (!chosen) {
        c->fail("version", fmt::format("no common QUIC version: server offers {}, we speak {}", vlist(offered),
                                       vlist(cfg.versions)));
        return c;
    }
    ConnConfig c2 = cfg;
    c2.version = chosen;
    c2.original_version = cfg.version;
    auto d = std::make_unique<QuicConn>(c2);
    d->vn_received = false;
    if (d->start()) d->run_until([&] { return d->handshake_completed(); }, deadline);
    d->vn_versions = offered;
    d->vn_received = true;  // seen (and answered); the connection itself is the second attempt
    return d;
}

void classify_timeout(QuicConn& c, double timeout_s) {
    if (c.failed() || c.handshake_completed()) return;
    if (c.closed()) {
        c.fail("closed", "connection closed before the handshake completed");
    } else if (c.rx_datagrams > 0 && !c.server_spoke_quic) {
        c.fail("no_quic", fmt::format("{} UDP datagram(s) came back but none was a QUIC handshake answer: "
                                      "no QUIC on this port?",
                                      c.rx_datagrams));
    } else if (c.rx_datagrams == 0) {
        c.fail("timeout", fmt::format("no answer within {:g} s ({} datagram(s) sent): host down, port filtered, or no "
                                      "QUIC server",
                                      timeout_s, c.tx_datagrams));
    } else {
        c.fail("timeout", fmt::format("handshake did not complete within {:g} s", timeout_s));
    }
}

std::optional<SessionFile> load_session(const Shared& sh, const std::string& target_text) {
    if (sh.o->session.empty()) return std::nullopt;
    std::ifstream in(sh.o->session);
    if (!in) return std::nullopt;  // first run: the file is written afterwards
    std::stringstream ss;
    ss << in.rdbuf();
    std::string err;
    auto s = parse_session(ss.str(), err);
    if (!s) {
        edge::out::warn(fmt::format("{}: {}: ignored (full handshake)", sh.o->session, err));
        return std::nullopt;
    }
    if (s->target != target_text) return std::nullopt;  // a ticket for another server
    if (!sh.alpn.empty() && s->alpn != sh.alpn[0]) return std::nullopt;
    return s;
}

SessionFile make_session(const std::string& target_text, const std::string& alpn, QuicConn& c) {
    SessionFile s;
    s.target = target_text;
    s.alpn = alpn;
    s.version = ngtcp2_conn_get_negotiated_version(c.conn());
    s.tp = tp_list(ngtcp2_conn_get_remote_transport_params(c.conn()));
    s.token = c.new_token;
    s.ticket = c.ticket;
    return s;
}

void save_session(Shared& sh, const SessionFile& s) {
    if (sh.o->session.empty() || s.ticket.empty()) return;
    std::lock_guard lk(sh.session_mu);
    std::string tmp = sh.o->session + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        if (!out) {
            edge::out::warn(fmt::format("cannot write session file {}: {}", tmp, std::strerror(errno)));
            return;
        }
        out << format_session(s);
    }
    if (std::rename(tmp.c_str(), sh.o->session.c_str()) != 0)
        edge::out::warn(fmt::format("cannot write session file {}: {}", sh.o->session, std::strerror(errno)));
}

Record http_record(const HttpResult& r) {
    Record h("http");
    h.num("status", r.status).num("body_bytes", r.body_bytes).boolean("early", r.early);
    h.num("ttfb_us", us_num(r.t_submit, r.t_first_byte)).num("total_us", us_num(r.t_submit, r.t_done));
    Record hd("headers");
    for (auto& [k, v] : r.headers)
        if (!k.empty() && k[0] != ':') hd.str(k, v);
    h.object("headers", hd);
    return h;
}

// Waits for a GET on an established connection; false on failure or timeout.
bool do_get(QuicConn& c, const std::string& path, HttpResult& res, std::uint64_t deadline) {
    if (!c.get(path, &res)) return false;
    c.run_until([&] { return res.done || res.reset; }, deadline);
    c.forget(&res);  // res usually lives shorter than the connection
    return res.done && !res.reset;
}

std::string get_evidence(const HttpResult& r) {
    if (!r.submitted) return "could not open a request stream";
    if (r.reset) return fmt::format("stream reset (HTTP/3 error 0x{:x})", r.error_code);
    if (!r.done) return "no complete response before the timeout";
    return fmt::format("status {}, {} body bytes, TTFB {}", r.status, r.body_bytes, us(r.t_submit, r.t_first_byte));
}

struct Outcome {
    Record rec{"quic_probe"};
    bool ok = false;
};

Outcome probe_target(Shared& sh, const Target& t) {
    const ProbeOptions& o = *sh.o;
    Outcome out;
    Record& r = out.rec;
    std::vector<TestResult> tests;
    auto add_test = [&](std::string name, std::string result, std::string evidence) -> TestResult& {
        tests.push_back({std::move(name), std::move(result), std::move(evidence), Record("quic_test")});
        return tests.back();
    };
    const std::uint64_t t_begin = now_ns();
    const auto timeout_ns = static_cast<std::uint64_t>(o.timeout * 1e9);
    auto deadline = [&] { return now_ns() + timeout_ns; };
    std::string target_text = fmt::format("{}:{}", t.host.find(':') != std::string::npos ? "[" + t.host + "]" : t.host, t.port);
    r.str("target", target_text).str("host", t.host).num("port", unsigned{t.port});

    std::vector<std::string> text;
    auto finish = [&](bool ok, const std::string& kind, const std::string& msg) {
        out.ok = ok;
        r.boolean("ok", ok);
        if (kind.empty()) r.null("error").null("message");
        else r.str("error", kind).str("message", msg);
        std::vector<Record> trs;
        for (auto& tr : tests) {
            Record y("quic_test");
            y.str("name", tr.name).str("result", tr.result).str("evidence", tr.evidence);
            if (!tr.extra.json_body().empty()) y.object("details", tr.extra);
            trs.push_back(y);
        }
        if (!o.tests.empty()) r.objects("tests", trs);
        r.num("elapsed_ms", static_cast<std::uint64_t>((now_ns() - t_begin) / 1'000'000));
        std::string head = fmt::format("{}: {}", target_text, ok ? "ok" : fmt::format("FAILED ({}: {})", kind, msg));
        std::string all = head;
        for (auto& l : text) all += "\n  " + l;
        for (auto& tr : tests)
            all += fmt::format("\n  test {:<19}{:<12}{}", tr.name, tr.result, tr.evidence);
        r.text(all);
        return out;
    };

    // Resolve.
    addrinfo hints{};
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_family = o.ipv4 ? AF_INET : o.ipv6 ? AF_INET6 : AF_UNSPEC;
    addrinfo* res = nullptr;
    int gai = getaddrinfo(t.host.c_str(), std::to_string(t.port).c_str(), &hints, &res);
    if (gai != 0 || !res) {
        r.null("address");
        return finish(false, "resolve", fmt::format("cannot resolve '{}': {}", t.host, gai_strerror(gai)));
    }
    ConnConfig base;
    std::memcpy(&base.remote, res->ai_addr, res->ai_addrlen);
    base.remote_len = res->ai_addrlen;
    freeaddrinfo(res);
    {
        char buf[INET6_ADDRSTRLEN] = "";
        std::uint16_t port = t.port;
        if (base.remote.ss_family == AF_INET)
            inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&base.remote)->sin_addr, buf, sizeof buf);
        else
            inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&base.remote)->sin6_addr, buf, sizeof buf);
        r.str("address", base.remote.ss_family == AF_INET6 ? fmt::format("[{}]:{}", buf, port) : fmt::format("{}:{}", buf, port));
    }
    base.sni = !o.sni.empty() ? o.sni : (is_ip_literal(t.host) ? "" : t.host);
    base.verify_name = !o.sni.empty() ? o.sni : t.host;
    base.authority = (t.host.find(':') != std::string::npos ? "[" + t.host + "]" : t.host) +
                     (t.port == 443 ? "" : fmt::format(":{}", t.port));
    base.alpn = sh.alpn;
    base.versions = sh.versions;
    base.version = sh.versions.front();
    base.priority = std::string(kPriorityBase) + kCiphersAll;
    base.cred = sh.cred;
    base.handshake_timeout_ns = timeout_ns;
    base.verbose_log = sh.verbose >= 3;
    const bool h3 = !sh.alpn.empty() && sh.alpn[0] == "h3";

    // The main connection (resuming from --session if it holds a ticket for this target).
    auto file_session = load_session(sh, target_text);
    ConnConfig main_cfg = base;
    if (file_session) main_cfg.session = &*file_session;
    HttpResult early_get;
    auto c = std::make_unique<QuicConn>(main_cfg);
    std::unique_ptr<QuicConn> cc;
    {
        auto dl = deadline();
        if (file_session && h3) {
            // 0-RTT: submit the GET before the handshake; connect() cannot, so do it by hand.
            if (c->start()) {
                c->get(o.path, &early_get);
                c->run_until([&] { return c->handshake_completed(); }, dl);
            }
            if (c->vn_received) cc = connect(base, dl);  // server changed its versions: start clean
            else cc = std::move(c);
        } else {
            cc = connect(main_cfg, dl);
        }
    }
    QuicConn& m = *cc;
    classify_timeout(m, o.timeout);
    r.str("local_address", m.local_address());
    auto negotiated = m.conn() ? ngtcp2_conn_get_negotiated_version(m.conn()) : 0;
    auto chosen = m.conn() ? ngtcp2_conn_get_client_chosen_version(m.conn()) : 0;
    r.boolean("version_negotiation", m.vn_received).strings("vn_versions", [&] {
        std::vector<std::string> v;
        for (auto x : m.vn_versions) v.push_back(vname(x));
        return v;
    }());
    r.boolean("retry", m.retry_seen);
    if (m.retry_seen) r.num("retry_token_bytes", static_cast<std::uint64_t>(m.retry_token_bytes));

    if (m.failed() || !m.handshake_completed()) {
        if (m.handshake_completed() == false) {
            r.null("version");
        }
        r.num("tx_datagrams", m.tx_datagrams).num("tx_bytes", m.tx_bytes).num("rx_datagrams", m.rx_datagrams).num("rx_bytes", m.rx_bytes);
        r.str("close_by", m.close_info.by);
        if (m.close_info.by != "none")
            r.str("close_type", m.close_info.type).num("close_code", m.close_info.code)
                .str("close_error", error_name(m.close_info.type, m.close_info.code)).str("close_reason", m.close_info.reason);
        text.push_back(fmt::format("address      {} from {}", target_text, m.local_address()));
        if (m.retry_seen) text.push_back("retry        seen");
        if (m.vn_received) text.push_back(fmt::format("version negotiation: server offers {}", vlist(m.vn_versions)));
        text.push_back(fmt::format("datagrams    sent {} ({} bytes), received {} ({} bytes)", m.tx_datagrams, m.tx_bytes,
                                   m.rx_datagrams, m.rx_bytes));
        for (auto& n : sh.tests) add_test(n, "fail", "no connection: " + m.error_message);
        return finish(false, m.error_kind, m.error_message);
    }
    // Wait for HANDSHAKE_DONE (confirmation), and for a 0-RTT request's answer.
    m.run_until([&] { return m.handshake_confirmed(); }, deadline());
    if (early_get.submitted) m.run_until([&] { return early_get.done || early_get.reset; }, deadline());

    gnutls_session_t tls = m.tls();
    std::string alpn;
    {
        gnutls_datum_t d{};
        if (gnutls_alpn_get_selected_protocol(tls, &d) == 0) alpn.assign(reinterpret_cast<char*>(d.data), d.size);
    }
    const char* suite = gnutls_ciphersuite_get(tls);
    const char* group = gnutls_group_get_name(gnutls_group_get(tls));
    bool resumed = gnutls_session_is_resumed(tls) != 0;
    std::string early = !file_session ? "not_attempted"
                        : m.early_attempted ? (m.early_rejected ? "rejected" : "accepted")
                                            : "not_attempted";
    CertInfo ci = cert_info(tls, base.verify_name);

    r.str("version", vname(negotiated)).str("initial_version", vname(main_cfg.original_version ? main_cfg.original_version : chosen));
    r.boolean("compatible_version_negotiation", negotiated != chosen);
    r.str("alpn", alpn).str("tls_cipher", suite ? suite : "").str("tls_group", group ? group : "");
    r.boolean("tls_resumed", resumed).str("early_data", early);
    if (ci.present) {
        r.str("cert_subject", ci.subject).str("cert_issuer", ci.issuer).str("cert_not_after", ci.not_after);
        r.num("cert_expires_in_days", ci.expires_in_days).num("cert_chain_length", ci.chain);
    }
    r.boolean("cert_verified", ci.verified);
    if (ci.verified) r.null("cert_error");
    else r.str("cert_error", ci.verify_error);
    r.num("first_packet_us", us_num(m.t_start, m.t_first_rx));
    r.num("handshake_completed_us", us_num(m.t_start, m.t_hs_completed));
    r.num("handshake_confirmed_us", us_num(m.t_start, m.t_hs_confirmed));

    text.push_back(fmt::format("address      {} from {}", target_text, m.local_address()));
    {
        std::string v = vname(negotiated);
        if (negotiated != chosen) v += fmt::format(" (compatible negotiation from {})", vname(chosen));
        if (m.vn_received) v += fmt::format("; Version Negotiation offered {}", vlist(m.vn_versions));
        text.push_back("version      " + v);
    }
    text.push_back(fmt::format("alpn         {}", alpn));
    text.push_back(fmt::format("tls          {} {}{}", suite ? suite : "?", group ? group : "?",
                               resumed ? fmt::format(", resumed, 0-RTT {}", early) : ""));
    text.push_back(fmt::format("certificate  {} (issuer {}), expires {} ({} days), {}", ci.subject, ci.issuer,
                               ci.not_after, ci.expires_in_days,
                               ci.verified ? "verified" : "NOT verified: " + ci.verify_error));
    text.push_back(fmt::format("timing       first packet {}, handshake completed {}, confirmed {}",
                               us(m.t_start, m.t_first_rx), us(m.t_start, m.t_hs_completed),
                               us(m.t_start, m.t_hs_confirmed)));
    text.push_back(fmt::format("retry        {}", m.retry_seen ? fmt::format("seen ({} byte token)", m.retry_token_bytes) : "not seen"));

    // Checks that run on the main connection.
    auto need_h3 = [&](const char* name) {
        if (h3) return true;
        add_test(name, "unsupported", "needs --alpn h3 to exchange data");
        return false;
    };
    if (wants(sh, "handshake")) {
        if (ci.verified || o.insecure)
            add_test("handshake", "pass",
                     fmt::format("{} {} in {}{}", vname(negotiated), alpn, us(m.t_start, m.t_hs_completed),
                                 ci.verified ? "" : " (certificate not verified, --insecure)"));
        else
            add_test("handshake", "fail", "certificate not verified: " + ci.verify_error);
    }
    HttpResult get1;
    if (wants(sh, "http3") && need_h3("http3")) {
        bool ok = early_get.submitted && (early_get.done || early_get.reset) ? (get1 = early_get, early_get.done && !early_get.reset)
                                                                               : do_get(m, o.path, get1, deadline());
        auto& tr = add_test("http3", ok ? "pass" : "fail", "GET " + o.path + ": " + get_evidence(get1));
        tr.extra = http_record(get1);
        r.object("http", http_record(get1));
        text.push_back(fmt::format("http3        GET {}: {}", o.path, get_evidence(get1)));
    }
    if (wants(sh, "keyupdate") && need_h3("keyupdate")) {
        int before = m.update_key_calls;
        if (!m.handshake_confirmed()) {
            add_test("keyupdate", "fail", "handshake not confirmed: cannot update keys");
        } else if (!m.initiate_key_update()) {
            add_test("keyupdate", "fail", "ngtcp2 refused to initiate a key update");
        } else {
            HttpResult g;
            bool ok = do_get(m, o.path, g, deadline());
            // The server must answer in the new key phase; ngtcp2 derives the next keys
            // once the update is confirmed, so the callback count rises again.
            m.run_until([&] { return m.update_key_calls > before + 1; }, std::min<std::uint64_t>(deadline(), now_ns() + 500'000'000ull));
            auto& tr = add_test("keyupdate", ok ? "pass" : "fail",
                                fmt::format("key update initiated; GET after it: {}; key derivations {} -> {}",
                                            get_evidence(g), before, m.update_key_calls));
            tr.extra.num("key_derivations", m.update_key_calls - before);
        }
    }
    // RTT before any path change (a new path starts its RTT estimate again).
    ngtcp2_conn_stat st{};
    ngtcp2_conn_get_conn_stat(m.conn(), &st);
    // Migration runs before rebind, whatever order --test lists them in. After a NAT
    // rebinding, gtlsserver (ngtcp2 0.12) also probes the old path and keeps one of our
    // CIDs bound to it until that probe gives up (max(3 PTO, 6 x 333 ms) = ~2 s). A
    // migration inside that window makes it retire our current CID; ngtcp2 issues a
    // replacement at once, and the server, still counting the bound CID, is over its
    // active_connection_id_limit (7) and closes with CONNECTION_ID_LIMIT_ERROR. Waiting
    // 2.5 s between the two avoids it too (tried); this order costs nothing.
    if (wants(sh, "migration") && need_h3("migration")) {
        const auto* rtp = ngtcp2_conn_get_remote_transport_params(m.conn());
        if (rtp && rtp->disable_active_migration) {
            add_test("migration", "unsupported", "server sent disable_active_migration");
        } else {
            int old_port = m.local_port();
            if (!m.handshake_confirmed() || !m.migrate()) {
                add_test("migration", "fail", "ngtcp2 could not start migration: " +
                                                  (m.migrate_error.empty() ? m.error_message : m.migrate_error));
            } else {
                m.run_until([&] { return m.path_validations_ok + m.path_validations_failed > 0; }, deadline());
                HttpResult g;
                bool ok = m.path_validations_ok > 0 && do_get(m, o.path, g, deadline());
                auto& tr = add_test(
                    "migration", ok ? "pass" : "fail",
                    fmt::format("local port {} -> {}: path validation {}; GET after it: {}", old_port, m.local_port(),
                                m.path_validations_ok ? "succeeded" : m.path_validations_failed ? "FAILED" : "timed out",
                                get_evidence(g)));
                tr.extra.num("old_port", old_port).num("new_port", m.local_port());
            }
        }
    }
    if (wants(sh, "rebind") && need_h3("rebind")) {
        int old_port = m.local_port();
        if (!m.handshake_confirmed() || !m.rebind()) {
            add_test("rebind", "fail", "could not move to a new local port: " + m.error_message);
        } else {
            HttpResult g;
            bool ok = do_get(m, o.path, g, deadline());
            auto& tr = add_test("rebind", ok ? "pass" : "fail",
                                fmt::format("local port {} -> {} (same connection ID); GET after it: {}", old_port,
                                            m.local_port(), get_evidence(g)));
            tr.extra.num("old_port", old_port).num("new_port", m.local_port());
        }
    }
    // A ticket for resumption checks and the session file: NewSessionTicket follows the handshake.
    if ((wants(sh, "resumption") || wants(sh, "zerortt") || !o.session.empty()) && m.ticket.empty())
        m.run_until([&] { return !m.ticket.empty(); }, std::min<std::uint64_t>(deadline(), now_ns() + 1'000'000'000ull));
    SessionFile mem_session = make_session(target_text, sh.alpn.empty() ? "" : sh.alpn[0], m);
    if (!m.ticket.empty()) save_session(sh, mem_session);

    // Statistics, transport parameters, close.
    const auto* rtp = ngtcp2_conn_get_remote_transport_params(m.conn());
    Record tps("transport_params");
    std::string tptext;
    for (auto& [k, v] : tp_list(rtp)) {
        tps.num(k, v);
        tptext += fmt::format("{}{}={}", tptext.empty() ? "" : " ", k, v);
    }
    m.close();
    r.num("min_rtt_us", st.min_rtt == UINT64_MAX ? -1 : static_cast<std::int64_t>(st.min_rtt / 1000));
    r.num("smoothed_rtt_us", static_cast<std::uint64_t>(st.smoothed_rtt / 1000));
    r.num("latest_rtt_us", static_cast<std::uint64_t>(st.latest_rtt / 1000));
    r.num("tx_datagrams", m.tx_datagrams).num("tx_bytes", m.tx_bytes).num("rx_datagrams", m.rx_datagrams).num("rx_bytes", m.rx_bytes);
    r.object("transport_params", tps);
    r.str("close_by", m.close_info.by).str("close_type", m.close_info.type).num("close_code", m.close_info.code);
    r.str("close_error", error_name(m.close_info.type, m.close_info.code));
    r.str("close_reason", m.close_info.reason);
    text.push_back(fmt::format("rtt          min {:.3f} ms, smoothed {:.3f} ms, latest {:.3f} ms",
                               static_cast<double>(st.min_rtt) / 1e6, static_cast<double>(st.smoothed_rtt) / 1e6,
                               static_cast<double>(st.latest_rtt) / 1e6));
    text.push_back(fmt::format("datagrams    sent {} ({} bytes), received {} ({} bytes)", m.tx_datagrams, m.tx_bytes,
                               m.rx_datagrams, m.rx_bytes));
    text.push_back("server tp    " + tptext);
    text.push_back(fmt::format("close        by {}: {} {}{}", m.close_info.by, m.close_info.type,
                               error_name(m.close_info.type, m.close_info.code),
                               m.close_info.reason.empty() ? "" : " (" + m.close_info.reason + ")"));

    // Checks on connections of their own.
    if (wants(sh, "retry")) {
        if (m.retry_seen)
            add_test("retry", "pass", fmt::format("Retry with a {} byte token; handshake completed with the token",
                                                  m.retry_token_bytes));
        else
            add_test("retry", "unsupported", "server did not send Retry (no address validation by Retry on this port)");
    }
    if (wants(sh, "resumption") || wants(sh, "zerortt")) {
        if (file_session) {
            // The main connection was the second one.
            if (wants(sh, "resumption"))
                add_test("resumption", resumed ? "pass" : "fail",
                         resumed ? "resumed the session from " + o.session
                                 : "server did not resume the session from " + o.session + " (full handshake)");
            if (wants(sh, "zerortt")) {
                if (!h3) add_test("zerortt", "unsupported", "needs --alpn h3 to send 0-RTT data");
                else if (early == "accepted" && early_get.done)
                    add_test("zerortt", "pass", "0-RTT accepted; GET sent in 0-RTT: " + get_evidence(early_get));
                else if (early == "rejected")
                    add_test("zerortt", "fail", "server rejected 0-RTT; GET resent in 1-RTT: " + get_evidence(early_get));
                else
                    add_test("zerortt", "unsupported", resumed ? "ticket does not allow early data" : "session not resumed");
            }
        } else if (m.ticket.empty()) {
            for (auto n : {"resumption", "zerortt"})
                if (wants(sh, n)) add_test(n, "unsupported", "server sent no session ticket within 1 s");
        } else {
            ConnConfig c2cfg = base;
            c2cfg.session = &mem_session;
            c2cfg.version = mem_session.version ? mem_session.version : base.version;
            auto c2 = std::make_unique<QuicConn>(c2cfg);
            HttpResult g;
            auto dl = deadline();
            if (c2->start()) {
                if (h3) c2->get(o.path, &g);
                c2->run_until([&] { return c2->handshake_completed(); }, dl);
            }
            classify_timeout(*c2, o.timeout);
            if (!c2->failed() && h3) c2->run_until([&] { return g.done || g.reset; }, dl);
            bool res2 = c2->handshake_completed() && gnutls_session_is_resumed(c2->tls());
            if (wants(sh, "resumption"))
                add_test("resumption", c2->failed() ? "fail" : res2 ? "pass" : "fail",
                         c2->failed() ? "second connection failed: " + c2->error_message
                         : res2       ? fmt::format("second connection resumed the session (handshake {})",
                                                    us(c2->t_start, c2->t_hs_completed))
                                      : "server did not resume the session (full handshake)");
            if (wants(sh, "zerortt")) {
                if (!h3) add_test("zerortt", "unsupported", "needs --alpn h3 to send 0-RTT data");
                else if (c2->failed()) add_test("zerortt", "fail", "second connection failed: " + c2->error_message);
                else if (!c2->early_attempted) add_test("zerortt", "unsupported", "ticket does not allow early data");
                else if (c2->early_rejected)
                    add_test("zerortt", "fail", "server rejected 0-RTT; GET resent in 1-RTT: " + get_evidence(g));
                else {
                    auto& tr = add_test("zerortt", g.done ? "pass" : "fail",
                                        "0-RTT accepted; GET sent in 0-RTT: " + get_evidence(g));
                    tr.extra = http_record(g);
                }
            }
            if (!c2->ticket.empty()) {
                mem_session.ticket = c2->ticket;
                save_session(sh, mem_session);
            }
            c2->close();
        }
    }
    if (wants(sh, "versionnegotiation")) {
        ConnConfig vcfg = base;
        vcfg.version = kProbeReservedVersion;
        auto dl = deadline();
        auto v = std::make_unique<QuicConn>(vcfg);
        if (v->start()) v->run_until([&] { return v->vn_received; }, dl);
        if (v->vn_received) {
            auto offered = v->vn_versions;
            auto second = connect(vcfg, dl);  // answers the VN with the best common version
            classify_timeout(*second, o.timeout);
            if (second->handshake_completed()) {
                auto nv = ngtcp2_conn_get_negotiated_version(second->conn());
                add_test("versionnegotiation", "pass",
                         fmt::format("Initial with {} answered by Version Negotiation offering {}; reconnected with {}",
                                     vname(kProbeReservedVersion), vlist(offered), vname(nv)));
                second->close();
            } else {
                add_test("versionnegotiation", "fail",
                         fmt::format("Version Negotiation offered {}, but the second handshake failed: {}",
                                     vlist(offered), second->error_message));
            }
        } else {
            add_test("versionnegotiation", "fail",
                     fmt::format("no Version Negotiation for an Initial with {} within {:g} s{}",
                                 vname(kProbeReservedVersion), o.timeout,
                                 v->failed() ? " (" + v->error_message + ")" : ""));
        }
    }
    if (wants(sh, "chacha20")) {
        ConnConfig ccfg = base;
        ccfg.priority = std::string(kPriorityBase) + kCiphersChacha;
        auto c3 = connect(ccfg, deadline());
        classify_timeout(*c3, o.timeout);
        if (c3->handshake_completed()) {
            const char* s = gnutls_ciphersuite_get(c3->tls());
            std::string sn = s ? s : "?";
            add_test("chacha20", sn.find("CHACHA20") != std::string::npos ? "pass" : "fail",
                     "handshake offering only ChaCha20-Poly1305: " + sn);
            c3->close();
        } else {
            add_test("chacha20", "fail", "handshake offering only ChaCha20-Poly1305 failed: " + c3->error_message);
        }
    }
    if (wants(sh, "amplification")) {
        ConnConfig acfg = base;
        auto a = std::make_unique<QuicConn>(acfg);
        if (a->start() && a->send_first_datagram_only()) {
            std::uint64_t window = std::min<std::uint64_t>(timeout_ns, 3'000'000'000ull);
            a->count_raw(now_ns() + window, 1'500'000'000ull);
        }
        if (a->failed()) {
            add_test("amplification", "fail", "could not send the Initial: " + a->error_message);
        } else if (a->rx_datagrams == 0) {
            add_test("amplification", "fail", "no answer to one Initial");
        } else {
            auto vd = amplification_verdict(a->tx_bytes, a->rx_bytes);
            std::string ev = fmt::format("sent 1 Initial ({} bytes), received {} datagram(s), {} bytes before address "
                                         "validation: ratio {:.2f}{}",
                                         a->tx_bytes, a->rx_datagrams, a->rx_bytes, vd.ratio,
                                         a->raw_retry_seen      ? " (answered with Retry: address validated first)"
                                         : vd.exceeded          ? " > 3: reflection exposure"
                                         : vd.at_limit          ? " (stopped at the 3x limit)"
                                                                : "");
            auto& tr = add_test("amplification", vd.exceeded ? "fail" : "pass", ev);
            tr.extra.num("sent_bytes", a->tx_bytes).num("received_bytes", a->rx_bytes).num("received_datagrams", a->rx_datagrams);
            tr.extra.real("ratio", vd.ratio, 2).boolean("exceeded", vd.exceeded).boolean("at_limit", vd.at_limit);
            tr.extra.boolean("retry", a->raw_retry_seen);
        }
    }

    bool ok = ci.verified || o.insecure;
    std::string kind, msg;
    if (!ok) {
        kind = "certificate";
        msg = "certificate not verified: " + ci.verify_error + " (use --ca FILE or --insecure)";
    }
    if (early_get.submitted && !wants(sh, "http3"))
        text.push_back(fmt::format("0-rtt GET    {}: {}", o.path, get_evidence(early_get)));
    for (auto& tr : tests)
        if (tr.result == "fail" && ok) {
            ok = false;
            kind = "test";
            msg = fmt::format("check {} failed", tr.name);
        }
    return finish(ok, kind, msg);
}

std::vector<std::uint32_t> parse_versions(const std::vector<std::string>& in) {
    std::vector<std::uint32_t> out;
    for (auto& s : in) {
        auto v = parse_version(s);
        if (!v) edge::usage_error("--versions: unknown QUIC version '{}' (v1, v2draft or 0xHEX)", s);
        if (!ngtcp2_is_supported_version(*v))
            edge::usage_error("--versions: {} is not supported by ngtcp2 {} (v1, v2draft)", s, NGTCP2_VERSION);
        out.push_back(*v);
    }
    if (out.empty()) edge::usage_error("--versions: give at least one version");
    return out;
}

}  // namespace

int run_probe(const ProbeOptions& o, edge::out::Output& out, int verbose) {
    Shared sh;
    sh.o = &o;
    sh.verbose = verbose;
    std::string err;
    auto tests = parse_tests(o.tests, err);
    if (!tests) edge::usage_error("--test: {}", err);
    sh.tests = *tests;
    sh.versions = parse_versions(o.versions);
    for (auto& a : o.alpn)
        if (a.empty() || a.size() > 255) edge::usage_error("--alpn: protocol names are 1-255 bytes");
    sh.alpn = o.alpn;
    if (o.timeout <= 0 || o.timeout > 3600) edge::usage_error("--timeout must be between 0 and 3600 seconds");
    if (o.concurrency < 1 || o.concurrency > 4096) edge::usage_error("--concurrency must be 1-4096");
    if (o.rate < 0) edge::usage_error("--rate must not be negative");
    if (o.ipv4 && o.ipv6) edge::usage_error("-4 and -6 exclude each other");
    if (o.path.empty() || o.path[0] != '/') edge::usage_error("--path must start with '/'");

    std::vector<std::string> lines = o.targets;
    if (!o.targets_file.empty()) {
        if (o.targets_file == "-") {
            auto v = target_lines(std::cin);
            lines.insert(lines.end(), v.begin(), v.end());
        } else {
            std::ifstream in(o.targets_file);
            if (!in) edge::usage_error("cannot read --targets {}: {}", o.targets_file, std::strerror(errno));
            auto v = target_lines(in);
            lines.insert(lines.end(), v.begin(), v.end());
        }
    }
    if (lines.empty()) edge::usage_error("no target: give HOST[:PORT] or --targets FILE");
    std::vector<Target> targets;
    for (auto& l : lines) {
        auto t = parse_target(l, err);
        if (!t) edge::usage_error("{}", err);
        targets.push_back(*t);
    }
    if (!o.session.empty() && targets.size() > 1)
        edge::usage_error("--session holds one server's ticket: use it with one target");

    if (int rv = gnutls_certificate_allocate_credentials(&sh.cred); rv != 0)
        edge::failure("GnuTLS credentials: {}", gnutls_strerror(rv));
    struct CredGuard {
        gnutls_certificate_credentials_t c;
        ~CredGuard() { gnutls_certificate_free_credentials(c); }
    } guard{sh.cred};
    if (!o.ca.empty()) {
        int n = gnutls_certificate_set_x509_trust_file(sh.cred, o.ca.c_str(), GNUTLS_X509_FMT_PEM);
        if (n <= 0) edge::usage_error("--ca {}: no PEM certificate could be read{}", o.ca, n < 0 ? std::string(": ") + gnutls_strerror(n) : "");
    } else {
        int n = gnutls_certificate_set_x509_system_trust(sh.cred);
        if (n < 0) edge::out::warn(fmt::format("system trust store: {}", gnutls_strerror(n)));
    }

    std::mutex out_mu;
    std::atomic<std::size_t> next{0};
    std::size_t n_ok = 0, n_fail = 0;
    std::mutex rate_mu;
    std::uint64_t next_start = now_ns();
    const std::uint64_t t0 = now_ns();
    auto worker = [&] {
        for (;;) {
            std::size_t i = next.fetch_add(1);
            if (i >= targets.size()) return;
            if (o.rate > 0) {
                std::uint64_t start;
                {
                    std::lock_guard lk(rate_mu);
                    start = std::max(next_start, now_ns());
                    next_start = start + static_cast<std::uint64_t>(1e9 / o.rate);
                }
                auto now = now_ns();
                if (start > now) std::this_thread::sleep_for(std::chrono::nanoseconds(start - now));
            }
            Outcome oc = probe_target(sh, targets[i]);
            std::lock_guard lk(out_mu);
            (oc.ok ? n_ok : n_fail)++;
            out.emit(oc.rec);
        }
    };
    std::size_t nthreads = std::min<std::size_t>(static_cast<std::size_t>(o.concurrency), targets.size());
    if (nthreads <= 1) {
        worker();
    } else {
        std::vector<std::thread> th;
        for (std::size_t i = 0; i < nthreads; ++i) th.emplace_back(worker);
        for (auto& t : th) t.join();
    }
    if (targets.size() > 1) {
        double secs = static_cast<double>(now_ns() - t0) / 1e9;
        Record s("quic_probe_summary");
        s.num("targets", targets.size()).num("ok", n_ok).num("failed", n_fail);
        s.num("elapsed_ms", static_cast<std::uint64_t>(secs * 1000)).real("probes_per_second", secs > 0 ? targets.size() / secs : 0, 1);
        s.text(fmt::format("summary: {} targets, {} ok, {} failed, {:.2f} s ({:.1f} probes/s)", targets.size(), n_ok,
                           n_fail, secs, secs > 0 ? targets.size() / secs : 0));
        out.emit(s);
    }
    return n_fail ? edge::exit_failure : edge::exit_ok;
}

}  // namespace quic_probe
