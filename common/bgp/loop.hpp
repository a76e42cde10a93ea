// A small single-threaded event loop: epoll for file descriptors, one timerfd for all
// timers (absolute CLOCK_MONOTONIC deadlines), signalfd-friendly. Callbacks may add or
// remove fds and timers (including their own) while running.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <unordered_map>

namespace edge::bgp {

class Loop {
public:
    using FdFn = std::function<void(uint32_t events)>;
    using TimerFn = std::function<void()>;
    using TimerId = uint64_t;

    Loop();
    ~Loop();
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;

    void add(int fd, uint32_t events, FdFn fn);  // EPOLLIN/EPOLLOUT...
    void modify(int fd, uint32_t events);
    void remove(int fd);  // does not close fd

    TimerId after_ms(int64_t ms, TimerFn fn);
    void cancel(TimerId& id);  // sets id to 0; 0 is a no-op
    static int64_t now_ms();

    // Runs until stop(); returns after the current callback.
    void run();
    void stop() { running_ = false; }

private:
    void arm();
    int ep_ = -1;
    int tfd_ = -1;
    bool running_ = false;
    uint64_t next_reg_ = 1;
    TimerId next_timer_ = 1;
    struct Reg {
        int fd;
        std::shared_ptr<FdFn> fn;
    };
    std::unordered_map<uint64_t, Reg> regs_;   // registration id -> fd + callback
    std::unordered_map<int, uint64_t> by_fd_;  // fd -> registration id
    std::map<std::pair<int64_t, TimerId>, TimerFn> timers_;
    std::unordered_map<TimerId, int64_t> deadline_;
};

}  // namespace edge::bgp
