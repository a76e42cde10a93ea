// edgectl lab: concurrent legitimate clients with per-request latency.
#include "lab_load.hpp"

#include <signal.h>

#include <algorithm>
#include <cmath>

#include "lab_http.hpp"
#include "lab_sys.hpp"

namespace edgectl::lab {

double LoadResult::quantile(double q) const {
    if (latency_s.empty()) return 0;
    auto v = latency_s;
    std::sort(v.begin(), v.end());
    // nearest rank: the smallest value with at least q of the sample at or below it
    auto rank = static_cast<size_t>(std::ceil(q * double(v.size())));
    return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

Load::Load(LoadTarget t, int clients) : t_(std::move(t)) {
    // The clients block the signals, so Ctrl-C reaches the main thread's waits; they
    // see it through interrupted() (their socket waits check it several times a second).
    sigset_t block, old;
    sigemptyset(&block);
    for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&block, s);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    try {
        for (int i = 0; i < clients; i++) threads_.emplace_back([this] { client(); });
    } catch (...) {
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
        stop_ = true;
        for (auto& th : threads_) th.join();
        throw;
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

Load::~Load() {
    stop_ = true;
    for (auto& th : threads_)
        if (th.joinable()) th.join();
}

void Load::client() {
    try {
        while (!stop_ && !interrupted()) {
            double t = now_s();
            std::string why;
            auto r = http_get(t_.ns, t_.addr, t_.port, t_.path, t_.timeout_s, &why);
            double took = now_s() - t;
            {
                std::lock_guard<std::mutex> g(mu_);
                r_.tries++;
                if (r && r->status == 200) {
                    r_.ok++;
                    r_.latency_s.push_back(took);
                } else if (r_.errors.size() < 3) {
                    r_.errors.push_back(r ? "HTTP " + std::to_string(r->status) : why);
                }
            }
            double left = t_.gap_s - (now_s() - t);
            if (left > 0 && !stop_) sleep_ms(static_cast<int>(left * 1000));
        }
    } catch (...) {
        std::lock_guard<std::mutex> g(mu_);
        if (!err_) err_ = std::current_exception();
    }
}

LoadResult Load::finish() {
    stop_ = true;
    for (auto& th : threads_)
        if (th.joinable()) th.join();
    if (err_) std::rethrow_exception(err_);
    return r_;
}

}  // namespace edgectl::lab
