// edgectl lab: queries through birdc, ip, ss and the tools' own status commands.
#include "lab_query.hpp"

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "lab_conf.hpp"
#include "lab_http.hpp"
#include "lab_procs.hpp"
#include "lab_sys.hpp"

namespace edgectl::lab {

std::vector<BirdRoute> bird_routes(const std::string& ctl, const std::string& prefix, bool* ok) {
    std::vector<BirdRoute> v;
    auto r = run({"birdc", "-s", ctl, "show", "route", prefix, "all"}, 5);
    // (birdc exits 1 with "Network not found" when BIRD has no route for the prefix)
    if (ok) *ok = (r.rc == 0 && r.out.find("Unable to connect") == std::string::npos) || r.out.find("Network not found") != std::string::npos;
    if (r.rc != 0) return v;
    std::istringstream in(r.out);
    std::string line;
    while (std::getline(in, line)) {
        auto u = line.find("unicast [");
        if (u != std::string::npos) {
            BirdRoute br;
            auto s = u + 9;
            br.proto = line.substr(s, line.find(' ', s) - s);
            br.best = line.find("] * ", s) != std::string::npos;
            auto lb = line.rfind('['), rb = line.rfind(']');
            if (lb != std::string::npos && rb != std::string::npos && rb > lb) br.as_path = line.substr(lb + 1, rb - lb - 1);
            v.push_back(br);
        } else if (!v.empty() && line.find("\tvia ") == 0 && v.back().via.empty()) {
            std::istringstream w(line);
            std::string via;
            w >> via >> v.back().via;
        } else if (!v.empty() && line.find("BGP.med:") != std::string::npos) {
            try {
                v.back().med = static_cast<uint32_t>(std::stoul(line.substr(line.find(':') + 1)));
            } catch (...) {
            }
        } else if (!v.empty() && line.find("BGP.as_path:") != std::string::npos) {
            auto c = line.find(':');
            std::string p = line.substr(c + 1);
            while (!p.empty() && p[0] == ' ') p.erase(0, 1);
            v.back().as_path = p;
        }
    }
    return v;
}

std::string best_pop(const Plan& pl, const std::string& ctl, const std::string& prefix) {
    for (auto& r : bird_routes(ctl, prefix))
        if (r.best)
            for (auto& p : pl.pops)
                if (bird_proto(p) == r.proto) return p.name;
    return "";
}

std::string fib_next_hop(const std::string& ns, const std::string& addr) {
    auto r = run({"ip", "-n", ns, "route", "get", addr}, 5);
    if (r.rc != 0) return "";
    std::istringstream in(r.out);
    std::string w;
    while (in >> w)
        if (w == "via" && in >> w) return w;
    return "";
}

std::vector<BgpPeer> bgp_peers(const std::string& sock) {
    std::vector<BgpPeer> v;
    auto r = run({tool_path("bgp-announce"), "-j", "ctl", "-s", sock, "status"}, 5);
    if (r.rc != 0) return v;
    std::istringstream in(r.out);
    std::string line;
    auto field = [](const std::string& l, const std::string& k) {
        auto p = l.find("\"" + k + "\":\"");
        if (p == std::string::npos) return std::string();
        p += k.size() + 4;
        return l.substr(p, l.find('"', p) - p);
    };
    while (std::getline(in, line)) {
        if (line.find("\"type\":\"bgp_peer\"") == std::string::npos) continue;
        BgpPeer b;
        b.peer = field(line, "peer");
        b.state = field(line, "state");
        b.announced = static_cast<uint64_t>(json_num(line, "bgp_peer", "prefixes_sent"));
        v.push_back(b);
    }
    return v;
}

std::vector<XdpProg> xdp_progs(const std::string& ns) {
    std::vector<XdpProg> v;
    auto r = run({"ip", "-n", ns, "link", "show"}, 5);
    std::istringstream in(r.out);
    std::string line, ifname, mode;
    while (std::getline(in, line)) {
        if (!line.empty() && line[0] != ' ') {
            auto a = line.find(": ");
            auto b = line.find_first_of("@:", a + 2);
            ifname = a == std::string::npos ? "" : line.substr(a + 2, b - a - 2);
            mode = line.find(" xdpgeneric") != std::string::npos ? "generic" : line.find(" xdp ") != std::string::npos ? "native" : "";
        } else if (auto p = line.find("prog/xdp id "); p != std::string::npos) {
            XdpProg x;
            x.ns = ns;
            x.ifname = ifname;
            x.mode = mode;
            x.id = static_cast<uint32_t>(std::stoul(line.substr(p + 12)));
            v.push_back(x);
        }
    }
    return v;
}

double json_num(const std::string& jsonl, const std::string& type, const std::string& key) {
    std::istringstream in(jsonl);
    std::string line;
    while (std::getline(in, line)) {
        if (!type.empty() && line.find("\"type\":\"" + type + "\"") == std::string::npos) continue;
        auto p = line.find("\"" + key + "\":");
        if (p == std::string::npos) continue;
        try {
            return std::stod(line.substr(p + key.size() + 3));
        } catch (...) {
            return 0;
        }
    }
    return 0;
}

std::string tool_json(const ProcEntry& p, const std::vector<std::string>& argv) {
    auto r = run(in_proc(p, argv), 10);
    return r.rc == 0 ? r.out : "";
}

std::string cache_stats(const std::string& ns, const std::string& admin) {
    auto ep = admin.rfind(':');
    if (ep == std::string::npos) return "";
    auto r = http_get(ns, admin.substr(0, ep), static_cast<uint16_t>(std::stoul(admin.substr(ep + 1))), "/stats", 2);
    return r ? r->body : "";
}

std::vector<std::string> established(const std::string& ns, uint16_t port) {
    std::vector<std::string> v;
    auto r = run(in_ns(ns, {"ss", "-Htn", "state", "established", fmt::format("( sport = :{} )", port)}), 5);
    std::istringstream in(r.out);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream w(line);
        std::string rq, sq, local, peer;
        if (w >> rq >> sq >> local >> peer) v.push_back(peer);
    }
    return v;
}

size_t count_lines(const std::string& path, const std::string& needle) {
    std::ifstream f(path);
    std::string line;
    size_t n = 0;
    while (std::getline(f, line))
        if (needle.empty() || line.find(needle) != std::string::npos) n++;
    return n;
}

}  // namespace edgectl::lab
