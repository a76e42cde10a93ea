// edgectl lab: the state file and the teardown that reads it.
#include "lab_state.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "cli/error.hpp"
#include "lab_sys.hpp"

namespace edgectl::lab {

namespace fs = std::filesystem;

State::State(std::string dir) : dir_(std::move(dir)) {}

bool State::exists() const { return fs::exists(dir_ + "/state"); }

void State::create() {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) edge::failure("cannot create {}: {}", dir_, ec.message());
    std::ofstream f(dir_ + "/state", std::ios::trunc);
    if (!f) edge::failure("cannot write {}/state", dir_);
    f << "# edgectl lab state: what `edgectl lab down` removes\n";
}

void State::append(const std::string& line) {
    std::ofstream f(dir_ + "/state", std::ios::app);
    f << line << '\n';
    f.flush();
    if (!f) edge::failure("cannot write {}/state", dir_);
}

void State::add_ns(const std::string& ns) { append("ns " + ns); }
void State::add_proc(const ProcEntry& p) {
    append(fmt::format("proc {} {} {} {}{}", p.name, p.ns, p.pid, p.start, p.iface.empty() ? "" : " " + p.iface));
}
void State::set(const std::string& key, const std::string& value) { append(fmt::format("set {} {}", key, value)); }

std::vector<std::vector<std::string>> State::lines() const {
    std::vector<std::vector<std::string>> v;
    std::ifstream f(dir_ + "/state");
    std::string line;
    while (std::getline(f, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream in(line);
        std::vector<std::string> w;
        std::string x;
        while (in >> x) w.push_back(x);
        v.push_back(w);
    }
    return v;
}

std::string State::get(const std::string& key) const {
    std::string v;
    for (auto& w : lines())
        if (w.size() >= 3 && w[0] == "set" && w[1] == key) {
            v = w[2];
            for (size_t i = 3; i < w.size(); i++) v += " " + w[i];
        }
    return v;
}

std::vector<std::string> State::namespaces() const {
    std::vector<std::string> v;
    for (auto& w : lines())
        if (w.size() == 2 && w[0] == "ns") v.push_back(w[1]);
    return v;
}

std::vector<ProcEntry> State::procs() const {
    std::vector<ProcEntry> v;
    for (auto& w : lines())
        if ((w.size() == 5 || w.size() == 6) && w[0] == "proc") {
            ProcEntry p;
            p.name = w[1];
            p.ns = w[2];
            p.pid = static_cast<pid_t>(std::stol(w[3]));
            p.start = std::stoull(w[4]);
            if (w.size() == 6) p.iface = w[5];
            v.push_back(p);
        }
    return v;
}

std::vector<std::string> lab_namespaces() {
    std::vector<std::string> v;
    std::error_code ec;
    for (auto& e : fs::directory_iterator("/run/netns", ec)) {
        auto n = e.path().filename().string();
        if (n.rfind("el-", 0) == 0) v.push_back(n);
    }
    return v;
}

std::vector<std::string> teardown(const std::string& dir) {
    std::vector<std::string> said;
    State st(dir);
    auto procs = st.procs();
    // SIGTERM to all at once (daemons withdraw routes and detach), then a bounded wait.
    for (auto& p : procs)
        if (alive(p.pid, p.start)) kill(p.pid, SIGTERM);
    double end = now_s() + 5;
    for (auto& p : procs)
        while (alive(p.pid, p.start) && now_s() < end) usleep(20000);
    int stopped = 0, killed = 0;
    for (auto& p : procs) {
        if (alive(p.pid, p.start)) {
            stop(p.pid, p.start, 0);
            killed++;
            said.push_back(fmt::format("killed {} (pid {}): it did not stop within 5 s of SIGTERM", p.name, p.pid));
        } else {
            stopped++;
        }
    }
    if (!procs.empty()) said.push_back(fmt::format("stopped {} processes{}", stopped + killed, killed ? fmt::format(" ({} killed)", killed) : ""));
    auto nss = st.namespaces();
    for (auto& n : lab_namespaces())
        if (std::find(nss.begin(), nss.end(), n) == nss.end()) nss.push_back(n);
    int deleted = 0;
    for (auto& n : nss) {
        if (!fs::exists("/run/netns/" + n)) continue;
        auto r = run({"ip", "netns", "del", n}, 10);
        if (r.rc == 0) deleted++;
        else said.push_back(fmt::format("cannot delete namespace {}: {}", n, r.err));
    }
    if (deleted) said.push_back(fmt::format("deleted {} namespaces", deleted));
    std::error_code ec;
    if (fs::exists(dir + "/state")) fs::remove_all(dir, ec);
    if (ec) said.push_back(fmt::format("cannot remove {}: {}", dir, ec.message()));
    return said;
}

}  // namespace edgectl::lab
