// edgectl lab: configs for BIRD and nginx; the tools' configs come from render().
#include "lab_conf.hpp"

#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "cli/error.hpp"
#include "render.hpp"

namespace edgectl::lab {

namespace fs = std::filesystem;

namespace {

void write(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::trunc | std::ios::binary);
    f << text;
    f.flush();
    if (!f) edge::failure("cannot write {}", path);
}

}  // namespace

std::string conf_dir(const Plan& pl) { return pl.dir + "/conf"; }
std::string conf_file(const Plan& pl, const PopPlan& p, const std::string& file) {
    return conf_dir(pl) + "/" + p.name + "/" + file;
}
std::string bird_ctl(const Plan& pl) { return pl.dir + "/bird.ctl"; }
std::string bgp_sock(const PopPlan& p) { return p.dir + "/bgp.sock"; }
std::string bird_proto(const PopPlan& p) { return "pop_" + p.key; }
std::string access_log(const PopPlan& p, size_t backend) { return fmt::format("{}/access-{}.jsonl", p.dir, backend + 1); }
std::string origin_dir(const Plan& pl) { return pl.dir + "/origin"; }

void write_tool_configs(const Plan& pl, const Stack& s) { render(s, conf_dir(pl)); }

void write_peer_configs(const Plan& pl) {
    std::error_code ec;
    for (auto& p : pl.pops) fs::create_directories(p.dir, ec);
    fs::create_directories(pl.dir + "/logs", ec);
    fs::create_directories(origin_dir(pl) + "/www", ec);
    if (ec) edge::failure("cannot create directories in {}: {}", pl.dir, ec.message());

    // BIRD 2 as the ISP's router: passive eBGP to every PoP, best routes into the kernel FIB.
    std::string b = fmt::format(
        "# edgectl lab: the ISP router (BIRD 2)\n"
        "log \"{}/bird.log\" all;\n"
        "router id {};\n"
        "protocol device {{ scan time 1; }}\n"
        "protocol kernel kernel4 {{ ipv4 {{ export all; }}; }}\n"
        "protocol kernel kernel6 {{ ipv6 {{ export all; }}; }}\n",
        pl.dir, pl.pops[0].isp_addr);
    for (auto& p : pl.pops) {
        b += fmt::format(
            "protocol bgp {} {{\n"
            "  description \"{}\";\n"
            "  local {} as {};\n"
            "  neighbor {} as {};\n"
            "  passive on;\n"
            "  hold time {};\n"
            "  med metric yes;\n"
            "  ipv4 {{ import all; export none; }};\n",
            bird_proto(p), p.name, p.isp_addr, pl.isp_as, p.pop_addr, pl.stack.pops[&p - pl.pops.data()].asn,
            std::max<uint32_t>(3, pl.stack.hold_time));
        if (!p.pop_addr6.empty()) b += "  ipv6 { import all; export none; };\n";
        b += "}\n";
    }
    write(pl.dir + "/bird.conf", b);

    // nginx as the origin: one process (no master), static files, cacheable.
    std::string o = origin_dir(pl);
    write(o + "/nginx.conf", fmt::format(
        "# edgectl lab: the origin\n"
        "daemon off;\nmaster_process off;\nworker_processes 1;\n"
        "pid {0}/nginx.pid;\nerror_log {0}/error.log warn;\n"
        "events {{ worker_connections 1024; }}\n"
        "http {{\n"
        "  access_log {0}/access.log;\n"
        "  client_body_temp_path {0}/tmp_body; proxy_temp_path {0}/tmp_proxy;\n"
        "  fastcgi_temp_path {0}/tmp_f; uwsgi_temp_path {0}/tmp_u; scgi_temp_path {0}/tmp_s;\n"
        "  default_type text/plain;\n"
        "  server {{\n"
        "    listen {1}:{2};\n"
        "    root {0}/www;\n"
        "    add_header Cache-Control \"public, max-age=3600\";\n"
        "  }}\n"
        "}}\n",
        o, pl.org_addr, pl.org_port));
    write(o + "/www/hello.txt", "hello from the origin\n");
    write(o + "/www/index.html", "<!doctype html><title>edge lab</title><p>the origin of the edge lab\n");
    write(o + "/www/1k.bin", std::string(1024, 'x'));
}

}  // namespace edgectl::lab
