#include "quic/error.hpp"

namespace edge::quic {

std::string_view error_name(Error e) noexcept {
    switch (e) {
        case Error::ok: return "ok";
        case Error::truncated: return "truncated";
        case Error::invalid: return "invalid";
        case Error::unsupported_version: return "unsupported version";
        case Error::unknown_frame: return "unknown frame";
        case Error::crypto: return "crypto failure";
        case Error::too_large: return "too large";
        case Error::not_found: return "not found";
    }
    return "?";
}

}  // namespace edge::quic
