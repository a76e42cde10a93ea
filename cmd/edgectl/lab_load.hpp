// edgectl lab: legitimate load for the demo's flood step. A few clients, each on its own
// thread, open a new connection per request for a window of time; every request's outcome
// and latency is kept. Several clients, not one: a client whose requests each wait out a
// retransmission (1 s) would measure too few of them in the window to test a success rate.
#pragma once
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace edgectl::lab {

struct LoadTarget {
    std::string ns, addr, path;
    uint16_t port = 0;
    double gap_s = 0.1;      // a client starts at most one request per gap
    double timeout_s = 3;    // each request's bound (connect + answer)
};

struct LoadResult {
    uint64_t tries = 0, ok = 0;
    std::vector<double> latency_s;   // of the answered requests
    std::vector<std::string> errors; // the first few failures, for the report
    double quantile(double q) const; // of latency_s (0 when empty)
};

class Load {
public:
    Load(LoadTarget t, int clients);  // starts the clients
    ~Load();                          // stops and joins them (also when unwinding)
    Load(const Load&) = delete;
    Load& operator=(const Load&) = delete;
    // No new request starts after this; the ones in flight finish (each within its
    // timeout). Rethrows a client's Interrupted (Ctrl-C).
    LoadResult finish();

private:
    void client();
    LoadTarget t_;
    std::atomic<bool> stop_{false};
    std::mutex mu_;
    LoadResult r_;
    std::exception_ptr err_;
    std::vector<std::thread> threads_;
};

}  // namespace edgectl::lab
