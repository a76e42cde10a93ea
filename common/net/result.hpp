// A value or an error message. Parsers in this module return it so callers can
// show the user *why* an input was rejected, not just that it was.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

namespace edge::net {

template <class T>
class Result {
public:
    Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit on purpose (return v;)

    static Result fail(std::string message) {
        Result r;
        r.error_ = std::move(message);
        return r;
    }

    bool ok() const noexcept { return value_.has_value(); }
    explicit operator bool() const noexcept { return ok(); }

    // Throws std::logic_error when called on a failure: that is a caller bug.
    const T& value() const {
        if (!value_) throw std::logic_error("Result::value() on error: " + error_);
        return *value_;
    }
    const T& operator*() const { return value(); }
    const T* operator->() const { return &value(); }

    // Empty when ok().
    const std::string& error() const noexcept { return error_; }

private:
    Result() = default;
    std::optional<T> value_;
    std::string error_;
};

}  // namespace edge::net
