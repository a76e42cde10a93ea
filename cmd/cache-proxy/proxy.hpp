// The proxy engine: worker threads (one edge-triggered epoll + SO_REUSEPORT listener
// each), one upstream keep-alive pool shared by all of them, the memory tier, signals.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "settings.hpp"

namespace cache_proxy {

// Counters summed over workers (relaxed atomics, one block per worker: no sharing).
struct alignas(64) Counters {
    std::atomic<uint64_t> requests{0}, hit{0}, miss{0}, stale{0}, revalidated{0}, bypass{0};
    std::atomic<uint64_t> s2xx{0}, s3xx{0}, s4xx{0}, s5xx{0}, bytes_out{0};
    std::atomic<uint64_t> upstream_requests{0}, upstream_new{0}, upstream_reused{0}, upstream_errors{0}, upstream_retries{0};
    std::atomic<uint64_t> rate_limited{0}, bad_requests{0}, coalesced{0}, accepted{0}, active{0}, purged{0}, handed_off{0};
    std::atomic<uint64_t> background_revalidations{0}, invalidations{0};
    std::atomic<uint64_t> tls_handshakes{0}, tls_resumed{0}, tls_failed{0};
    std::atomic<uint64_t> spliced_responses{0}, spliced_bytes{0};
};

// Runs the proxy until SIGTERM/SIGINT (drain) — SIGHUP calls `reload` for new settings.
// Returns the exit code.
int serve(Settings settings, std::function<Settings()> reload, bool json_log);

}  // namespace cache_proxy
