// edgectl lab: processes and namespaces without a shell. Every wait is bounded and
// interruptible (SIGINT/SIGTERM set a flag that every wait checks).
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace edgectl::lab {

// Thrown by a wait when SIGINT/SIGTERM/SIGHUP arrived.
struct Interrupted : std::runtime_error {
    Interrupted() : std::runtime_error("interrupted") {}
};

void install_signal_handlers();
bool interrupted();
void check_interrupt();
// For teardown: forget a pending interrupt and ignore further SIGINT/SIGTERM/SIGHUP.
void ignore_signals();
void sleep_ms(int ms);  // throws Interrupted

struct RunResult {
    int rc = -1;
    bool timed_out = false;
    std::string out, err;
};
// Runs argv (execvp), collecting stdout and stderr, killed after timeout_s.
RunResult run(const std::vector<std::string>& argv, double timeout_s = 10);
// run() that throws edge::Failure "what: ...stderr" unless the exit code is 0.
std::string must(const std::vector<std::string>& argv, double timeout_s = 10);
// argv run inside a namespace with `ip netns exec NS`.
std::vector<std::string> in_ns(const std::string& ns, std::vector<std::string> argv);

// Starts a daemon in its own session, stdin /dev/null, stdout/stderr appended to files.
pid_t spawn(const std::vector<std::string>& argv, const std::string& out_path, const std::string& err_path);
// Reaps it if it is our child and exited; true while it runs.
bool reap(pid_t pid);

// The start time of a process (clock ticks since boot, /proc/PID/stat), 0 if gone: with the
// PID it names one process, so a reused PID is never signalled.
uint64_t start_time(pid_t pid);
bool alive(pid_t pid, uint64_t st);
// SIGTERM, up to grace_s, then SIGKILL (bounded). True when it had to kill.
bool stop(pid_t pid, uint64_t st, double grace_s);

// A tool binary: $EDGE_BIN/NAME, else next to edgectl's own binary.
std::string tool_path(const std::string& name);

// Enters a named network namespace (/run/netns/NAME) for this thread; restores on scope exit.
class Netns {
public:
    explicit Netns(const std::string& name);
    ~Netns();
    Netns(const Netns&) = delete;
    Netns& operator=(const Netns&) = delete;

private:
    int self_ = -1;
};

double now_s();  // monotonic seconds

}  // namespace edgectl::lab
