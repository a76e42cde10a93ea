// Small RAII and helpers over libbpf skeletons: load with the verifier log on failure,
// run a program on a packet with BPF_PROG_TEST_RUN.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace edge::bpf {

struct TestRun {
    uint32_t retval = 0;          // the XDP verdict (XDP_PASS, XDP_TX, ...)
    std::vector<uint8_t> data;    // the packet after the program (rewrites, encapsulation)
    uint32_t duration_ns = 0;     // kernel-measured average per run
};

// Runs `prog_fd` on `packet` `repeat` times. Throws edge::Failure with errno text.
TestRun test_run(int prog_fd, std::span<const uint8_t> packet, uint32_t repeat = 1);

// Why BPF cannot be used here, or empty when it can (root / CAP_BPF and a kernel with BTF).
std::string unavailable_reason();

// Turns libbpf's negative error into text, naming what failed.
std::string error_text(int err);

}  // namespace edge::bpf
