#include "bpf/maps.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/prog.hpp"
#include "cli/error.hpp"

namespace edge::bpf {

void check(int err, const char* what) {
    if (err) failure("{}: {}", what, error_text(err));
}

int ncpus() {
    static int n = libbpf_num_possible_cpus();
    return n > 0 ? n : 1;
}

std::vector<uint64_t> percpu_sum(int fd, uint32_t key, size_t words) {
    std::vector<uint64_t> buf(words * static_cast<size_t>(ncpus()), 0), sum(words, 0);
    if (bpf_map_lookup_elem(fd, &key, buf.data()) != 0) return sum;
    for (int c = 0; c < ncpus(); c++)
        for (size_t w = 0; w < words; w++) sum[w] += buf[static_cast<size_t>(c) * words + w];
    return sum;
}

void percpu_zero(int fd, uint32_t key, size_t words) {
    std::vector<uint64_t> buf(words * static_cast<size_t>(ncpus()), 0);
    bpf_map_update_elem(fd, &key, buf.data(), BPF_ANY);
}

}  // namespace edge::bpf
