// Map helpers shared by the tools that read BPF counters.
#pragma once
#include <cstddef>
#include <cstdint>
#include <unistd.h>
#include <vector>

namespace edge::bpf {

// A map or program file descriptor closed when it goes out of scope; movable, not copyable.
struct OwnedFd {
    int fd = -1;
    explicit OwnedFd(int f) : fd(f) {}
    ~OwnedFd() {
        if (fd >= 0) close(fd);
    }
    OwnedFd(const OwnedFd&) = delete;
    OwnedFd& operator=(const OwnedFd&) = delete;
    OwnedFd(OwnedFd&& o) noexcept : fd(o.fd) { o.fd = -1; }
};

// Throws edge::Failure "what: errno text" when a libbpf call returned an error.
void check(int err, const char* what);
// Possible CPUs: the number of slots in a per-CPU map value.
int ncpus();
// Sums a per-CPU value of `words` u64 across CPUs (zeros when the key is absent).
std::vector<uint64_t> percpu_sum(int fd, uint32_t key, size_t words);
// Resets a per-CPU value of `words` u64 on every CPU.
void percpu_zero(int fd, uint32_t key, size_t words);

}  // namespace edge::bpf
