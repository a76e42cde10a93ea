// synflood-guard bench: ns/packet of the XDP guard with BPF_PROG_TEST_RUN, beside a
// null XDP program (the per-packet floor of this machine), in alternating rounds.
//
// Hot cases run one packet --repeat times inside the kernel (the packet is not
// rewritten by those paths). The cookie path rewrites the SYN into a SYN-ACK in place,
// so a repeated run would measure the SYN-ACK after the first iteration: it is
// measured as --singles kernel-timed single runs per round, against single runs of the
// null program (both include the same per-run timer cost).
//
// The bench runs in a private network namespace (unshare) with a listener on the
// cookie port and net.ipv4.tcp_syncookies=2 there, so the host is not touched.
#include <linux/bpf.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>

#include "guard.hpp"
#include "net/build.hpp"
#include "options.hpp"
#include "out/record.hpp"
#include "synflood.skel.h"

namespace sfg {

namespace {
const char* kBenchConfig = R"(
[guard]
src_pps = 1000000000
deny = ["198.51.100.0/24"]
allow = ["192.0.2.0/24"]
[[protect]]
prefix = "10.1.0.0/24"
port = 8080
cookie = "always"
[[protect]]
prefix = "10.1.0.0/24"
port = 9090
syn_pps = 1000000000
[[protect]]
prefix = "10.1.0.0/24"
port = 7070
syn_pps = 1
)";

int null_prog() {
    struct bpf_insn insns[2] = {};
    insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;  // r0 = XDP_PASS
    insns[0].dst_reg = BPF_REG_0;
    insns[0].imm = XDP_PASS;
    insns[1].code = BPF_JMP | BPF_EXIT;
    int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "sfg_null", "GPL", insns, 2, nullptr);
    if (fd < 0) edge::failure("cannot load the null XDP program: {}", std::strerror(errno));
    return fd;
}

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// A private network namespace: lo up, SYN cookies on demand, a listener for the
// cookie cases. The bench process stays in it until it exits.
int private_netns(uint16_t port) {
    if (unshare(CLONE_NEWNET) != 0) edge::failure("cannot create a network namespace for the bench: {}", std::strerror(errno));
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    ifreq ifr{};
    std::strcpy(ifr.ifr_name, "lo");
    if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP;
        ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    close(s);
    std::ofstream("/proc/sys/net/ipv4/tcp_syncookies") << "2";
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 16) != 0)
        edge::failure("cannot listen on port {} in the bench namespace: {}", port, std::strerror(errno));
    return fd;
}
}  // namespace

int run_bench(const Options& o, const edge::cli::Globals& g, edge::out::Output& out) {
    (void)g;
    using namespace edge::net;
    auto why = edge::bpf::unavailable_reason();
    if (!why.empty()) edge::usage_error("cannot load BPF programs: {}", why);
    int lfd = private_netns(8080);
    GuardConfig c = parse_config(edge::config::parse(kBenchConfig, "<built-in bench config>"));
    synflood* s = synflood__open_and_load();
    if (!s) edge::failure("cannot load the BPF program: {}", std::strerror(errno));
    std::unique_ptr<synflood, void (*)(synflood*)> guard(s, synflood__destroy);
    apply(skel_maps(s), c);
    int prog = bpf_program__fd(s->progs.synflood);
    int nul = null_prog();

    const Mac cm{2, 0, 0, 0, 0, 1}, sm{2, 0, 0, 0, 0, 2};
    auto ip = [](const char* a) { return IpAddr::parse(a).value(); };
    const std::vector<uint8_t> opts = {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7};
    auto syn = [&](const char* src, uint16_t dport) {
        return PacketBuilder().eth(cm, sm).ipv4(ip(src), ip("10.1.0.1")).tcp(40000, dport).flags(TcpFlags::syn)
            .seq(1000).tcp_options(opts).build();
    };
    auto ack = [&](const char* src, uint16_t dport, uint32_t ackno) {
        return PacketBuilder().eth(cm, sm).ipv4(ip(src), ip("10.1.0.1")).tcp(40000, dport).flags(TcpFlags::ack)
            .seq(1001).ack(ackno).payload(std::string(20, 'x')).build();
    };
    // The cookie for the ACK cases: one real SYN-ACK from the program.
    auto first = edge::bpf::test_run(prog, syn("10.1.0.5", 8080));
    if (first.retval != XDP_TX || first.data.size() < 14 + 20 + 20)
        edge::failure("the guard did not answer the bench SYN with a cookie (verdict {}): is tcp_syncookies supported here?",
                      first.retval);
    uint32_t cookie = uint32_t(first.data[38]) << 24 | uint32_t(first.data[39]) << 16 | uint32_t(first.data[40]) << 8 |
                      first.data[41];

    struct Case {
        std::string name, what;
        std::vector<uint8_t> pkt;
        int fd;
        uint32_t verdict;
        bool single;  // measured by single runs (the program rewrites the packet)
    };
    std::vector<Case> cases = {
        {"null", "null XDP program (floor)", ack("10.1.0.5", 9090, 1), nul, XDP_PASS, false},
        {"non_syn_pass", "ACK with data to a protected destination, passed", ack("10.1.0.5", 9090, 1), prog, XDP_PASS, false},
        {"syn_pass", "SYN under the threshold, passed", syn("10.1.0.5", 9090), prog, XDP_PASS, false},
        {"cookie_ack", "ACK with a valid cookie, validated and passed", ack("10.1.0.5", 8080, cookie + 1), prog, XDP_PASS, false},
        {"forged_ack_drop", "ACK with a forged cookie, dropped", ack("10.1.0.5", 8080, cookie + 7), prog, XDP_DROP, false},
        {"deny_drop", "source on the deny list, dropped", syn("198.51.100.7", 8080), prog, XDP_DROP, false},
        {"rate_drop", "SYN over the destination budget, dropped", syn("10.1.0.5", 7070), prog, XDP_DROP, false},
        {"null_single", "null XDP program, single runs", syn("10.1.0.5", 8080), nul, XDP_PASS, true},
        {"syn_cookie", "SYN answered with a cookie SYN-ACK (XDP_TX), single runs", syn("10.1.0.5", 8080), prog, XDP_TX, true},
    };
    for (auto& cs : cases) {  // each case takes the path it is named after (the 2nd run: buckets drained)
        edge::bpf::test_run(cs.fd, cs.pkt);
        auto r = edge::bpf::test_run(cs.fd, cs.pkt);
        if (r.retval != cs.verdict)
            edge::failure("bench case {} returned verdict {}, expected {}", cs.name, r.retval, cs.verdict);
    }
    std::map<std::string, std::vector<double>> ns;
    for (int round = 0; round < o.rounds; round++)
        for (auto& cs : cases) {
            if (!cs.single) {
                ns[cs.name].push_back(edge::bpf::test_run(cs.fd, cs.pkt, static_cast<uint32_t>(o.repeat)).duration_ns);
                continue;
            }
            std::vector<double> one;
            one.reserve(static_cast<size_t>(o.singles));
            for (int i = 0; i < o.singles; i++) one.push_back(edge::bpf::test_run(cs.fd, cs.pkt).duration_ns);
            ns[cs.name].push_back(median(one));
        }
    close(nul);
    close(lfd);
    double hot_floor = median(ns["null"]), single_floor = median(ns["null_single"]);
    static const std::map<std::string, double> targets = {{"syn_cookie", 10}, {"deny_drop", 2}, {"rate_drop", 2}};
    for (auto& cs : cases) {
        double m = median(ns[cs.name]);
        double floor = cs.single ? single_floor : hot_floor;
        double ratio = floor > 0 ? m / floor : 0;
        edge::out::Record rec("guard_bench");
        rec.str("case", cs.name).str("what", cs.what).real("ns_per_packet", m, 1).real("ratio_to_null", ratio, 2);
        rec.str("timing", cs.single ? "single" : "repeat");
        rec.num("repeat", uint64_t(cs.single ? 1 : o.repeat)).num("rounds", o.rounds).num("bytes", uint64_t(cs.pkt.size()));
        std::string text = fmt::format("{:16} {:8.1f} ns/packet  {:5.2f}x null{}  {}", cs.name, m, ratio,
                                       cs.single ? " (single runs)" : "              ", cs.what);
        if (auto t = targets.find(cs.name); t != targets.end()) {
            rec.real("target_ratio", t->second).boolean("target_met", ratio <= t->second);
            text += fmt::format(" [target <= {:.0f}x: {}]", t->second, ratio <= t->second ? "met" : "MISSED");
        }
        out.emit(rec.text(text));
    }
    return edge::exit_ok;
}

}  // namespace sfg
