// Map helpers shared by the tools that read BPF counters.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace edge::bpf {

// Throws edge::Failure "what: errno text" when a libbpf call returned an error.
void check(int err, const char* what);
// Possible CPUs: the number of slots in a per-CPU map value.
int ncpus();
// Sums a per-CPU value of `words` u64 across CPUs (zeros when the key is absent).
std::vector<uint64_t> percpu_sum(int fd, uint32_t key, size_t words);
// Resets a per-CPU value of `words` u64 on every CPU.
void percpu_zero(int fd, uint32_t key, size_t words);

}  // namespace edge::bpf
