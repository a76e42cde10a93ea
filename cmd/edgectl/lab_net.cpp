// edgectl lab: the network of the lab, with `ip` (no shell).
#include "lab_net.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "cli/error.hpp"
#include "lab_sys.hpp"

namespace edgectl::lab {

namespace {

using Args = std::vector<std::string>;

void ip(const std::string& ns, Args a) {
    a.insert(a.begin(), {"ip", "-n", ns});
    must(a);
}

// A veth pair between two namespaces, both ends up, tx checksum offload off (XDP_TX
// moves packets with complete checksums only).
void veth(const std::string& ns1, const std::string& if1, const std::string& ns2, const std::string& if2, int mtu = 1500) {
    must({"ip", "link", "add", if1, "netns", ns1, "mtu", std::to_string(mtu), "type", "veth", "peer", "name", if2, "netns", ns2,
          "mtu", std::to_string(mtu)});
    for (auto [ns, ifn] : {std::pair{ns1, if1}, std::pair{ns2, if2}}) {
        must(in_ns(ns, {"ethtool", "-K", ifn, "tx", "off"}));
        ip(ns, {"link", "set", ifn, "up"});
    }
}

void addr(const std::string& ns, const std::string& ifn, const std::string& a) {
    Args args{"addr", "add", a, "dev", ifn};
    if (a.find(':') != std::string::npos) args.push_back("nodad");
    ip(ns, args);
}

}  // namespace

void ns_sysctl(const std::string& ns, const std::string& key, const std::string& value) {
    Netns in(ns);
    std::string path = "/proc/sys/" + key;
    for (auto& c : path)
        if (c == '.') c = '/';
    int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) edge::failure("{}: cannot open {}: {}", ns, path, std::strerror(errno));
    ssize_t n = write(fd, value.data(), value.size());
    int e = errno;
    close(fd);
    if (n != static_cast<ssize_t>(value.size())) edge::failure("{}: cannot set {} = {}: {}", ns, key, value, std::strerror(e));
}

void build_network(const Plan& pl, State& st) {
    for (auto& ns : pl.namespaces()) {
        st.add_ns(ns);
        must({"ip", "netns", "add", ns});
        ip(ns, {"link", "set", "lo", "up"});
        ns_sysctl(ns, "net.ipv4.conf.all.rp_filter", "0");
        ns_sysctl(ns, "net.ipv4.conf.default.rp_filter", "0");
    }
    // The ISP and its customers.
    veth(pl.ns_isp, "el-i-cli", pl.ns_cli, "el-cli0");
    veth(pl.ns_isp, "el-i-atk", pl.ns_atk, "el-atk0");
    veth(pl.ns_isp, "el-i-org", pl.ns_org, "el-org0");
    addr(pl.ns_isp, "el-i-cli", pl.cli_gw + "/24");
    addr(pl.ns_cli, "el-cli0", pl.cli_addr + "/24");
    ip(pl.ns_cli, {"route", "add", "default", "via", pl.cli_gw});
    addr(pl.ns_isp, "el-i-atk", pl.atk_gw + "/24");
    addr(pl.ns_atk, "el-atk0", pl.atk_addr + "/24");
    ip(pl.ns_atk, {"route", "add", "default", "via", pl.atk_gw});
    addr(pl.ns_isp, "el-i-org", pl.org_gw + "/24");
    addr(pl.ns_org, "el-org0", pl.org_addr + "/24");
    ip(pl.ns_org, {"route", "add", "default", "via", pl.org_gw});
    ns_sysctl(pl.ns_isp, "net.ipv4.ip_forward", "1");
    const bool v6 = !pl.vip6.empty();
    if (v6) {
        addr(pl.ns_isp, "el-i-cli", pl.cli_gw6 + "/64");
        addr(pl.ns_cli, "el-cli0", pl.cli_addr6 + "/64");
        ip(pl.ns_cli, {"-6", "route", "add", "default", "via", pl.cli_gw6});
        ns_sysctl(pl.ns_isp, "net.ipv6.conf.all.forwarding", "1");
    }

    for (auto& p : pl.pops) {
        // ISP <-> PoP router: the BGP session's link.
        veth(pl.ns_isp, p.isp_if, p.ns_rtr, p.up_if);
        addr(pl.ns_isp, p.isp_if, p.isp_addr + "/24");
        addr(p.ns_rtr, p.up_if, p.pop_addr + "/24");
        if (!p.pop_addr6.empty()) {
            addr(pl.ns_isp, p.isp_if, p.isp_addr6 + "/64");
            addr(p.ns_rtr, p.up_if, p.pop_addr6 + "/64");
        }
        ip(p.ns_rtr, {"route", "add", "default", "via", p.isp_addr});
        ns_sysctl(p.ns_rtr, "net.ipv4.ip_forward", "1");
        // The PoP's LAN: a bridge in the router namespace; the balancer and the backends on it.
        // MTU 1600: IP-in-IP adds 20 bytes to full-size packets.
        ip(p.ns_rtr, {"link", "add", p.br, "mtu", "1600", "type", "bridge"});
        ip(p.ns_rtr, {"link", "set", p.br, "up"});
        addr(p.ns_rtr, p.br, p.br_addr + "/24");
        veth(p.ns_rtr, p.lb_port, p.ns_lb, p.lb_if, 1600);
        ip(p.ns_rtr, {"link", "set", p.lb_port, "master", p.br});
        addr(p.ns_lb, p.lb_if, p.lb_addr + "/24");
        ip(p.ns_lb, {"route", "add", "default", "via", p.br_addr});
        for (auto& pr : p.v4_prefixes) ip(p.ns_rtr, {"route", "add", pr, "via", p.lb_addr});
        if (v6) {
            ns_sysctl(p.ns_rtr, "net.ipv6.conf.all.forwarding", "1");
            ip(p.ns_rtr, {"-6", "route", "add", "default", "via", p.isp_addr6});
            addr(p.ns_rtr, p.br, p.br_addr6 + "/64");
            addr(p.ns_lb, p.lb_if, p.lb_addr6 + "/64");
            ip(p.ns_lb, {"-6", "route", "add", "default", "via", p.br_addr6});
            for (auto& pr : p.v6_prefixes) ip(p.ns_rtr, {"-6", "route", "add", pr, "via", p.lb_addr6});
        }
        // The ISP routes the PoP's inner links back (the caches' connections to the origin).
        ip(pl.ns_isp, {"route", "add", p.inner_net, "via", p.pop_addr});
        for (auto& b : p.backends) {
            veth(p.ns_rtr, b.port, b.ns, b.out_if, 1600);
            ip(p.ns_rtr, {"link", "set", b.port, "master", p.br});
            addr(b.ns, b.out_if, b.addr + "/24");
            ip(b.ns, {"route", "add", "default", "via", p.br_addr});
            ns_sysctl(b.ns, "net.ipv4.ip_forward", "1");
            // Backend host (decap) <-> its server namespace (guard + cache-proxy).
            veth(b.ns, b.in_if, b.ns_srv, b.srv_if);
            addr(b.ns, b.in_if, b.in_addr + "/30");
            addr(b.ns_srv, b.srv_if, b.srv_addr + "/30");
            ip(b.ns_srv, {"route", "add", "default", "via", b.in_addr});
            ip(p.ns_rtr, {"route", "add", b.link_net, "via", b.addr});
            if (v6) {
                ns_sysctl(b.ns, "net.ipv6.conf.all.forwarding", "1");
                addr(b.ns, b.out_if, b.addr6 + "/64");
                ip(b.ns, {"-6", "route", "add", "default", "via", p.br_addr6});
                addr(b.ns, b.in_if, b.in_addr6 + "/64");
                addr(b.ns_srv, b.srv_if, b.srv_addr6 + "/64");
                ip(b.ns_srv, {"-6", "route", "add", "default", "via", b.in_addr6});
                ns_sysctl(b.ns_srv, "net.ipv6.conf.all.forwarding", "1");  // the guard's uRPF (bpf_fib_lookup)
            }
            for (auto& v : pl.stack.vips) {
                if (v.address.is_v4()) {
                    ip(b.ns, {"route", "add", v.address.to_string() + "/32", "via", b.srv_addr});
                    addr(b.ns_srv, "lo", v.address.to_string() + "/32");
                } else {
                    if (v6) ip(b.ns, {"-6", "route", "add", v.address.to_string() + "/128", "via", b.srv_addr6});
                    addr(b.ns_srv, "lo", v.address.to_string() + "/128");
                }
            }
            // Without the guard a SYN flood fills the backlog (no kernel cookies); half-open
            // entries retire fast.
            ns_sysctl(b.ns_srv, "net.ipv4.tcp_syncookies", "0");
            ns_sysctl(b.ns_srv, "net.ipv4.tcp_synack_retries", "1");
            ns_sysctl(b.ns_srv, "net.ipv4.ip_forward", "1");  // the guard's uRPF uses bpf_fib_lookup
        }
    }
}

}  // namespace edgectl::lab
