// Error codes and a tiny result type shared by the QUIC parsers.
// std::expected is C++23, so a minimal value+error pair keeps us on C++20.
#pragma once

#include <string_view>
#include <utility>

namespace edge::quic {

enum class Error {
    ok,
    truncated,            // input ended before the structure did
    invalid,              // structurally impossible value (bad length, bad bit)
    unsupported_version,  // version we cannot derive keys for
    unknown_frame,        // frame type we cannot skip safely
    crypto,               // AEAD open / tag check failed or library error
    too_large,            // exceeds a memory cap
    not_found,            // expected message/extension not present
};

std::string_view error_name(Error e) noexcept;

template <class T>
struct Result {
    T value{};
    Error error = Error::ok;

    Result() = default;
    Result(T v) : value(std::move(v)) {}  // NOLINT: implicit success
    Result(Error e) : error(e) {}         // NOLINT: implicit failure

    bool ok() const noexcept { return error == Error::ok; }
    explicit operator bool() const noexcept { return ok(); }
    T& operator*() noexcept { return value; }
    const T& operator*() const noexcept { return value; }
    T* operator->() noexcept { return &value; }
    const T* operator->() const noexcept { return &value; }
};

}  // namespace edge::quic
