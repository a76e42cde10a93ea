// Event loop (see loop.hpp).
#include "bgp/loop.hpp"

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <system_error>

namespace edge::bgp {

Loop::Loop() {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    tfd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (ep_ < 0 || tfd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll/timerfd");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = 0;  // registration 0 = the timerfd
    epoll_ctl(ep_, EPOLL_CTL_ADD, tfd_, &ev);
}

Loop::~Loop() {
    if (tfd_ >= 0) close(tfd_);
    if (ep_ >= 0) close(ep_);
}

int64_t Loop::now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

void Loop::add(int fd, uint32_t events, FdFn fn) {
    remove(fd);
    uint64_t id = next_reg_++;
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = id;
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0) throw std::system_error(errno, std::generic_category(), "epoll_ctl");
    regs_[id] = Reg{fd, std::make_shared<FdFn>(std::move(fn))};
    by_fd_[fd] = id;
}

void Loop::modify(int fd, uint32_t events) {
    auto it = by_fd_.find(fd);
    if (it == by_fd_.end()) return;
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = it->second;
    epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &ev);
}

void Loop::remove(int fd) {
    auto it = by_fd_.find(fd);
    if (it == by_fd_.end()) return;
    epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
    regs_.erase(it->second);
    by_fd_.erase(it);
}

Loop::TimerId Loop::after_ms(int64_t ms, TimerFn fn) {
    TimerId id = next_timer_++;
    int64_t when = now_ms() + ms;
    timers_.emplace(std::make_pair(when, id), std::move(fn));
    deadline_[id] = when;
    arm();
    return id;
}

void Loop::cancel(TimerId& id) {
    if (!id) return;
    auto it = deadline_.find(id);
    if (it != deadline_.end()) {
        timers_.erase({it->second, id});
        deadline_.erase(it);
    }
    id = 0;
}

void Loop::arm() {
    itimerspec its{};
    if (!timers_.empty()) {
        int64_t when = timers_.begin()->first.first;
        if (when <= 0) when = 1;
        its.it_value.tv_sec = when / 1000;
        its.it_value.tv_nsec = (when % 1000) * 1000000;
    }
    timerfd_settime(tfd_, TFD_TIMER_ABSTIME, &its, nullptr);
}

void Loop::run() {
    running_ = true;
    epoll_event evs[64];
    while (running_) {
        int n = epoll_wait(ep_, evs, 64, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw std::system_error(errno, std::generic_category(), "epoll_wait");
        }
        for (int i = 0; i < n && running_; ++i) {
            uint64_t id = evs[i].data.u64;
            if (id == 0) {
                uint64_t junk;
                while (read(tfd_, &junk, sizeof junk) > 0) {
                }
                int64_t now = now_ms();
                while (!timers_.empty() && timers_.begin()->first.first <= now && running_) {
                    auto it = timers_.begin();
                    auto fn = std::move(it->second);
                    deadline_.erase(it->first.second);
                    timers_.erase(it);
                    fn();
                }
                arm();
                continue;
            }
            auto it = regs_.find(id);
            if (it == regs_.end()) continue;  // removed by an earlier callback
            auto fn = it->second.fn;          // keep alive while running
            (*fn)(evs[i].events);
        }
        if (running_) arm();
    }
}

}  // namespace edge::bgp
