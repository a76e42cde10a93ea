// edgectl lab: fork/exec with pipes and deadlines, daemons, netns entry.
#include "lab_sys.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "cli/error.hpp"

namespace edgectl::lab {

namespace {

volatile sig_atomic_t g_signal = 0;

void on_signal(int sig) { g_signal = sig; }

std::vector<char*> cargv(const std::vector<std::string>& argv) {
    std::vector<char*> v;
    for (auto& a : argv) v.push_back(const_cast<char*>(a.c_str()));
    v.push_back(nullptr);
    return v;
}

[[noreturn]] void exec_or_die(const std::vector<std::string>& argv) {
    auto v = cargv(argv);
    execvp(v[0], v.data());
    dprintf(2, "edgectl: cannot run %s: %s\n", v[0], std::strerror(errno));
    _exit(127);
}

void reset_child_signals() {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) signal(s, SIG_DFL);
}

}  // namespace

double now_s() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

void install_signal_handlers() {
    struct sigaction sa{};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: poll and sleeps return EINTR
    for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaction(s, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);
}

bool interrupted() { return g_signal != 0; }

void ignore_signals() {
    for (int s : {SIGINT, SIGTERM, SIGHUP}) signal(s, SIG_IGN);
    g_signal = 0;
}

void check_interrupt() {
    if (interrupted()) throw Interrupted();
}

void sleep_ms(int ms) {
    double end = now_s() + ms / 1000.0;
    for (;;) {
        check_interrupt();
        double left = end - now_s();
        if (left <= 0) return;
        timespec ts{static_cast<time_t>(left), static_cast<long>((left - double(static_cast<time_t>(left))) * 1e9)};
        nanosleep(&ts, nullptr);
    }
}

std::vector<std::string> in_ns(const std::string& ns, std::vector<std::string> argv) {
    argv.insert(argv.begin(), {"ip", "netns", "exec", ns});
    return argv;
}

RunResult run(const std::vector<std::string>& argv, double timeout_s) {
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) edge::failure("pipe: {}", std::strerror(errno));
    pid_t pid = fork();
    if (pid < 0) edge::failure("fork: {}", std::strerror(errno));
    if (pid == 0) {
        reset_child_signals();
        setpgid(0, 0);  // Ctrl-C reaches edgectl only, which stops this child and cleans up
        int null = open("/dev/null", O_RDONLY);
        dup2(null, 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        exec_or_die(argv);
    }
    close(out[1]);
    close(err[1]);
    RunResult r;
    double end = now_s() + timeout_s;
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    int open_fds = 2;
    bool killed = false;
    while (open_fds > 0) {
        double left = end - now_s();
        if ((left <= 0 || interrupted()) && !killed) {
            kill(pid, SIGKILL);
            killed = true;
            r.timed_out = !interrupted();
            left = 1;
        }
        int n = poll(fds, 2, static_cast<int>(std::max(1.0, std::min(left, 0.2) * 1000)));
        if (n < 0 && errno != EINTR) break;
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[8192];
            ssize_t k = read(fds[i].fd, buf, sizeof buf);
            if (k > 0) (i ? r.err : r.out).append(buf, static_cast<size_t>(k));
            else if (k == 0 || errno != EINTR) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            }
        }
        if (killed && now_s() > end + 2) break;  // a grandchild holds the pipe: give up on it
    }
    for (auto& f : fds)
        if (f.fd >= 0) close(f.fd);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (interrupted()) throw Interrupted();
    return r;
}

std::string must(const std::vector<std::string>& argv, double timeout_s) {
    auto r = run(argv, timeout_s);
    if (r.rc != 0) {
        std::string cmd;
        for (auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
        std::string why = r.timed_out ? fmt::format("timed out after {} s", timeout_s) : r.err;
        while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
        if (auto nl = why.find('\n'); nl != std::string::npos) why = why.substr(0, nl);
        edge::failure("'{}' failed (exit {}): {}", cmd, r.rc, why);
    }
    return r.out;
}

pid_t spawn(const std::vector<std::string>& argv, const std::string& out_path, const std::string& err_path) {
    pid_t pid = fork();
    if (pid < 0) edge::failure("fork: {}", std::strerror(errno));
    if (pid == 0) {
        reset_child_signals();
        setsid();
        int null = open("/dev/null", O_RDONLY);
        int o = open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        int e = open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (null < 0 || o < 0 || e < 0) _exit(126);
        dup2(null, 0);
        dup2(o, 1);
        dup2(e, 2);
        exec_or_die(argv);
    }
    return pid;
}

bool reap(pid_t pid) {
    int st = 0;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return false;
    if (r < 0 && errno == ECHILD) return kill(pid, 0) == 0;
    return true;
}

uint64_t start_time(pid_t pid) {
    std::ifstream f(fmt::format("/proc/{}/stat", pid));
    std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto rp = s.rfind(')');
    if (rp == std::string::npos) return 0;
    std::istringstream in(s.substr(rp + 2));
    std::string state;
    in >> state;
    if (state == "Z" || state == "X") return 0;
    std::string field;
    for (int i = 4; i < 22 && in >> field; i++) {
    }
    uint64_t st = 0;
    in >> st;
    return st;
}

bool alive(pid_t pid, uint64_t st) {
    reap(pid);
    return pid > 0 && st != 0 && start_time(pid) == st;
}

bool stop(pid_t pid, uint64_t st, double grace_s) {
    if (!alive(pid, st)) return false;
    kill(pid, SIGTERM);
    double end = now_s() + grace_s;
    while (now_s() < end) {
        if (!alive(pid, st)) return false;
        usleep(20000);
    }
    if (alive(pid, st)) kill(pid, SIGKILL);
    for (int i = 0; i < 100 && alive(pid, st); i++) usleep(20000);
    return true;
}

std::string tool_path(const std::string& name) {
    if (const char* b = getenv("EDGE_BIN"); b && *b) return fmt::format("{}/{}", b, name);
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return name;
    std::string self(buf, static_cast<size_t>(n));
    return self.substr(0, self.rfind('/') + 1) + name;
}

Netns::Netns(const std::string& name) {
    self_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    int fd = open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
    if (self_ < 0 || fd < 0) edge::failure("cannot open network namespace {}: {}", name, std::strerror(errno));
    int rc = setns(fd, CLONE_NEWNET);
    int e = errno;
    close(fd);
    if (rc != 0) edge::failure("cannot enter network namespace {}: {}", name, std::strerror(e));
}

Netns::~Netns() {
    if (self_ >= 0) {
        setns(self_, CLONE_NEWNET);
        close(self_);
    }
}

}  // namespace edgectl::lab
