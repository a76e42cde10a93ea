// edgectl render: each tool's config per PoP, as the tools read them with -c.
#include "render.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "cli/error.hpp"

namespace edgectl {

namespace fs = std::filesystem;

namespace {

// A TOML basic string.
std::string q(std::string_view s) {
    std::string o = "\"";
    for (char c : s) {
        switch (c) {
        case '"': o += "\\\""; break;
        case '\\': o += "\\\\"; break;
        case '\n': o += "\\n"; break;
        case '\t': o += "\\t"; break;
        default:
            if (static_cast<unsigned char>(c) < 0x20) o += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
            else o += c;
        }
    }
    return o + "\"";
}

std::string qlist(const std::vector<std::string>& v) {
    std::string o = "[";
    for (size_t i = 0; i < v.size(); i++) o += (i ? ", " : "") + q(v[i]);
    return o + "]";
}

std::string header(const Stack& s, const Pop& p, std::string_view how) {
    return fmt::format("# Rendered by edgectl from {} for PoP {} (stack {}): do not edit, edit the stack file.\n# {}\n",
                       s.path, p.name, s.name, how);
}

std::string num(double v) {
    auto t = fmt::format("{}", v);
    if (t.find_first_of(".eE") == std::string::npos && t.find("inf") == std::string::npos) t += ".0";
    return t;
}

std::string xdp_lb(const Stack& s, const Pop& p) {
    std::string o = header(s, p, "xdp-lb -c xdp-lb.toml run -i IFACE   (or: replay --pcap CAPTURE)");
    o += fmt::format("[lb]\ntable_size = {}\nhash_key = {}\nconntrack_size = {}\nencap_source_v4 = {}\nencap_source_v6 = {}\n",
                     s.table_size, q(s.hash_key), s.conntrack_size, q(s.encap_source_v4), q(s.encap_source_v6));
    std::vector<std::string> backends;
    for (auto& b : p.backends)
        backends.push_back(b.weight == 1 ? b.address.to_string() : fmt::format("{}={}", b.address.to_string(), b.weight));
    for (auto& v : s.vips)
        for (auto& svc : v.services)
            o += fmt::format("\n[[service]]\nvip = {}\nport = {}\nproto = {}\nbackends = {}\n", q(v.address.to_string()), svc.port,
                             q(svc.proto), qlist(backends));
    return o;
}

std::string guard(const Stack& s, const Pop& p) {
    std::string o = header(s, p, "synflood-guard -c synflood-guard.toml run -i IFACE");
    o += fmt::format("[guard]\nurpf = {}\nsrc_pps = {}\nfactor = {}\nfloor_syn_pps = {}\nallow = {}\ndeny = {}\n", q(s.urpf),
                     s.src_pps, num(s.factor), num(s.floor_syn_pps), qlist(s.allow), qlist(s.deny));
    for (auto& v : s.vips)
        for (auto& svc : v.services) {
            if (svc.proto != "tcp") continue;  // SYN floods are TCP
            o += fmt::format("\n[[protect]]\nprefix = {}\nport = {}\ncookie = {}\n",
                             q(edge::net::Prefix::host(v.address).to_string()), svc.port, q(s.cookie));
            if (s.syn_pps) o += fmt::format("syn_pps = {}\n", s.syn_pps);
            if (s.flood_syn_pps) o += fmt::format("flood_syn_pps = {}\n", s.flood_syn_pps);
        }
    return o;
}

std::string cache(const Stack& s, const Pop& p) {
    std::string o = header(s, p, "cache-proxy -c cache-proxy.toml   (on every backend; check: cache-proxy -c cache-proxy.toml check)");
    std::vector<std::string> listen;
    for (auto& v : s.vips)
        for (auto& svc : v.services)
            if (svc.proto == "tcp" && svc.port == s.cache_port)
                listen.push_back(edge::net::Endpoint{v.address, s.cache_port}.to_string());
    o += fmt::format("origin = {}\nlisten = {}\n", q(s.origin), qlist(listen));
    if (!s.admin.empty()) o += fmt::format("admin = {}\n", q(s.admin));
    o += fmt::format("threads = {}\ncache-size = {}\nmax-object-size = {}\nproxy-protocol = {}\n", s.threads, q(s.cache_size),
                     q(s.max_object_size), s.proxy_protocol ? "true" : "false");
    return o;
}

std::string bgp(const Stack& s, const Pop& p) {
    std::string o = header(s, p, "bgp-announce -c bgp-announce.toml run   (check: run --check)");
    o += fmt::format("[speaker]\nlocal_as = {}\nrouter_id = {}\nhold_time = {}\n", p.asn, q(p.router_id.to_string()), s.hold_time);
    for (auto& peer : p.peers) {
        std::vector<std::string> fam;
        if (peer.carries_v4()) fam.push_back("ipv4-unicast");
        if (peer.carries_v6()) fam.push_back("ipv6-unicast");
        o += fmt::format("\n[[peer]]\nname = {}\naddress = {}\nremote_as = {}\n", q(peer.name), q(peer.address.to_string()),
                         peer.remote_as);
        if (peer.local_address) o += fmt::format("local_address = {}\n", q(peer.local_address->to_string()));
        if (peer.passive) o += "passive = true\n";
        o += fmt::format("families = {}\n", qlist(fam));
        if (peer.next_hop6 && peer.address.is_v4()) o += fmt::format("next_hop_self6 = {}\n", q(peer.next_hop6->to_string()));
    }
    std::vector<std::string> prefixes;
    for (auto& pr : s.prefixes) prefixes.push_back(pr.to_string());
    o += fmt::format("\n[[group]]\nname = \"anycast\"\nprefixes = {}\n", qlist(prefixes));
    if (!s.communities.empty()) o += fmt::format("communities = {}\n", qlist(s.communities));
    if (p.med) o += fmt::format("med = {}\n", *p.med);
    if (p.prepend) o += fmt::format("as_path_prepend = {}\n", p.prepend);
    if (!p.health.empty()) {
        o += "[group.health]\n";
        if (p.health.rfind("http://", 0) == 0) o += fmt::format("http = {}\n", q(p.health));
        else if (p.health.rfind("tcp:", 0) == 0) o += fmt::format("tcp = {}\n", q(p.health.substr(4)));
        else o += fmt::format("command = {}\n", q(p.health.substr(8)));
        o += fmt::format("interval = {}\nrise = {}\nfall = {}\non_failure = \"withdraw\"\n", num(s.health_interval), s.health_rise,
                         s.health_fall);
    }
    return o;
}

std::string backends_txt(const Stack& s, const Pop& p) {
    std::string o = fmt::format("# Rendered by edgectl from {} for PoP {}: the Maglev backends of xdp-lb.toml, in order\n"
                                "# (drained backends left out), for maglev-calc --backends. NAME WEIGHT a line.\n",
                                s.path, p.name);
    for (auto& b : p.backends)
        if (b.weight > 0) o += fmt::format("{} {}\n", b.address.to_string(), b.weight);
    return o;
}

std::string maglev_calc(const Stack& s, const Pop& p, const fs::path& backends) {
    std::string o = header(s, p, "maglev-calc -c maglev-calc.toml lookup FLOW | --pcap CAPTURE   (the same table as xdp-lb.toml)");
    for (const char* cmd : {"table", "lookup", "pcap"}) {
        o += fmt::format("\n[{}]\nbackends = {}\nsize = {}\n", cmd, q(backends.string()), s.table_size);
        if (std::string_view(cmd) != "table") o += fmt::format("hash-key = {}\n", q(s.hash_key));
    }
    return o;
}

void write_file(const fs::path& path, const std::string& text) {
    fs::path tmp = path;
    tmp += ".tmp";
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        if (!f) edge::failure("cannot write {}: {}", tmp.string(), std::strerror(errno));
        f << text;
        f.flush();
        if (!f) edge::failure("cannot write {}: {}", tmp.string(), std::strerror(errno));
    }
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) edge::failure("cannot rename {} to {}: {}", tmp.string(), path.string(), ec.message());
}

}  // namespace

std::vector<RenderedFile> render(const Stack& s, const std::string& out_dir) {
    if (out_dir.empty()) edge::usage_error("render needs --out DIR");
    std::error_code ec;
    fs::path base = fs::absolute(out_dir, ec);
    if (ec) edge::usage_error("--out {}: {}", out_dir, ec.message());
    if (fs::exists(base, ec) && !fs::is_directory(base, ec))
        edge::usage_error("--out {}: exists and is not a directory", out_dir);
    std::vector<RenderedFile> files;
    for (auto& p : s.pops) {
        fs::path dir = base / p.name;
        fs::create_directories(dir, ec);
        if (ec) edge::failure("cannot create {}: {}", dir.string(), ec.message());
        auto add = [&](const char* tool, const char* file, const std::string& text) {
            write_file(dir / file, text);
            files.push_back({p.name, tool, (dir / file).string()});
        };
        add("xdp-lb", "xdp-lb.toml", xdp_lb(s, p));
        add("synflood-guard", "synflood-guard.toml", guard(s, p));
        add("cache-proxy", "cache-proxy.toml", cache(s, p));
        add("bgp-announce", "bgp-announce.toml", bgp(s, p));
        add("maglev-calc", "backends.txt", backends_txt(s, p));
        add("maglev-calc", "maglev-calc.toml", maglev_calc(s, p, dir / "backends.txt"));
    }
    return files;
}

}  // namespace edgectl
