#include "out/progress.hpp"

#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

#include "out/output.hpp"

namespace edge::out {

Progress::Progress(std::string what, uint64_t total)
    : what_(std::move(what)), total_(total), enabled_(isatty(STDERR_FILENO) && verbosity() >= 0) {}

Progress::~Progress() { finish(); }

void Progress::draw(uint64_t done) {
    auto now = std::chrono::steady_clock::now();
    if (drawn_ && now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    drawn_ = true;
    if (total_ > 0)
        fmt::print(stderr, "\r{}: {}: {:.1f}%\x1b[K", program_name(), what_,
                   100.0 * static_cast<double>(done) / static_cast<double>(total_));
    else
        fmt::print(stderr, "\r{}: {}: {}\x1b[K", program_name(), what_, done);
    std::fflush(stderr);
}

void Progress::finish() {
    if (drawn_) {
        fmt::print(stderr, "\r\x1b[K");
        std::fflush(stderr);
        drawn_ = false;
    }
}

}  // namespace edge::out
