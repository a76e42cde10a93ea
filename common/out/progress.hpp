// Progress for long work, on stderr, only when stderr is a terminal and not -q.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace edge::out {

class Progress {
public:
    // total: expected units (bytes of a file, say) or 0 when unknown.
    Progress(std::string what, uint64_t total);
    ~Progress();
    // Cheap enough to call per packet: `done` (a callable returning units done, which
    // may be costly, like ftell) and the clock are only consulted every 4096 calls.
    template <typename F>
    void tick(F&& done) {
        if (!enabled_ || (++calls_ & 4095) != 0) return;
        draw(done());
    }
    void update(uint64_t done) {
        if (enabled_) draw(done);
    }
    void finish();

private:
    void draw(uint64_t done);
    std::string what_;
    uint64_t total_;
    bool enabled_;
    bool drawn_ = false;
    uint64_t calls_ = 0;
    std::chrono::steady_clock::time_point last_{};
};

}  // namespace edge::out
