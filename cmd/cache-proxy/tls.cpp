#include "tls.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "cli/error.hpp"

namespace cache_proxy::tls {

namespace {

// ---- ticket key ring ------------------------------------------------------------------------

struct TicketKey {
    uint8_t name[16];
    uint8_t aes[16];
    uint8_t hmac[32];
};

struct Ring {
    std::mutex mu;
    TicketKey keys[2];  // [0] current (encrypts), [1] previous (decrypts only)
    int n = 0;
    std::atomic<uint64_t> rotations{0};
};

Ring& ring() {
    static Ring r;
    return r;
}

int ticket_cb(SSL*, uint8_t* key_name, uint8_t* iv, EVP_CIPHER_CTX* cctx, HMAC_CTX* hctx, int encrypt) {
    Ring& r = ring();
    TicketKey k;
    int which = -1;
    {
        std::lock_guard lk(r.mu);
        if (r.n == 0) return encrypt ? -1 : 0;
        if (encrypt) {
            k = r.keys[0];
            which = 0;
        } else {
            for (int i = 0; i < r.n; i++)
                if (CRYPTO_memcmp(key_name, r.keys[i].name, 16) == 0) {
                    k = r.keys[i];
                    which = i;
                    break;
                }
        }
    }
    if (encrypt) {
        if (!RAND_bytes(iv, 16)) return -1;
        std::memcpy(key_name, k.name, 16);
        if (!EVP_EncryptInit_ex(cctx, EVP_aes_128_cbc(), nullptr, k.aes, iv)) return -1;
        if (!HMAC_Init_ex(hctx, k.hmac, sizeof k.hmac, EVP_sha256(), nullptr)) return -1;
        return 1;
    }
    if (which < 0) return 0;  // unknown or expired key: full handshake
    if (!HMAC_Init_ex(hctx, k.hmac, sizeof k.hmac, EVP_sha256(), nullptr)) return -1;
    if (!EVP_DecryptInit_ex(cctx, EVP_aes_128_cbc(), nullptr, k.aes, iv)) return -1;
    return which == 0 ? 1 : 2;  // 2: issued under the previous key, renew it
}

// ---- certificates ---------------------------------------------------------------------------

std::string ssl_error() {
    uint32_t e = ERR_get_error();
    ERR_clear_error();
    if (!e) return "unknown error";
    const char* r = ERR_reason_error_string(e);
    return r ? r : "unknown error";
}

void must_read(const char* opt, const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) edge::usage_error("{} {}: cannot read: {}", opt, path, std::strerror(errno));
    std::fclose(f);
}

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    return s;
}

std::vector<std::string> cert_names(X509* x) {
    std::vector<std::string> out;
    auto* gens = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
    if (gens) {
        for (size_t i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
            const GENERAL_NAME* g = sk_GENERAL_NAME_value(gens, i);
            if (g->type != GEN_DNS) continue;
            const ASN1_STRING* s = g->d.dNSName;
            out.push_back(lower(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                            static_cast<size_t>(ASN1_STRING_length(s)))));
        }
        GENERAL_NAMES_free(gens);
    }
    if (out.empty()) {
        char cn[256];
        int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
        if (n > 0) out.push_back(lower(std::string(cn, static_cast<size_t>(n))));
    }
    return out;
}

bool name_matches(const std::string& pattern, const std::string& host) {
    if (pattern == host) return true;
    if (pattern.size() > 2 && pattern[0] == '*' && pattern[1] == '.') {
        auto dot = host.find('.');
        return dot != std::string::npos && dot > 0 && host.compare(dot, std::string::npos, pattern, 1) == 0;
    }
    return false;
}

int servername_cb(SSL* ssl, int*, void* arg) {
    const auto* c = static_cast<const Context*>(arg);
    const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    const Context::Entry* e = c->select(sni);
    if (e && e->ctx != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, e->ctx);
    return SSL_TLSEXT_ERR_OK;
}

// ALPN: HTTP/1.1 only (HTTP/1.0 accepted); a client offering neither gets the RFC 7301 alert.
int alpn_cb(SSL*, const uint8_t** out, uint8_t* out_len, const uint8_t* in, unsigned in_len, void*) {
    for (unsigned i = 0; i < in_len;) {
        unsigned n = in[i];
        if (i + 1 + n > in_len) break;
        std::string_view p(reinterpret_cast<const char*>(in + i + 1), n);
        if (p == "http/1.1" || p == "http/1.0") {
            *out = in + i + 1;
            *out_len = static_cast<uint8_t>(n);
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

}  // namespace

void rotate_ticket_keys() {
    Ring& r = ring();
    TicketKey k;
    RAND_bytes(reinterpret_cast<uint8_t*>(&k), sizeof k);
    std::lock_guard lk(r.mu);
    r.keys[1] = r.keys[0];
    r.keys[0] = k;
    r.n = r.n == 0 ? 1 : 2;
    r.rotations.fetch_add(1, std::memory_order_relaxed);
}

uint64_t ticket_key_rotations() { return ring().rotations.load(std::memory_order_relaxed); }

std::shared_ptr<Context> Context::load(const std::vector<CertKey>& pairs, const std::string& min_version,
                                       unsigned ticket_lifetime_s) {
    std::shared_ptr<Context> c(new Context());
    unsigned idx = 0;
    for (auto& p : pairs) {
        must_read("--tls-cert", p.cert);
        must_read("--tls-key", p.key);
        SSL_CTX* ctx = SSL_CTX_new(TLS_method());
        if (!ctx) edge::failure("cannot create a TLS context: {}", ssl_error());
        c->certs_.push_back({ctx, {}});
        ERR_clear_error();
        if (SSL_CTX_use_certificate_chain_file(ctx, p.cert.c_str()) != 1)
            edge::usage_error("--tls-cert {}: not a PEM certificate chain ({})", p.cert, ssl_error());
        if (SSL_CTX_use_PrivateKey_file(ctx, p.key.c_str(), SSL_FILETYPE_PEM) != 1) {
            std::string why = ssl_error();
            if (why == "KEY_VALUES_MISMATCH")
                edge::usage_error("--tls-key {} does not match the certificate in --tls-cert {}", p.key, p.cert);
            edge::usage_error("--tls-key {}: not a PEM private key ({})", p.key, why);
        }
        if (SSL_CTX_check_private_key(ctx) != 1)
            edge::usage_error("--tls-key {} does not match the certificate in --tls-cert {}", p.key, p.cert);
        c->certs_.back().names = cert_names(SSL_CTX_get0_certificate(ctx));
        SSL_CTX_set_min_proto_version(ctx, min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
        SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        SSL_CTX_set_early_data_enabled(ctx, 0);  // 0-RTT off: early data is replayable
        // Stateless resumption only (tickets); no server-side session cache to share or grow.
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        std::string sid = "cache-proxy/" + std::to_string(idx++);
        SSL_CTX_set_session_id_context(ctx, reinterpret_cast<const uint8_t*>(sid.data()), sid.size());
        if (ticket_lifetime_s == 0) {
            SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        } else {
            SSL_CTX_set_tlsext_ticket_key_cb(ctx, ticket_cb);
            SSL_CTX_set_timeout(ctx, ticket_lifetime_s);
            SSL_CTX_set_session_psk_dhe_timeout(ctx, ticket_lifetime_s);
        }
        SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, nullptr);
        SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb);
        SSL_CTX_set_tlsext_servername_arg(ctx, c.get());
    }
    return c;
}

Context::~Context() {
    for (auto& e : certs_) SSL_CTX_free(e.ctx);
}

const Context::Entry* Context::select(const char* server_name) const {
    if (certs_.empty()) return nullptr;
    if (server_name && *server_name) {
        std::string host = lower(server_name);
        for (auto& e : certs_)
            for (auto& n : e.names)
                if (name_matches(n, host)) return &e;
    }
    return &certs_.front();
}

SSL* Context::accept(int fd) const {
    SSL* s = SSL_new(certs_.front().ctx);
    if (!s) return nullptr;
    if (SSL_set_fd(s, fd) != 1) {
        SSL_free(s);
        return nullptr;
    }
    SSL_set_accept_state(s);
    return s;
}

std::vector<std::vector<std::string>> Context::names() const {
    std::vector<std::vector<std::string>> out;
    for (auto& e : certs_) out.push_back(e.names);
    return out;
}

}  // namespace cache_proxy::tls
