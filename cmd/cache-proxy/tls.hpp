// TLS termination with BoringSSL: certificates chosen by SNI, ALPN http/1.1, TLS 1.2 and
// 1.3, stateless session tickets encrypted with a process-wide key ring that rotates on a
// timer (and on SIGHUP); the previous key still decrypts (and renews) tickets for one
// period, older ones are gone. 0-RTT (early data) is never enabled: replayable requests
// are not worth a round trip.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace cache_proxy::tls {

struct CertKey {
    std::string cert, key;  // PEM files: the chain (leaf first) and its private key
};

// Immutable once loaded; shared by every worker (SSL_CTX is thread-safe).
class Context {
public:
    // Throws edge::UsageError naming the file and what is wrong with it.
    // min_version: "1.2" or "1.3"; ticket_lifetime_s: 0 turns session tickets off.
    static std::shared_ptr<Context> load(const std::vector<CertKey>& pairs, const std::string& min_version,
                                         unsigned ticket_lifetime_s);
    ~Context();
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    // A server-side SSL for an accepted socket (nullptr when out of memory).
    SSL* accept(int fd) const;
    // The DNS names of each certificate, in order (the first is the default).
    std::vector<std::vector<std::string>> names() const;

    struct Entry {
        SSL_CTX* ctx = nullptr;
        std::vector<std::string> names;  // subjectAltName DNS names (or the CN), lower case
    };
    const Entry* select(const char* server_name) const;

private:
    Context() = default;
    std::vector<Entry> certs_;
};

// Process-wide ticket keys: rotate() makes a new current key and keeps the previous one for
// decryption only; anything older is dropped. The first call happens at startup.
void rotate_ticket_keys();
uint64_t ticket_key_rotations();

}  // namespace cache_proxy::tls
