#include "bpf/xdp.hpp"

#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sys/mount.h>
#include <sys/vfs.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "bpf/prog.hpp"
#include "cli/error.hpp"
#include "out/output.hpp"

namespace edge::bpf {

namespace {
constexpr long kBpfFsMagic = 0xcafe4a11;
}

int ifindex_of(const std::string& ifname) {
    unsigned idx = if_nametoindex(ifname.c_str());
    if (!idx) usage_error("cannot use interface {}: no such interface (see ip link)", ifname);
    return static_cast<int>(idx);
}

void require_bpf() {
    auto why = unavailable_reason();
    if (!why.empty()) usage_error("cannot load BPF programs: {}", why);
}

void ensure_bpffs() {
    struct statfs st{};
    if (statfs("/sys/fs/bpf", &st) == 0 && st.f_type == kBpfFsMagic) return;
    if (mount("bpf", "/sys/fs/bpf", "bpf", 0, nullptr) != 0)
        failure("/sys/fs/bpf is not a BPF file system and mounting one failed ({}): mount -t bpf bpf /sys/fs/bpf",
                std::strerror(errno));
}

uint32_t attached_prog(int ifindex, uint8_t* mode) {
    LIBBPF_OPTS(bpf_xdp_query_opts, q);
    if (bpf_xdp_query(ifindex, 0, &q) != 0) return 0;
    if (mode) *mode = q.attach_mode;
    return q.prog_id;
}

const char* xdp_mode_name(uint8_t m) {
    switch (m) {
    case XDP_ATTACHED_DRV: return "native";
    case XDP_ATTACHED_SKB: return "generic";
    case XDP_ATTACHED_HW: return "offload";
    case XDP_ATTACHED_MULTI: return "multi";
    default: return "none";
    }
}

uint32_t attach_xdp(int ifindex, int prog_fd, const std::string& ifname, const std::string& mode) {
    uint32_t flags = XDP_FLAGS_UPDATE_IF_NOEXIST;
    if (attached_prog(ifindex))
        usage_error("{} already has an XDP program (ip link show dev {}); detach it first", ifname, ifname);
    if (mode != "generic") {
        int err = bpf_xdp_attach(ifindex, prog_fd, flags | XDP_FLAGS_DRV_MODE, nullptr);
        if (!err) return flags | XDP_FLAGS_DRV_MODE;
        if (mode == "native") failure("cannot attach native XDP to {}: {} (try --mode generic)", ifname, error_text(err));
        out::warn(fmt::format("native XDP on {} failed ({}): using generic XDP, which is slower", ifname,
                              error_text(err)));
    }
    int err = bpf_xdp_attach(ifindex, prog_fd, flags | XDP_FLAGS_SKB_MODE, nullptr);
    if (err) failure("cannot attach XDP to {}: {}", ifname, error_text(err));
    return flags | XDP_FLAGS_SKB_MODE;
}

void detach_xdp(int ifindex, uint32_t flags, int prog_fd) {
    LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = prog_fd);
    bpf_xdp_detach(ifindex, (flags & ~XDP_FLAGS_UPDATE_IF_NOEXIST) | XDP_FLAGS_REPLACE, &opts);
}

void remove_pins(const std::string& dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::remove_all(dir, ec);
    const fs::path top = "/sys/fs/bpf/edge";
    // fs::remove deletes only an empty directory: another tool's or interface's pins stay.
    for (fs::path p = fs::path(dir).parent_path(); !p.empty() && p.string().starts_with(top.string());
         p = p.parent_path()) {
        if (!fs::remove(p, ec)) break;
        if (p == top) break;
    }
}

}  // namespace edge::bpf
