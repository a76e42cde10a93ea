// Tests that need root, BPF or namespaces: skip with a message elsewhere, but fail
// under CI=true, where a skip would hide a broken test (CI runs as root).
#pragma once
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace edge::test {

inline constexpr int skip_code = 77;  // ctest SKIP_RETURN_CODE

inline bool in_ci() {
    const char* ci = std::getenv("CI");
    return ci && std::strcmp(ci, "true") == 0;
}

// Returns 0 to go on, or the exit code the test should return now.
inline int require(const std::string& why_not, const char* test) {
    if (why_not.empty()) return 0;
    if (in_ci()) {
        std::fprintf(stderr, "%s: FAIL: cannot run under CI=true: %s\n", test, why_not.c_str());
        return 1;
    }
    std::fprintf(stderr, "%s: SKIP: %s\n", test, why_not.c_str());
    return skip_code;
}

}  // namespace edge::test
