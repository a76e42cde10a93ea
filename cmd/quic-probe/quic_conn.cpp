// quic-probe: one live QUIC client connection. The structure follows ngtcp2's own
// example client for 0.12 (callbacks from the GnuTLS crypto helper, nghttp3 glue),
// written from the installed headers.
#include "quic_conn.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdarg>
#include <cstring>

#include <fmt/format.h>
#include <gnutls/crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#include "out/output.hpp"
#include "quic/version.hpp"

namespace quic_probe {

std::uint64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

const char* alert_name(gnutls_alert_description_t a) {
    static thread_local std::string buf;
    const char* s = gnutls_alert_get_strname(a);  // "GNUTLS_A_NO_APPLICATION_PROTOCOL"
    if (!s) return nullptr;
    buf = s;
    if (buf.rfind("GNUTLS_A_", 0) == 0) buf.erase(0, 9);
    for (auto& c : buf) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return buf.c_str();
}

namespace {

std::string sockaddr_text(const sockaddr_storage& ss) {
    char buf[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET) {
        auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
        inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
        return fmt::format("{}:{}", buf, ntohs(in->sin_port));
    }
    if (ss.ss_family == AF_INET6) {
        auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
        inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
        return fmt::format("[{}]:{}", buf, ntohs(in6->sin6_port));
    }
    return "?";
}

bool same_addr(const ngtcp2_addr& a, const sockaddr_storage& b, socklen_t blen) {
    return a.addrlen == blen && std::memcmp(a.addr, &b, blen) == 0;
}

void log_printf(void*, const char* fmtstr, ...) {
    va_list ap;
    va_start(ap, fmtstr);
    std::vfprintf(stderr, fmtstr, ap);
    va_end(ap);
    std::fputc('\n', stderr);
}

}  // namespace

QuicConn::QuicConn(ConnConfig c) : cfg_(std::move(c)) {}

QuicConn::~QuicConn() {
    if (h3_) nghttp3_conn_del(h3_);
    if (conn_) ngtcp2_conn_del(conn_);
    if (tls_) gnutls_deinit(tls_);
    for (auto& s : socks_)
        if (s.fd >= 0) ::close(s.fd);
}

void QuicConn::fail(std::string kind, std::string msg) {
    if (error_kind.empty()) {
        error_kind = std::move(kind);
        error_message = std::move(msg);
    }
}

int QuicConn::local_port() const {
    if (socks_.empty()) return 0;
    const auto& ss = socks_.back().local;
    if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
    return 0;
}

std::string QuicConn::local_address() const {
    if (socks_.empty()) return "";
    if (conn_) {
        const ngtcp2_path* p = ngtcp2_conn_get_path(conn_);
        sockaddr_storage ss{};
        std::memcpy(&ss, p->local.addr, std::min<std::size_t>(p->local.addrlen, sizeof ss));
        return sockaddr_text(ss);
    }
    return sockaddr_text(socks_.back().local);
}

bool QuicConn::open_socket(Sock& s, const sockaddr_storage* bind_to) {
    s.fd = ::socket(cfg_.remote.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s.fd < 0) {
        fail("network", fmt::format("cannot open a UDP socket: {}", std::strerror(errno)));
        return false;
    }
    if (bind_to) {
        sockaddr_storage b = *bind_to;
        if (b.ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(&b)->sin_port = 0;
        else reinterpret_cast<sockaddr_in6*>(&b)->sin6_port = 0;
        if (::bind(s.fd, reinterpret_cast<sockaddr*>(&b), cfg_.remote_len) != 0) {
            fail("network", fmt::format("cannot bind a new local port: {}", std::strerror(errno)));
            return false;
        }
    }
    // Connected: ICMP errors (port unreachable) come back as ECONNREFUSED.
    if (::connect(s.fd, reinterpret_cast<const sockaddr*>(&cfg_.remote), cfg_.remote_len) != 0) {
        fail("network", fmt::format("cannot reach {}: {}", sockaddr_text(cfg_.remote), std::strerror(errno)));
        return false;
    }
    s.local_len = sizeof s.local;
    if (::getsockname(s.fd, reinterpret_cast<sockaddr*>(&s.local), &s.local_len) != 0) {
        fail("network", fmt::format("getsockname: {}", std::strerror(errno)));
        return false;
    }
    return true;
}

bool QuicConn::start() {
    Sock s;
    if (!open_socket(s, nullptr)) return false;
    socks_.push_back(s);

    // TLS.
    if (gnutls_init(&tls_, GNUTLS_CLIENT | GNUTLS_ENABLE_EARLY_DATA | GNUTLS_NO_END_OF_EARLY_DATA) != 0) {
        fail("tls", "gnutls_init failed");
        return false;
    }
    const char* err_pos = nullptr;
    if (int rv = gnutls_priority_set_direct(tls_, cfg_.priority.c_str(), &err_pos); rv != 0) {
        fail("tls", fmt::format("bad TLS priority near '{}': {}", err_pos ? err_pos : "", gnutls_strerror(rv)));
        return false;
    }
    if (ngtcp2_crypto_gnutls_configure_client_session(tls_) != 0) {
        fail("tls", "ngtcp2_crypto_gnutls_configure_client_session failed");
        return false;
    }
    ref_.get_conn = cb_get_conn;
    ref_.user_data = this;
    gnutls_session_set_ptr(tls_, &ref_);
    gnutls_handshake_set_hook_function(tls_, GNUTLS_HANDSHAKE_NEW_SESSION_TICKET, GNUTLS_HOOK_POST, cb_ticket);
    if (int rv = gnutls_credentials_set(tls_, GNUTLS_CRD_CERTIFICATE, cfg_.cred); rv != 0) {
        fail("tls", fmt::format("gnutls_credentials_set: {}", gnutls_strerror(rv)));
        return false;
    }
    std::vector<gnutls_datum_t> protos;
    for (auto& a : cfg_.alpn)
        protos.push_back({reinterpret_cast<unsigned char*>(const_cast<char*>(a.data())), static_cast<unsigned>(a.size())});
    gnutls_alpn_set_protocols(tls_, protos.data(), static_cast<unsigned>(protos.size()), GNUTLS_ALPN_MANDATORY);
    if (!cfg_.sni.empty()) gnutls_server_name_set(tls_, GNUTLS_NAME_DNS, cfg_.sni.data(), cfg_.sni.size());
    bool resuming = false;
    if (cfg_.session && !cfg_.session->ticket.empty()) {
        gnutls_datum_t d{const_cast<unsigned char*>(cfg_.session->ticket.data()),
                         static_cast<unsigned>(cfg_.session->ticket.size())};
        if (gnutls_session_set_data(tls_, d.data, d.size) == 0) resuming = true;
        else
            edge::out::debug("session file: GnuTLS could not load the ticket; full handshake");
    }

    // QUIC.
    ngtcp2_callbacks cb{};
    cb.client_initial = ngtcp2_crypto_client_initial_cb;
    cb.recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
    cb.encrypt = ngtcp2_crypto_encrypt_cb;
    cb.decrypt = ngtcp2_crypto_decrypt_cb;
    cb.hp_mask = ngtcp2_crypto_hp_mask_cb;
    cb.recv_retry = cb_recv_retry;
    cb.update_key = cb_update_key;
    cb.delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
    cb.delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
    cb.get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
    cb.version_negotiation = ngtcp2_crypto_version_negotiation_cb;
    cb.handshake_completed = cb_handshake_completed;
    cb.handshake_confirmed = cb_handshake_confirmed;
    cb.recv_version_negotiation = cb_recv_version_negotiation;
    cb.recv_stream_data = cb_recv_stream_data;
    cb.acked_stream_data_offset = cb_acked_stream_data_offset;
    cb.stream_close = cb_stream_close;
    cb.stream_reset = cb_stream_reset;
    cb.stream_stop_sending = cb_stream_stop_sending;
    cb.extend_max_stream_data = cb_extend_max_stream_data;
    cb.rand = cb_rand;
    cb.get_new_connection_id = cb_get_new_connection_id;
    cb.path_validation = cb_path_validation;
    cb.recv_rx_key = cb_recv_rx_key;
    cb.recv_tx_key = cb_recv_tx_key;
    cb.recv_new_token = cb_recv_new_token;
    cb.early_data_rejected = cb_early_data_rejected;

    ngtcp2_cid dcid{}, scid{};
    dcid.datalen = 18;
    scid.datalen = 17;
    gnutls_rnd(GNUTLS_RND_NONCE, dcid.data, dcid.datalen);
    gnutls_rnd(GNUTLS_RND_NONCE, scid.data, scid.datalen);

    ngtcp2_settings settings;
    ngtcp2_settings_default(&settings);
    t_start = now_ns();
    settings.initial_ts = t_start;
    settings.handshake_timeout = cfg_.handshake_timeout_ns;
    if (cfg_.verbose_log) settings.log_printf = log_printf;
    std::vector<std::uint32_t> versions = cfg_.versions;
    if (!versions.empty()) {
        settings.preferred_versions = versions.data();
        settings.preferred_versionslen = versions.size();
    }
    std::vector<std::uint32_t> other = versions;
    if (!ngtcp2_is_reserved_version(cfg_.version) &&
        std::find(other.begin(), other.end(), cfg_.version) == other.end())
        other.insert(other.begin(), cfg_.version);
    if (!other.empty() && !ngtcp2_is_reserved_version(cfg_.version)) {
        settings.other_versions = other.data();
        settings.other_versionslen = other.size();
    }
    settings.original_version = cfg_.original_version ? cfg_.original_version : cfg_.version;
    if (cfg_.session && !cfg_.session->token.empty()) {
        settings.token.base = const_cast<std::uint8_t*>(cfg_.session->token.data());
        settings.token.len = cfg_.session->token.size();
    }

    ngtcp2_transport_params params;
    ngtcp2_transport_params_default(&params);
    params.initial_max_stream_data_bidi_local = 1 << 20;
    params.initial_max_stream_data_bidi_remote = 256 << 10;
    params.initial_max_stream_data_uni = 256 << 10;
    params.initial_max_data = 4 << 20;
    params.initial_max_streams_bidi = 0;
    params.initial_max_streams_uni = 3;
    params.max_idle_timeout = 30 * NGTCP2_SECONDS;
    params.active_connection_id_limit = 7;

    ngtcp2_path path{};
    path.local.addr = reinterpret_cast<ngtcp2_sockaddr*>(&socks_[0].local);
    path.local.addrlen = socks_[0].local_len;
    path.remote.addr = reinterpret_cast<ngtcp2_sockaddr*>(&cfg_.remote);
    path.remote.addrlen = cfg_.remote_len;

    int rv = ngtcp2_conn_client_new(&conn_, &dcid, &scid, &path, cfg_.version, &cb, &settings, &params, nullptr, this);
    if (rv != 0) {
        fail("internal", fmt::format("ngtcp2_conn_client_new: {}", ngtcp2_strerror(rv)));
        return false;
    }
    ngtcp2_conn_set_tls_native_handle(conn_, tls_);

    if (resuming) {
        // The transport parameters the server sent with the ticket: the limits 0-RTT may use.
        ngtcp2_transport_params ep{};
        ngtcp2_transport_params_default(&ep);
        auto get = [&](const char* n, std::uint64_t def) { return cfg_.session->param(n).value_or(def); };
        ep.initial_max_streams_bidi = get("initial_max_streams_bidi", 0);
        ep.initial_max_streams_uni = get("initial_max_streams_uni", 0);
        ep.initial_max_stream_data_bidi_local = get("initial_max_stream_data_bidi_local", 0);
        ep.initial_max_stream_data_bidi_remote = get("initial_max_stream_data_bidi_remote", 0);
        ep.initial_max_stream_data_uni = get("initial_max_stream_data_uni", 0);
        ep.initial_max_data = get("initial_max_data", 0);
        ep.active_connection_id_limit = get("active_connection_id_limit", 2);
        ep.max_datagram_frame_size = get("max_datagram_frame_size", 0);
        ngtcp2_conn_set_early_remote_transport_params(conn_, &ep);
        early_tp_set_ = true;
    }
    return true;
}

bool QuicConn::setup_h3() {
    if (h3_) return true;
    if (cfg_.alpn.empty() || cfg_.alpn[0] != "h3") return false;
    if (ngtcp2_conn_get_streams_uni_left(conn_) < 3) return false;
    nghttp3_callbacks cb{};
    cb.acked_stream_data = h3_acked_stream_data;
    cb.stream_close = h3_stream_close;
    cb.recv_data = h3_recv_data;
    cb.deferred_consume = h3_deferred_consume;
    cb.recv_header = h3_recv_header;
    cb.end_stream = h3_end_stream;
    cb.reset_stream = h3_reset_stream;
    cb.stop_sending = h3_stop_sending;
    nghttp3_settings settings;
    nghttp3_settings_default(&settings);
    settings.qpack_max_dtable_capacity = 4096;
    settings.qpack_blocked_streams = 100;
    if (nghttp3_conn_client_new(&h3_, &cb, &settings, nghttp3_mem_default(), this) != 0) {
        h3_ = nullptr;
        return false;
    }
    std::int64_t ctrl = -1, enc = -1, dec = -1;
    if (ngtcp2_conn_open_uni_stream(conn_, &ctrl, nullptr) != 0 || nghttp3_conn_bind_control_stream(h3_, ctrl) != 0 ||
        ngtcp2_conn_open_uni_stream(conn_, &enc, nullptr) != 0 || ngtcp2_conn_open_uni_stream(conn_, &dec, nullptr) != 0 ||
        nghttp3_conn_bind_qpack_streams(h3_, enc, dec) != 0) {
        nghttp3_conn_del(h3_);
        h3_ = nullptr;
        return false;
    }
    return true;
}

bool QuicConn::get(const std::string& path, HttpResult* res) {
    *res = HttpResult{};
    if (!h3_ && !setup_h3()) return false;
    std::int64_t sid = -1;
    if (int rv = ngtcp2_conn_open_bidi_stream(conn_, &sid, nullptr); rv != 0) return false;
    std::string authority = cfg_.authority;
    auto nv = [](const char* n, const std::string& v) {
        nghttp3_nv x{};
        x.name = reinterpret_cast<uint8_t*>(const_cast<char*>(n));
        x.namelen = std::strlen(n);
        x.value = reinterpret_cast<uint8_t*>(const_cast<char*>(v.data()));
        x.valuelen = v.size();
        x.flags = NGHTTP3_NV_FLAG_NONE;
        return x;
    };
    static const std::string get_s = "GET", https = "https", ua = "quic-probe/" EDGE_VERSION;
    nghttp3_nv nva[] = {nv(":method", get_s), nv(":scheme", https), nv(":authority", authority), nv(":path", path),
                        nv("user-agent", ua)};
    if (nghttp3_conn_submit_request(h3_, sid, nva, 5, nullptr, res) != 0) return false;
    res->submitted = true;
    res->early = !handshake_completed();
    res->t_submit = now_ns();
    requests_.emplace_back(sid, res);
    if (res->early) early_requests_.emplace_back(path, res);
    return true;
}

void QuicConn::forget(const HttpResult* res) {
    std::erase_if(requests_, [res](const auto& e) { return e.second == res; });
    std::erase_if(early_requests_, [res](const auto& e) { return e.second == res; });
}

bool QuicConn::send_datagram(const ngtcp2_path& path, const std::uint8_t* data, std::size_t n) {
    Sock* s = &socks_.back();
    for (auto& x : socks_)
        if (same_addr(path.local, x.local, x.local_len)) s = &x;
    ssize_t w;
    do {
        w = ::send(s->fd, data, n, 0);
    } while (w < 0 && errno == EINTR);
    if (w < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return true;  // dropped; QUIC recovers
        if (errno == ECONNREFUSED) {
            fail("unreachable", fmt::format("ICMP port unreachable from {}: nothing listens on that UDP port",
                                            sockaddr_text(cfg_.remote)));
            return false;
        }
        fail("network", fmt::format("send to {}: {}", sockaddr_text(cfg_.remote), std::strerror(errno)));
        return false;
    }
    if (tx_datagrams == 0) first_datagram_bytes = n;
    ++tx_datagrams;
    tx_bytes += n;
    return true;
}

bool QuicConn::handle_error(int rv, const char* where) {
    if (rv == NGTCP2_ERR_RECV_VERSION_NEGOTIATION) {
        vn_received = true;
        server_spoke_quic = true;
        return false;
    }
    if (rv == NGTCP2_ERR_DRAINING) {
        note_server_close();
        closed_ = true;
        return false;
    }
    if (rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT) {
        // Datagrams came back but none was QUIC: say so, it is a different fault than silence.
        if (rx_datagrams > 0 && !server_spoke_quic)
            fail("no_quic", fmt::format("{} UDP datagram(s) came back but none was a QUIC handshake answer: "
                                        "no QUIC on this port?", rx_datagrams));
        else
            fail("timeout", "handshake timed out");
        return false;
    }
    if (rv == NGTCP2_ERR_IDLE_CLOSE) {
        closed_ = true;
        if (!handshake_completed()) fail("timeout", "idle timeout during the handshake");
        return false;
    }
    if (rv == NGTCP2_ERR_CRYPTO) {
        std::uint8_t alert = ngtcp2_conn_get_tls_alert(conn_);
        const char* name = alert ? alert_name(static_cast<gnutls_alert_description_t>(alert)) : nullptr;
        fail("tls", alert ? fmt::format("TLS handshake failed: we sent alert {} ({})", alert, name ? name : "?")
                          : fmt::format("TLS handshake failed: {}", ngtcp2_strerror(rv)));
    } else if (rv == NGTCP2_ERR_VERSION_NEGOTIATION_FAILURE) {
        fail("version", "version negotiation failed (downgrade detected or no common version)");
    } else {
        fail("protocol", fmt::format("{}: {}", where, ngtcp2_strerror(rv)));
    }
    // Tell the server.
    if (conn_ && !ngtcp2_conn_is_in_closing_period(conn_) && !ngtcp2_conn_is_in_draining_period(conn_)) {
        ngtcp2_connection_close_error ccerr;
        ngtcp2_connection_close_error_default(&ccerr);
        if (rv == NGTCP2_ERR_CRYPTO)
            ngtcp2_connection_close_error_set_transport_error_tls_alert(&ccerr, ngtcp2_conn_get_tls_alert(conn_), nullptr, 0);
        else
            ngtcp2_connection_close_error_set_transport_error_liberr(&ccerr, rv, nullptr, 0);
        std::uint8_t buf[1500];
        ngtcp2_path_storage ps;
        ngtcp2_path_storage_zero(&ps);
        auto n = ngtcp2_conn_write_connection_close(conn_, &ps.path, nullptr, buf, sizeof buf, &ccerr, now_ns());
        if (n > 0) send_datagram(ps.path, buf, static_cast<std::size_t>(n));
        close_info.by = "client";
        close_info.type = "transport";
        close_info.code = ccerr.error_code;
        close_info.reason = error_message;
    }
    closed_ = true;
    return false;
}

void QuicConn::note_server_close() {
    ngtcp2_connection_close_error ccerr{};
    ngtcp2_conn_get_connection_close_error(conn_, &ccerr);
    close_info.by = "server";
    close_info.type = ccerr.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION ? "application" : "transport";
    close_info.code = ccerr.error_code;
    close_info.reason.assign(reinterpret_cast<const char*>(ccerr.reason), ccerr.reasonlen);
    for (auto& c : close_info.reason)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
    bool no_error = ccerr.error_code == 0 ||
                    (ccerr.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION && ccerr.error_code == 0x100);
    if (!handshake_completed()) {
        if (close_info.type == "transport" && ccerr.error_code >= 0x100 && ccerr.error_code <= 0x1ff) {
            auto alert = static_cast<gnutls_alert_description_t>(ccerr.error_code - 0x100);
            const char* name = alert_name(alert);
            fail("tls", fmt::format("server refused the TLS handshake: alert {} ({}){}", ccerr.error_code - 0x100,
                                    name ? name : "?",
                                    close_info.reason.empty() ? "" : ": " + close_info.reason));
        } else {
            fail("closed", fmt::format("server closed the connection during the handshake: {} error 0x{:x}{}",
                                       close_info.type, ccerr.error_code,
                                       close_info.reason.empty() ? "" : " (" + close_info.reason + ")"));
        }
    } else if (!no_error) {
        fail("closed", fmt::format("server closed the connection: {} error 0x{:x}{}", close_info.type, ccerr.error_code,
                                   close_info.reason.empty() ? "" : " (" + close_info.reason + ")"));
    }
}

bool QuicConn::read_socket(Sock& s) {
    std::uint8_t buf[65536];
    for (int i = 0; i < 64; ++i) {
        ssize_t n = ::recv(s.fd, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
            if (errno == ECONNREFUSED) {
                // Only fatal while nothing came back: later it may be a stale socket after rebinding.
                if (rx_datagrams == 0) {
                    fail("unreachable", fmt::format("ICMP port unreachable from {}: nothing listens on that UDP port",
                                                    sockaddr_text(cfg_.remote)));
                    return false;
                }
                continue;
            }
            fail("network", fmt::format("recv from {}: {}", sockaddr_text(cfg_.remote), std::strerror(errno)));
            return false;
        }
        auto t = now_ns();
        if (rx_datagrams == 0) t_first_rx = t;
        ++rx_datagrams;
        rx_bytes += static_cast<std::uint64_t>(n);
        if (n >= 7 && (buf[0] & 0x80)) {
            // A Retry: note it (and its token length) before ngtcp2 consumes it.
            std::uint32_t v = static_cast<std::uint32_t>(buf[1]) << 24 | static_cast<std::uint32_t>(buf[2]) << 16 |
                              static_cast<std::uint32_t>(buf[3]) << 8 | buf[4];
            if (v != 0 && edge::quic::long_type_from_bits(v, static_cast<std::uint8_t>(buf[0] >> 4)) ==
                              edge::quic::LongType::retry) {
                raw_retry_seen = true;
                std::size_t off = 5;
                off += 1 + buf[off];                                     // DCID
                if (off < static_cast<std::size_t>(n)) off += 1 + buf[off];  // SCID
                if (off + 16 <= static_cast<std::size_t>(n)) raw_retry_token_bytes = static_cast<std::size_t>(n) - off - 16;
            }
        }
        if (raw_mode_ || closed_) continue;
        ngtcp2_path path{};
        path.local.addr = reinterpret_cast<ngtcp2_sockaddr*>(&s.local);
        path.local.addrlen = s.local_len;
        path.remote.addr = reinterpret_cast<ngtcp2_sockaddr*>(&cfg_.remote);
        path.remote.addrlen = cfg_.remote_len;
        ngtcp2_pkt_info pi{};
        int rv = ngtcp2_conn_read_pkt(conn_, &path, &pi, buf, static_cast<std::size_t>(n), t);
        if (rv != 0) return handle_error(rv, "reading a packet");
        after_read();
        if (failed()) return false;
    }
    return true;
}

void QuicConn::after_read() {
    if (!pending_early_check_) return;
    pending_early_check_ = false;
    if (!early_tp_set_) return;
    bool accepted = (gnutls_session_get_flags(tls_) & GNUTLS_SFLAGS_EARLY_DATA) != 0;
    if (accepted) return;
    early_rejected = early_attempted;
    // Streams opened for 0-RTT are gone: start HTTP/3 again and resubmit.
    ngtcp2_conn_early_data_rejected(conn_);
    if (h3_) {
        nghttp3_conn_del(h3_);
        h3_ = nullptr;
    }
    requests_.clear();
    auto again = std::move(early_requests_);
    early_requests_.clear();
    for (auto& [p, res] : again) {
        get(p, res);
        res->early = false;
    }
}

bool QuicConn::write_packets() {
    if (closed_ || raw_mode_) return true;
    std::uint8_t buf[1500];
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_pkt_info pi{};
    auto ts = now_ns();
    for (int guard = 0; guard < 1000; ++guard) {
        std::int64_t stream_id = -1;
        int fin = 0;
        nghttp3_vec vec[16];
        nghttp3_ssize sveccnt = 0;
        if (h3_ && ngtcp2_conn_get_max_data_left(conn_)) {
            sveccnt = nghttp3_conn_writev_stream(h3_, &stream_id, &fin, vec, 16);
            if (sveccnt < 0) {
                fail("http3", fmt::format("nghttp3_conn_writev_stream: {}", nghttp3_strerror(static_cast<int>(sveccnt))));
                return false;
            }
        }
        ngtcp2_ssize ndatalen = -1;
        std::uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
        if (fin) flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
        auto n = ngtcp2_conn_writev_stream(conn_, &ps.path, &pi, buf, sizeof buf, &ndatalen, flags, stream_id,
                                           reinterpret_cast<const ngtcp2_vec*>(vec), static_cast<std::size_t>(sveccnt), ts);
        if (n < 0) {
            switch (n) {
                case NGTCP2_ERR_STREAM_DATA_BLOCKED:
                    nghttp3_conn_block_stream(h3_, stream_id);
                    continue;
                case NGTCP2_ERR_STREAM_SHUT_WR:
                    nghttp3_conn_shutdown_stream_write(h3_, stream_id);
                    continue;
                case NGTCP2_ERR_WRITE_MORE:
                    if (h3_ && ndatalen >= 0) nghttp3_conn_add_write_offset(h3_, stream_id, static_cast<std::size_t>(ndatalen));
                    continue;
                default:
                    return handle_error(static_cast<int>(n), "writing a packet");
            }
        }
        if (h3_ && ndatalen >= 0) nghttp3_conn_add_write_offset(h3_, stream_id, static_cast<std::size_t>(ndatalen));
        if (n == 0) break;
        if (!send_datagram(ps.path, buf, static_cast<std::size_t>(n))) return false;
        if (raw_mode_) break;
    }
    ngtcp2_conn_update_pkt_tx_time(conn_, ts);
    return true;
}

bool QuicConn::flush() { return !failed() && write_packets(); }

bool QuicConn::run_until(const std::function<bool()>& pred, std::uint64_t deadline) {
    if (!write_packets()) return pred();
    while (!pred()) {
        if (failed() || closed_ || vn_received) return pred();
        auto now = now_ns();
        if (now >= deadline) return pred();
        std::uint64_t wake = deadline;
        if (!raw_mode_ && conn_) wake = std::min<std::uint64_t>(wake, ngtcp2_conn_get_expiry(conn_));
        int timeout_ms = wake <= now ? 0 : static_cast<int>(std::min<std::uint64_t>((wake - now + 999'999) / 1'000'000, 60'000));
        std::vector<pollfd> pfds;
        for (auto& s : socks_) pfds.push_back({s.fd, POLLIN, 0});
        int pr = ::poll(pfds.data(), pfds.size(), timeout_ms);
        if (pr < 0 && errno != EINTR) {
            fail("network", fmt::format("poll: {}", std::strerror(errno)));
            return pred();
        }
        for (std::size_t i = 0; i < pfds.size() && i < socks_.size(); ++i)
            if (pfds[i].revents & (POLLIN | POLLERR))
                if (!read_socket(socks_[i])) return pred();
        if (raw_mode_) continue;
        now = now_ns();
        if (ngtcp2_conn_get_expiry(conn_) <= now) {
            int rv = ngtcp2_conn_handle_expiry(conn_, now);
            if (rv != 0) {
                handle_error(rv, "timer");
                return pred();
            }
        }
        if (!write_packets()) return pred();
    }
    return true;
}

bool QuicConn::initiate_key_update() {
    int rv = ngtcp2_conn_initiate_key_update(conn_, now_ns());
    if (rv != 0) return false;
    return write_packets();
}

bool QuicConn::rebind() {
    Sock s;
    if (!open_socket(s, &socks_.back().local)) return false;
    // NAT rebinding: the old port is gone, the connection ID stays.
    for (auto& old : socks_) ::close(old.fd);
    socks_.clear();
    socks_.push_back(s);
    ngtcp2_addr a{reinterpret_cast<ngtcp2_sockaddr*>(&socks_.back().local), socks_.back().local_len};
    ngtcp2_conn_set_local_addr(conn_, &a);
    return write_packets();
}

bool QuicConn::migrate() {
    Sock s;
    if (!open_socket(s, &socks_.back().local)) return false;
    socks_.push_back(s);
    ngtcp2_path path{};
    path.local.addr = reinterpret_cast<ngtcp2_sockaddr*>(&socks_.back().local);
    path.local.addrlen = socks_.back().local_len;
    path.remote.addr = reinterpret_cast<ngtcp2_sockaddr*>(&cfg_.remote);
    path.remote.addrlen = cfg_.remote_len;
    int rv = ngtcp2_conn_initiate_migration(conn_, &path, now_ns());
    if (rv != 0) {
        migrate_error = ngtcp2_strerror(rv);
        return false;
    }
    return write_packets();
}

bool QuicConn::send_first_datagram_only() {
    raw_mode_ = false;
    std::uint8_t buf[1500];
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_pkt_info pi{};
    auto n = ngtcp2_conn_write_pkt(conn_, &ps.path, &pi, buf, sizeof buf, now_ns());
    if (n <= 0) {
        fail("internal", fmt::format("could not build the first Initial: {}", n < 0 ? ngtcp2_strerror(static_cast<int>(n)) : "empty"));
        return false;
    }
    raw_mode_ = true;
    return send_datagram(ps.path, buf, static_cast<std::size_t>(n));
}

void QuicConn::count_raw(std::uint64_t deadline, std::uint64_t quiet_ns) {
    raw_mode_ = true;
    for (;;) {
        auto now = now_ns();
        std::uint64_t last = t_first_rx ? std::max(t_first_rx, last_rx_) : t_start;
        std::uint64_t until = std::min(deadline, last + quiet_ns);
        if (!t_first_rx) until = deadline;
        if (now >= until) return;
        pollfd p{socks_.back().fd, POLLIN, 0};
        int pr = ::poll(&p, 1, static_cast<int>((until - now + 999'999) / 1'000'000));
        if (pr > 0) {
            auto before = rx_datagrams;
            if (!read_socket(socks_.back())) return;
            if (rx_datagrams != before) last_rx_ = now_ns();
        }
    }
}

void QuicConn::close() {
    if (closed_ || !conn_) return;
    if (ngtcp2_conn_is_in_closing_period(conn_) || ngtcp2_conn_is_in_draining_period(conn_)) {
        closed_ = true;
        return;
    }
    ngtcp2_connection_close_error ccerr;
    ngtcp2_connection_close_error_default(&ccerr);
    if (h3_) ngtcp2_connection_close_error_set_application_error(&ccerr, NGHTTP3_H3_NO_ERROR, nullptr, 0);
    std::uint8_t buf[1500];
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    auto n = ngtcp2_conn_write_connection_close(conn_, &ps.path, nullptr, buf, sizeof buf, &ccerr, now_ns());
    if (n > 0) send_datagram(ps.path, buf, static_cast<std::size_t>(n));
    if (close_info.by == "none") {
        close_info.by = "client";
        close_info.type = h3_ ? "application" : "transport";
        close_info.code = ccerr.error_code;
        close_info.reason = "probe finished";
    }
    closed_ = true;
}

// ---- ngtcp2 callbacks ----

ngtcp2_conn* QuicConn::cb_get_conn(ngtcp2_crypto_conn_ref* ref) { return static_cast<QuicConn*>(ref->user_data)->conn_; }

int QuicConn::cb_ticket(gnutls_session_t session, unsigned, unsigned, unsigned, const gnutls_datum_t*) {
    auto* ref = static_cast<ngtcp2_crypto_conn_ref*>(gnutls_session_get_ptr(session));
    auto* self = static_cast<QuicConn*>(ref->user_data);
    gnutls_datum_t d{};
    if (gnutls_session_get_data2(session, &d) == 0) {
        self->ticket.assign(d.data, d.data + d.size);
        ++self->tickets_received;
        gnutls_free(d.data);
    }
    return 0;
}

int QuicConn::cb_handshake_completed(ngtcp2_conn*, void* user) {
    auto* self = static_cast<QuicConn*>(user);
    self->t_hs_completed = now_ns();
    self->server_spoke_quic = true;
    // Early data rejected: handled here, before the 1-RTT packets coalesced behind the
    // server's Finished reach HTTP/3 (the server's control and QPACK streams).
    self->pending_early_check_ = true;
    self->after_read();
    return 0;
}

int QuicConn::cb_handshake_confirmed(ngtcp2_conn*, void* user) {
    static_cast<QuicConn*>(user)->t_hs_confirmed = now_ns();
    return 0;
}

int QuicConn::cb_recv_version_negotiation(ngtcp2_conn*, const ngtcp2_pkt_hd*, const uint32_t* sv, size_t nsv, void* user) {
    auto* self = static_cast<QuicConn*>(user);
    self->vn_versions.assign(sv, sv + nsv);
    return 0;
}

int QuicConn::cb_recv_retry(ngtcp2_conn* conn, const ngtcp2_pkt_hd* hd, void* user) {
    auto* self = static_cast<QuicConn*>(user);
    self->retry_seen = true;
    self->server_spoke_quic = true;
    self->retry_token_bytes = hd->token.len ? hd->token.len : self->raw_retry_token_bytes;
    return ngtcp2_crypto_recv_retry_cb(conn, hd, user);
}

int QuicConn::cb_recv_stream_data(ngtcp2_conn* conn, uint32_t flags, int64_t stream_id, uint64_t, const uint8_t* data,
                                  size_t datalen, void* user, void*) {
    auto* self = static_cast<QuicConn*>(user);
    if (!self->h3_) {
        ngtcp2_conn_extend_max_stream_offset(conn, stream_id, datalen);
        ngtcp2_conn_extend_max_offset(conn, datalen);
        return 0;
    }
    auto n = nghttp3_conn_read_stream(self->h3_, stream_id, data, datalen, flags & NGTCP2_STREAM_DATA_FLAG_FIN);
    if (n < 0) {
        self->fail("http3", fmt::format("HTTP/3 error from the server's stream {}: {}", stream_id,
                                        nghttp3_strerror(static_cast<int>(n))));
        return NGTCP2_ERR_CALLBACK_FAILURE;
    }
    ngtcp2_conn_extend_max_stream_offset(conn, stream_id, static_cast<uint64_t>(n));
    ngtcp2_conn_extend_max_offset(conn, static_cast<uint64_t>(n));
    return 0;
}

int QuicConn::cb_acked_stream_data_offset(ngtcp2_conn*, int64_t stream_id, uint64_t, uint64_t datalen, void* user, void*) {
    auto* self = static_cast<QuicConn*>(user);
    if (self->h3_ && nghttp3_conn_add_ack_offset(self->h3_, stream_id, datalen) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

int QuicConn::cb_stream_close(ngtcp2_conn*, uint32_t flags, int64_t stream_id, uint64_t app_error_code, void* user, void*) {
    auto* self = static_cast<QuicConn*>(user);
    if (!self->h3_) return 0;
    if (!(flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET)) app_error_code = NGHTTP3_H3_NO_ERROR;
    int rv = nghttp3_conn_close_stream(self->h3_, stream_id, app_error_code);
    if (rv != 0 && rv != NGHTTP3_ERR_STREAM_NOT_FOUND) return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

int QuicConn::cb_stream_reset(ngtcp2_conn*, int64_t stream_id, uint64_t, uint64_t, void* user, void*) {
    auto* self = static_cast<QuicConn*>(user);
    if (self->h3_ && nghttp3_conn_shutdown_stream_read(self->h3_, stream_id) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

int QuicConn::cb_stream_stop_sending(ngtcp2_conn*, int64_t stream_id, uint64_t, void* user, void*) {
    auto* self = static_cast<QuicConn*>(user);
    if (self->h3_ && nghttp3_conn_shutdown_stream_read(self->h3_, stream_id) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

int QuicConn::cb_extend_max_stream_data(ngtcp2_conn*, int64_t stream_id, uint64_t, void* user, void*) {
    auto* self = static_cast<QuicConn*>(user);
    if (self->h3_ && nghttp3_conn_unblock_stream(self->h3_, stream_id) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

void QuicConn::cb_rand(uint8_t* dest, size_t len, const ngtcp2_rand_ctx*) { gnutls_rnd(GNUTLS_RND_RANDOM, dest, len); }

int QuicConn::cb_get_new_connection_id(ngtcp2_conn*, ngtcp2_cid* cid, uint8_t* token, size_t cidlen, void*) {
    if (gnutls_rnd(GNUTLS_RND_RANDOM, cid->data, cidlen) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
    cid->datalen = cidlen;
    if (gnutls_rnd(GNUTLS_RND_RANDOM, token, NGTCP2_STATELESS_RESET_TOKENLEN) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

int QuicConn::cb_update_key(ngtcp2_conn* conn, uint8_t* rx_secret, uint8_t* tx_secret, ngtcp2_crypto_aead_ctx* rx_aead_ctx,
                            uint8_t* rx_iv, ngtcp2_crypto_aead_ctx* tx_aead_ctx, uint8_t* tx_iv,
                            const uint8_t* current_rx_secret, const uint8_t* current_tx_secret, size_t secretlen,
                            void* user) {
    ++static_cast<QuicConn*>(user)->update_key_calls;
    return ngtcp2_crypto_update_key_cb(conn, rx_secret, tx_secret, rx_aead_ctx, rx_iv, tx_aead_ctx, tx_iv,
                                       current_rx_secret, current_tx_secret, secretlen, user);
}

int QuicConn::cb_path_validation(ngtcp2_conn*, uint32_t, const ngtcp2_path*, ngtcp2_path_validation_result res, void* user) {
    auto* self = static_cast<QuicConn*>(user);
    if (res == NGTCP2_PATH_VALIDATION_RESULT_SUCCESS) ++self->path_validations_ok;
    else ++self->path_validations_failed;
    return 0;
}

int QuicConn::cb_recv_rx_key(ngtcp2_conn*, ngtcp2_crypto_level level, void* user) {
    auto* self = static_cast<QuicConn*>(user);
    if (level == NGTCP2_CRYPTO_LEVEL_HANDSHAKE) self->server_spoke_quic = true;
    if (level == NGTCP2_CRYPTO_LEVEL_APPLICATION && self->cfg_.alpn.size() && self->cfg_.alpn[0] == "h3") self->setup_h3();
    return 0;
}

int QuicConn::cb_recv_tx_key(ngtcp2_conn*, ngtcp2_crypto_level level, void* user) {
    if (level == NGTCP2_CRYPTO_LEVEL_EARLY) static_cast<QuicConn*>(user)->early_attempted = true;
    return 0;
}

int QuicConn::cb_recv_new_token(ngtcp2_conn*, const ngtcp2_vec* token, void* user) {
    static_cast<QuicConn*>(user)->new_token.assign(token->base, token->base + token->len);
    return 0;
}

int QuicConn::cb_early_data_rejected(ngtcp2_conn*, void*) { return 0; }

// ---- nghttp3 callbacks ----

namespace {
HttpResult* find_req(std::vector<std::pair<std::int64_t, HttpResult*>>& reqs, std::int64_t sid) {
    for (auto& [id, r] : reqs)
        if (id == sid) return r;
    return nullptr;
}
}  // namespace

int QuicConn::h3_recv_data(nghttp3_conn*, int64_t sid, const uint8_t*, size_t datalen, void* user, void*) {
    auto* self = static_cast<QuicConn*>(user);
    ngtcp2_conn_extend_max_stream_offset(self->conn_, sid, datalen);
    ngtcp2_conn_extend_max_offset(self->conn_, datalen);
    if (auto* r = find_req(self->requests_, sid)) {
        if (!r->t_first_byte) r->t_first_byte = now_ns();
        r->body_bytes += datalen;
    }
    return 0;
}

int QuicConn::h3_deferred_consume(nghttp3_conn*, int64_t sid, size_t consumed, void* user, void*) {
    auto* self = static_cast<QuicConn*>(user);
    ngtcp2_conn_extend_max_stream_offset(self->conn_, sid, consumed);
    ngtcp2_conn_extend_max_offset(self->conn_, consumed);
    return 0;
}

int QuicConn::h3_recv_header(nghttp3_conn*, int64_t sid, int32_t, nghttp3_rcbuf* name, nghttp3_rcbuf* value, uint8_t,
                             void* user, void*) {
    auto* self = static_cast<QuicConn*>(user);
    auto* r = find_req(self->requests_, sid);
    if (!r) return 0;
    if (!r->t_first_byte) r->t_first_byte = now_ns();
    auto n = nghttp3_rcbuf_get_buf(name);
    auto v = nghttp3_rcbuf_get_buf(value);
    std::string ns(reinterpret_cast<const char*>(n.base), n.len), vs(reinterpret_cast<const char*>(v.base), v.len);
    if (ns == ":status") r->status = std::atoi(vs.c_str());
    r->headers.emplace_back(std::move(ns), std::move(vs));
    return 0;
}

int QuicConn::h3_end_stream(nghttp3_conn*, int64_t sid, void* user, void*) {
    auto* self = static_cast<QuicConn*>(user);
    if (auto* r = find_req(self->requests_, sid)) {
        r->done = true;
        r->t_done = now_ns();
    }
    return 0;
}

int QuicConn::h3_stream_close(nghttp3_conn*, int64_t sid, uint64_t code, void* user, void*) {
    auto* self = static_cast<QuicConn*>(user);
    if (auto* r = find_req(self->requests_, sid)) {
        if (!r->done) {
            r->reset = true;
            r->error_code = code;
            r->t_done = now_ns();
        }
    }
    return 0;
}

int QuicConn::h3_acked_stream_data(nghttp3_conn*, int64_t, uint64_t, void*, void*) { return 0; }

int QuicConn::h3_reset_stream(nghttp3_conn*, int64_t sid, uint64_t code, void* user, void*) {
    auto* self = static_cast<QuicConn*>(user);
    if (auto* r = find_req(self->requests_, sid)) {
        r->reset = true;
        r->error_code = code;
    }
    ngtcp2_conn_shutdown_stream_write(self->conn_, sid, code);
    return 0;
}

int QuicConn::h3_stop_sending(nghttp3_conn*, int64_t sid, uint64_t code, void* user, void*) {
    auto* self = static_cast<QuicConn*>(user);
    ngtcp2_conn_shutdown_stream_read(self->conn_, sid, code);
    return 0;
}

}  // namespace quic_probe
