#include "bpf/prog.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "cli/error.hpp"

namespace edge::bpf {

TestRun test_run(int prog_fd, std::span<const uint8_t> packet, uint32_t repeat) {
    TestRun r;
    // XDP may grow the packet (encapsulation): leave headroom for the output.
    r.data.resize(packet.size() + 256);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = packet.data(), .data_out = r.data.data(),
                .data_size_in = static_cast<uint32_t>(packet.size()),
                .data_size_out = static_cast<uint32_t>(r.data.size()), .repeat = static_cast<int>(repeat));
    int err = bpf_prog_test_run_opts(prog_fd, &opts);
    if (err) failure("BPF_PROG_TEST_RUN failed: {}", error_text(err));
    r.retval = opts.retval;
    r.data.resize(opts.data_size_out);
    r.duration_ns = opts.duration;
    return r;
}

std::string unavailable_reason() {
    if (geteuid() != 0) return "needs root (or CAP_BPF + CAP_NET_ADMIN) to load BPF programs";
    if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) return "the kernel has no BTF (/sys/kernel/btf/vmlinux)";
    return {};
}

std::string error_text(int err) {
    int e = err < 0 ? -err : err;
    if (e == 0) e = errno;
    return std::strerror(e);
}

}  // namespace edge::bpf
