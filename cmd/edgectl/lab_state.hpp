// edgectl lab: what a lab created, recorded as it goes (STATE/state), so `lab down`, a
// failure or Ctrl-C removes exactly that: the namespaces and the processes (PID + start time).
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace edgectl::lab {

struct ProcEntry {
    std::string name, ns;
    std::string iface;  // the interface an XDP daemon is attached to ("" for others)
    pid_t pid = 0;
    uint64_t start = 0;
};

class State {
public:
    explicit State(std::string dir);
    const std::string& dir() const { return dir_; }
    bool exists() const;
    void create();                                  // mkdir -p, fresh state file
    void add_ns(const std::string& ns);
    void add_proc(const ProcEntry& p);
    void set(const std::string& key, const std::string& value);  // "stack /path"
    std::string get(const std::string& key) const;
    std::vector<std::string> namespaces() const;
    std::vector<ProcEntry> procs() const;

private:
    void append(const std::string& line);
    std::vector<std::vector<std::string>> lines() const;
    std::string dir_;
};

// Stops every recorded process (SIGTERM, then SIGKILL after a bounded grace), deletes the
// recorded namespaces and any other el-* namespace, removes the state directory.
// Returns lines describing what it did.
std::vector<std::string> teardown(const std::string& dir);

// The el-* namespaces that exist now.
std::vector<std::string> lab_namespaces();

}  // namespace edgectl::lab
