// Events to stdout from a writer thread with a bounded queue: a slow or absent reader
// never stalls the BGP sessions (records beyond the bound are dropped and counted).
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "out/record.hpp"

namespace bgp_announce {

class Emitter {
public:
    explicit Emitter(bool json, std::FILE* f = stdout, size_t max_bytes = 64u << 20);
    ~Emitter();  // drains what is queued (bounded wait), then stops
    void emit(const edge::out::Record& r);
    uint64_t dropped() const { return dropped_; }
    uint64_t emitted() const { return emitted_; }
    bool json() const { return json_; }

private:
    void run();
    void write_out(const std::string& s, std::chrono::steady_clock::time_point& deadline);
    bool broken_ = false;
    bool json_;
    std::FILE* f_;
    size_t max_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::string> q_;
    size_t bytes_ = 0;
    bool stop_ = false;
    uint64_t dropped_ = 0, emitted_ = 0;
    std::thread t_;
};

}  // namespace bgp_announce
