// Errors that carry the process exit code, so every tool maps failures the same way:
// 0 success, 1 failure ("unhealthy / found something" for probes), 2 usage or bad input.
#pragma once
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace edge {

enum Exit : int { exit_ok = 0, exit_failure = 1, exit_usage = 2 };

class Error : public std::runtime_error {
public:
    Error(int code, const std::string& msg) : std::runtime_error(msg), code_(code) {}
    int code() const { return code_; }

private:
    int code_;
};

// Bad command line, bad config, bad input data: exit 2.
struct UsageError : Error {
    explicit UsageError(const std::string& msg) : Error(exit_usage, msg) {}
};
// The operation failed (a peer, the system, a resource): exit 1.
struct Failure : Error {
    explicit Failure(const std::string& msg) : Error(exit_failure, msg) {}
};

template <typename... A>
[[noreturn]] void usage_error(fmt::format_string<A...> f, A&&... a) {
    throw UsageError(fmt::format(f, std::forward<A>(a)...));
}
template <typename... A>
[[noreturn]] void failure(fmt::format_string<A...> f, A&&... a) {
    throw Failure(fmt::format(f, std::forward<A>(a)...));
}

}  // namespace edge
