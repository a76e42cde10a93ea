// Attaching XDP programs and the bpffs they pin to: what every XDP tool (xdp-lb,
// synflood-guard) needs around its skeleton. No libbpf headers here, so this can be
// included next to <pcap/bpf.h>.
#pragma once
#include <cstdint>
#include <string>

namespace edge::bpf {

// The interface's index; an unknown name is a usage error naming `ip link`.
int ifindex_of(const std::string& ifname);
// Usage error when BPF cannot be loaded here (see unavailable_reason()).
void require_bpf();
// Mounts /sys/fs/bpf when it is not a BPF file system (fresh machines have none).
void ensure_bpffs();
// Removes a tool's pin directory (/sys/fs/bpf/edge/TOOL/IF) and then those of its
// parents, up to /sys/fs/bpf/edge, that it left empty. Never fails: teardown.
void remove_pins(const std::string& dir);

// The id of the XDP program attached to the interface (0: none) and its attach mode.
uint32_t attached_prog(int ifindex, uint8_t* mode = nullptr);
// "native", "generic", "offload", "multi" or "none" for an XDP_ATTACHED_* mode.
const char* xdp_mode_name(uint8_t mode);
// Attaches prog_fd: mode "native", "generic", or "auto" (native, else generic with a
// warning). Refuses an interface that already has a program. Returns the flags used,
// for detach_xdp().
uint32_t attach_xdp(int ifindex, int prog_fd, const std::string& ifname, const std::string& mode);
// Detaches prog_fd if it is still the attached program.
void detach_xdp(int ifindex, uint32_t flags, int prog_fd);

}  // namespace edge::bpf
