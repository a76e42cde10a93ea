// quic-probe: one live QUIC client connection (ngtcp2 0.12 + GnuTLS + nghttp3) with the
// hooks a diagnostic needs: timings, Retry and Version Negotiation seen, session tickets,
// 0-RTT, HTTP/3 GETs, key update, NAT rebinding, active migration, and a raw
// "one Initial, count the answer" mode for the amplification check.
#pragma once
#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gnutls/gnutls.h>
#include <nghttp3/nghttp3.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include "probe_util.hpp"

namespace quic_probe {

std::uint64_t now_ns();
// TLS alert names as in RFC 8446 ("no_application_protocol"), nullptr if unknown.
const char* alert_name(gnutls_alert_description_t a);

struct ConnConfig {
    sockaddr_storage remote{};
    socklen_t remote_len = 0;
    std::string sni;          // empty: no server_name extension (IP literal targets)
    std::string verify_name;  // name (or IP) the certificate is checked against
    std::string authority;    // HTTP/3 :authority
    std::vector<std::string> alpn{"h3"};
    std::uint32_t version = 1;           // the version of the first Initial
    std::uint32_t original_version = 0;  // after Version Negotiation: the version first tried
    std::vector<std::uint32_t> versions;  // preferred and offered (version_information)
    std::string priority;                 // GnuTLS priority string
    gnutls_certificate_credentials_t cred = nullptr;
    const SessionFile* session = nullptr;  // resume (and send 0-RTT) from this
    std::uint64_t handshake_timeout_ns = 5'000'000'000ull;
    bool verbose_log = false;
};

struct HttpResult {
    bool submitted = false;
    bool done = false;
    bool reset = false;
    bool early = false;  // submitted before the handshake (0-RTT)
    int status = 0;
    std::vector<std::pair<std::string, std::string>> headers;
    std::uint64_t body_bytes = 0;
    std::uint64_t t_submit = 0, t_first_byte = 0, t_done = 0;
    std::uint64_t error_code = 0;
};

struct CloseInfo {
    std::string by = "none";  // client, server, none
    std::string type;         // transport, application
    std::uint64_t code = 0;
    std::string reason;
};

class QuicConn {
public:
    explicit QuicConn(ConnConfig c);
    ~QuicConn();
    QuicConn(const QuicConn&) = delete;
    QuicConn& operator=(const QuicConn&) = delete;

    // Socket, TLS session and ngtcp2 connection; false and error_ set on failure.
    bool start();
    // Drives the connection until pred() holds, it ends, or the deadline. Returns pred().
    bool run_until(const std::function<bool()>& pred, std::uint64_t deadline);
    // Flush pending packets now.
    bool flush();

    // HTTP/3: one GET on a new request stream; the result is filled as it arrives.
    bool get(const std::string& path, HttpResult* res);
    // Stop filling res: the caller's result goes away, but the stream's last frames may
    // still arrive (a late stream close after the response ended).
    void forget(const HttpResult* res);
    bool h3_ready() const { return h3_ != nullptr; }

    bool initiate_key_update();
    // A new local port on the same connection ID without telling the server (NAT rebinding).
    bool rebind();
    // Active migration to a new local port: path validation, new connection ID.
    bool migrate();

    // Amplification: send only the first flight's first datagram, then just count what
    // arrives (nothing is acknowledged, so the client's address is never validated).
    bool send_first_datagram_only();
    void count_raw(std::uint64_t deadline, std::uint64_t quiet_ns);

    // CONNECTION_CLOSE with NO_ERROR and a short drain.
    void close();

    // Records a failure (the first one wins).
    void fail(std::string kind, std::string msg);

    // State.
    bool failed() const { return !error_kind.empty(); }
    bool handshake_completed() const { return t_hs_completed != 0; }
    bool handshake_confirmed() const { return t_hs_confirmed != 0; }
    bool closed() const { return closed_; }
    ngtcp2_conn* conn() { return conn_; }
    gnutls_session_t tls() { return tls_; }
    int local_port() const;
    std::string local_address() const;

    // Results.
    std::string error_kind, error_message;
    bool vn_received = false;
    std::vector<std::uint32_t> vn_versions;
    bool retry_seen = false;
    bool raw_retry_seen = false;  // a Retry came back (seen on the wire)
    std::size_t raw_retry_token_bytes = 0;
    std::size_t retry_token_bytes = 0;
    bool server_spoke_quic = false;
    bool early_attempted = false;  // a 0-RTT key was installed and 0-RTT data queued
    bool early_rejected = false;
    std::uint64_t t_start = 0, t_first_rx = 0, t_hs_completed = 0, t_hs_confirmed = 0;
    std::uint64_t tx_datagrams = 0, tx_bytes = 0, rx_datagrams = 0, rx_bytes = 0;
    std::uint64_t first_datagram_bytes = 0;
    int update_key_calls = 0;
    int path_validations_ok = 0, path_validations_failed = 0;
    std::vector<std::uint8_t> ticket;     // newest TLS session data
    std::vector<std::uint8_t> new_token;  // NEW_TOKEN from the server
    CloseInfo close_info;
    int tickets_received = 0;
    std::string migrate_error;

private:
    struct Sock {
        int fd = -1;
        sockaddr_storage local{};
        socklen_t local_len = 0;
    };
    bool open_socket(Sock& s, const sockaddr_storage* bind_to);
    bool read_socket(Sock& s);
    bool write_packets();
    bool send_datagram(const ngtcp2_path& path, const std::uint8_t* data, std::size_t n);
    bool handle_error(int rv, const char* where);
    bool setup_h3();
    void after_read();
    void note_server_close();

    // ngtcp2 callbacks
    static int cb_handshake_completed(ngtcp2_conn*, void*);
    static int cb_handshake_confirmed(ngtcp2_conn*, void*);
    static int cb_recv_version_negotiation(ngtcp2_conn*, const ngtcp2_pkt_hd*, const uint32_t*, size_t, void*);
    static int cb_recv_retry(ngtcp2_conn*, const ngtcp2_pkt_hd*, void*);
    static int cb_recv_stream_data(ngtcp2_conn*, uint32_t, int64_t, uint64_t, const uint8_t*, size_t, void*, void*);
    static int cb_acked_stream_data_offset(ngtcp2_conn*, int64_t, uint64_t, uint64_t, void*, void*);
    static int cb_stream_close(ngtcp2_conn*, uint32_t, int64_t, uint64_t, void*, void*);
    static int cb_stream_reset(ngtcp2_conn*, int64_t, uint64_t, uint64_t, void*, void*);
    static int cb_stream_stop_sending(ngtcp2_conn*, int64_t, uint64_t, void*, void*);
    static int cb_extend_max_stream_data(ngtcp2_conn*, int64_t, uint64_t, void*, void*);
    static void cb_rand(uint8_t*, size_t, const ngtcp2_rand_ctx*);
    static int cb_get_new_connection_id(ngtcp2_conn*, ngtcp2_cid*, uint8_t*, size_t, void*);
    static int cb_update_key(ngtcp2_conn*, uint8_t*, uint8_t*, ngtcp2_crypto_aead_ctx*, uint8_t*,
                             ngtcp2_crypto_aead_ctx*, uint8_t*, const uint8_t*, const uint8_t*, size_t, void*);
    static int cb_path_validation(ngtcp2_conn*, uint32_t, const ngtcp2_path*, ngtcp2_path_validation_result, void*);
    static int cb_recv_rx_key(ngtcp2_conn*, ngtcp2_crypto_level, void*);
    static int cb_recv_tx_key(ngtcp2_conn*, ngtcp2_crypto_level, void*);
    static int cb_recv_new_token(ngtcp2_conn*, const ngtcp2_vec*, void*);
    static int cb_early_data_rejected(ngtcp2_conn*, void*);
    static ngtcp2_conn* cb_get_conn(ngtcp2_crypto_conn_ref*);
    static int cb_ticket(gnutls_session_t, unsigned, unsigned, unsigned, const gnutls_datum_t*);
    // nghttp3 callbacks
    static int h3_recv_data(nghttp3_conn*, int64_t, const uint8_t*, size_t, void*, void*);
    static int h3_deferred_consume(nghttp3_conn*, int64_t, size_t, void*, void*);
    static int h3_recv_header(nghttp3_conn*, int64_t, int32_t, nghttp3_rcbuf*, nghttp3_rcbuf*, uint8_t, void*, void*);
    static int h3_end_stream(nghttp3_conn*, int64_t, void*, void*);
    static int h3_stream_close(nghttp3_conn*, int64_t, uint64_t, void*, void*);
    static int h3_acked_stream_data(nghttp3_conn*, int64_t, uint64_t, void*, void*);
    static int h3_reset_stream(nghttp3_conn*, int64_t, uint64_t, void*, void*);
    static int h3_stop_sending(nghttp3_conn*, int64_t, uint64_t, void*, void*);

    ConnConfig cfg_;
    std::vector<Sock> socks_;
    ngtcp2_conn* conn_ = nullptr;
    gnutls_session_t tls_ = nullptr;
    nghttp3_conn* h3_ = nullptr;
    ngtcp2_crypto_conn_ref ref_{};
    std::vector<std::pair<std::int64_t, HttpResult*>> requests_;
    std::vector<std::pair<std::string, HttpResult*>> early_requests_;  // to resubmit if 0-RTT is rejected
    std::vector<std::uint8_t> alpn_wire_;
    bool closed_ = false;
    bool raw_mode_ = false;
    bool early_tp_set_ = false;
    bool pending_early_check_ = false;
    std::uint64_t last_rx_ = 0;
};

}  // namespace quic_probe
