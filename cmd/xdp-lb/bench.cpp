// xdp-lb bench: ns/packet of the data plane with BPF_PROG_TEST_RUN, beside a null
// XDP_TX program (the per-packet floor of this machine), in alternating rounds.
// Hot: one packet repeated --repeat times in the kernel. Cold: --cold-flows distinct
// flows, each run once (kernel-timed), so the connection table and Maglev ring are
// walked like a cache-unfriendly real load.
#include <linux/bpf.h>

#include <algorithm>

#include "net/build.hpp"
#include "lb.hpp"
#include "options.hpp"
#include "xdp_lb.skel.h"

namespace xlb {

namespace {
const char* kBenchConfig = R"(
[lb]
table_size = 65537
conntrack_size = 262144
[[service]]
vip = "203.0.113.10"
port = 80
proto = "tcp"
backends = ["10.0.1.11", "10.0.1.12", "10.0.1.13"]
[[service]]
vip = "203.0.113.10"
port = 443
proto = "udp"
quic = true
[[service.backend]]
address = "10.0.1.11"
server_id = 0x0a01
[[service.backend]]
address = "10.0.1.12"
server_id = 0x0a02
[[service]]
vip = "203.0.113.10"
port = 8080
proto = "tcp"
daisy_chain = true
backends = ["10.0.1.11", "10.0.1.12"]
)";

int null_prog() {
    struct bpf_insn insns[2] = {};
    insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;  // r0 = XDP_TX
    insns[0].dst_reg = BPF_REG_0;
    insns[0].imm = XDP_TX;
    insns[1].code = BPF_JMP | BPF_EXIT;
    int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "xlb_null", "GPL", insns, 2, nullptr);
    if (fd < 0) edge::failure("cannot load the null XDP program: {}", std::strerror(errno));
    return fd;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}
}  // namespace

int run_bench(const Options& o, const edge::cli::Globals& g, edge::out::Output& out) {
    using namespace edge::net;
    auto why = edge::bpf::unavailable_reason();
    if (!why.empty()) edge::usage_error("cannot load BPF programs: {}", why);
    LbConfig c = g.config.empty() ? parse_config(edge::config::parse(kBenchConfig, "<built-in bench config>")) : load_config(g);
    if (c.conntrack_size < static_cast<uint32_t>(o.cold_flows) * 2) c.conntrack_size = static_cast<uint32_t>(o.cold_flows) * 2;
    xdp_lb* s = xdp_lb__open();
    if (!s) edge::failure("cannot open the BPF object: {}", std::strerror(errno));
    std::unique_ptr<xdp_lb, void (*)(xdp_lb*)> guard(s, xdp_lb__destroy);
    size_maps(s, c);
    if (int err = xdp_lb__load(s)) edge::failure("cannot load the BPF program: {}", edge::bpf::error_text(err));
    Controller ctl(skel_maps(s), c.table_size, c.max_services);
    ctl.apply(c);
    int lb = bpf_program__fd(s->progs.xdp_lb_bench);
    int nul = null_prog();

    const Mac a{2, 0, 0, 0, 0, 1}, b{2, 0, 0, 0, 0, 2};
    auto vip = c.services[0].vip;
    uint16_t port = c.services[0].port;
    auto client = IpAddr::parse(vip.is_v4() ? "198.51.100.7" : "2001:db8:ff::7").value();
    auto base = [&](const IpAddr& src, const IpAddr& dst) {
        PacketBuilder p;
        p.eth(a, b);
        if (dst.is_v4()) p.ipv4(src, dst);
        else p.ipv6(src, dst);
        return p;
    };
    auto other = IpAddr::parse(vip.is_v4() ? "192.0.2.1" : "2001:db8:dead::1").value();
    struct Case {
        std::string name;
        std::vector<uint8_t> pkt;
        int fd;
    };
    std::vector<Case> cases = {
        {"null", base(client, vip).tcp(5555, port).flags(TcpFlags::ack).payload(std::string(64, 'x')).build(), nul},
        {"vip_miss", base(client, other).tcp(5555, port).flags(TcpFlags::ack).payload(std::string(64, 'x')).build(), lb},
        {"new_flow", base(client, vip).tcp(5555, port).flags(TcpFlags::syn).payload(std::string(64, 'x')).build(), lb},
        {"conntrack_hit", base(client, vip).tcp(5556, port).flags(TcpFlags::ack).payload(std::string(64, 'x')).build(), lb},
    };
    for (auto& sc : c.services) {
        if (!sc.quic) continue;
        std::string q = "\x40";
        q.push_back(char((c.quic_config_id << 5) | 7));
        uint32_t sid = sc.backends[0].server_id.value_or(ctl.backend_id(sc.backends[0].addr) + 1);
        for (int i = c.quic_server_id_bytes - 1; i >= 0; i--) q.push_back(char((sid >> (8 * i)) & 0xff));
        q.append(std::string(8, 'n'));
        cases.push_back({"quic_short", base(client, sc.vip).udp(5555, sc.port).payload(q + std::string(40, 'p')).build(), lb});
        break;
    }
    edge::bpf::test_run(lb, cases[3].pkt);  // the conntrack entry for the hit case
    // Daisy chaining (built-in configuration): a backend joins the daisy-chained service,
    // then a mid-connection packet of a flow whose slot moved goes out in GUE carrying
    // the previous backend, on every packet (its connection-table entry keeps it).
    if (g.config.empty()) {
        LbConfig c2 = c;
        for (auto& sc : c2.services)
            if (sc.daisy_chain) sc.backends.push_back({*IpAddr::parse("10.0.1.13")});
        ctl.apply(c2);
        for (auto& sc : c2.services) {
            if (!sc.daisy_chain) continue;
            for (uint16_t sp = 20000; sp < 20200; sp++) {
                auto pkt = base(client, sc.vip).tcp(sp, sc.port).flags(TcpFlags::ack).payload(std::string(64, 'x')).build();
                auto r = edge::bpf::test_run(bpf_program__fd(s->progs.xdp_lb), pkt);
                if (r.retval == XDP_TX && r.data.size() > 14 + 9 && r.data[14 + 9] == 17) {  // outer UDP: GUE
                    cases.push_back({"daisy_hit", pkt, lb});
                    break;
                }
            }
            break;
        }
    }
    auto wanted = [&](const std::string& name) {
        return name == "null" || o.cases.empty() || std::find(o.cases.begin(), o.cases.end(), name) != o.cases.end();
    };
    std::erase_if(cases, [&](const Case& cs) { return !wanted(cs.name); });
    std::map<std::string, std::vector<double>> hot;
    for (int r = 0; r < o.rounds; r++)
        for (auto& cs : cases) {
            auto res = edge::bpf::test_run(cs.fd, cs.pkt, o.repeat);
            hot[cs.name].push_back(res.duration_ns);
        }
    // Cold: distinct flows, each once; the median of kernel-timed single runs.
    std::map<std::string, std::vector<double>> cold;
    if (o.cold_flows > 0 && (wanted("new_flow") || wanted("conntrack_hit"))) {
        std::vector<std::vector<uint8_t>> syns, acks;
        for (int i = 0; i < o.cold_flows; i++) {
            IpAddr src = vip.is_v4() ? IpAddr::v4(0x0a000000u + static_cast<uint32_t>(i) * 7919u % 0xffffff)
                                     : client;
            uint16_t sp = static_cast<uint16_t>(1024 + i % 60000);
            syns.push_back(base(src, vip).tcp(sp, port).flags(TcpFlags::syn).payload(std::string(64, 'x')).build());
            acks.push_back(base(src, vip).tcp(sp, port).flags(TcpFlags::ack).payload(std::string(64, 'x')).build());
        }
        // The SYNs fill the connection table for the hits, measured or not.
        for (size_t i = 0; i < syns.size(); i++) cold["new_flow"].push_back(edge::bpf::test_run(lb, syns[i]).duration_ns);
        for (size_t i = 0; i < acks.size(); i++) {
            if (wanted("conntrack_hit")) cold["conntrack_hit"].push_back(edge::bpf::test_run(lb, acks[i]).duration_ns);
            cold["null"].push_back(edge::bpf::test_run(nul, acks[i]).duration_ns);
        }
    }
    double floor = median(hot["null"]);
    double floor_cold = cold.count("null") ? median(cold.at("null")) : 0;  // no entry without --cold-flows
    for (auto& cs : cases) {
        double m = median(hot[cs.name]);
        auto rec = edge::out::Record("lb_bench");
        rec.str("case", cs.name).real("hot_ns_per_packet", m, 1).real("hot_ratio_to_null", floor > 0 ? m / floor : 0, 2);
        std::string text = fmt::format("{:14} hot {:7.1f} ns/packet ({:.2f}x null)", cs.name, m, floor > 0 ? m / floor : 0);
        if (cold.count(cs.name)) {
            double mc = median(cold[cs.name]);
            rec.real("cold_ns_per_packet", mc, 1).real("cold_ratio_to_null", floor_cold > 0 ? mc / floor_cold : 0, 2);
            text += fmt::format("   cold {:7.1f} ns/packet ({:.2f}x null)", mc, floor_cold > 0 ? mc / floor_cold : 0);
        }
        rec.num("repeat", uint64_t{o.repeat}).num("rounds", o.rounds).num("bytes", static_cast<uint64_t>(cs.pkt.size()));
        out.emit(rec.text(text));
    }
    close(nul);
    return edge::exit_ok;
}

}  // namespace xlb
