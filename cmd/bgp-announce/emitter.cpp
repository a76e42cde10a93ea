#include "emitter.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

namespace bgp_announce {

Emitter::Emitter(bool json, std::FILE* f, size_t max_bytes) : json_(json), f_(f), max_(max_bytes) {
    t_ = std::thread([this] { run(); });
}

Emitter::~Emitter() {
    {
        std::unique_lock lk(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    t_.join();
}

void Emitter::emit(const edge::out::Record& r) {
    std::string line = json_ ? r.json() : r.text_line();
    line += '\n';
    {
        std::lock_guard lk(mu_);
        if (bytes_ + line.size() > max_) {
            ++dropped_;
            return;
        }
        bytes_ += line.size();
        q_.push_back(std::move(line));
        ++emitted_;
    }
    cv_.notify_one();
}

// Writes without ever blocking for long: poll for room, then at most PIPE_BUF bytes (a
// pipe write that small never blocks once poll says writable). Gives up at `deadline`
// (set when stopping) or when the reader is gone.
void Emitter::write_out(const std::string& s, std::chrono::steady_clock::time_point& deadline) {
    int fd = fileno(f_);
    size_t off = 0;
    while (off < s.size() && !broken_) {
        pollfd p{fd, POLLOUT, 0};
        int r = poll(&p, 1, 200);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) {
            std::lock_guard lk(mu_);
            if (stop_) {
                auto now = std::chrono::steady_clock::now();
                if (deadline == std::chrono::steady_clock::time_point::max()) deadline = now + std::chrono::seconds(2);
                if (now > deadline) return;
            }
            continue;
        }
        if (p.revents & (POLLERR | POLLNVAL)) {
            broken_ = true;
            return;
        }
        ssize_t n = ::write(fd, s.data() + off, std::min<size_t>(4096, s.size() - off));
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) {
            broken_ = true;  // EPIPE: nobody will ever read; keep dropping quietly
            return;
        }
        off += static_cast<size_t>(n);
    }
}

void Emitter::run() {
    std::unique_lock lk(mu_);
    auto deadline = std::chrono::steady_clock::time_point::max();
    for (;;) {
        cv_.wait(lk, [&] { return stop_ || !q_.empty(); });
        if (stop_ && deadline == std::chrono::steady_clock::time_point::max())
            deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        if (q_.empty() || std::chrono::steady_clock::now() > deadline) return;
        std::string s;
        while (!q_.empty() && s.size() < 65536) {
            s += q_.front();
            bytes_ -= q_.front().size();
            q_.pop_front();
        }
        lk.unlock();
        write_out(s, deadline);
        lk.lock();
    }
}

}  // namespace bgp_announce
