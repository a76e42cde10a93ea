// scan() over several threads, for captures the Reader has mapped: this thread walks
// the records (cheap) and hands batches of frames to workers that parse them and call
// f(state, packet, frame) with a per-worker state, merged by the caller afterwards.
// Other captures (pcapng, pipes) fall back to scan() on states[0].
#pragma once
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "pcap/scan.hpp"

namespace edge::pcap {

// Workers to use: the cores this process may run on, at most `max`.
unsigned scan_threads(unsigned max = 8);

template <typename State, typename F>
ScanStats scan_parallel(Reader& r, std::vector<State>& states, F&& f, const net::ParseOptions& opts = {false}) {
    if (!r.mapped() || states.size() < 2)
        return scan(r, [&](const net::Packet& p, const Frame& fr) { f(states[0], p, fr); }, opts);
    require_link(r);
    const net::LinkType link = *r.link();
    constexpr size_t batch_size = 2048, max_queued = 8;
    std::mutex mu;
    std::condition_variable not_empty, not_full;
    std::deque<std::vector<Frame>> queue;
    bool done = false;
    std::vector<ScanStats> stats(states.size());

    auto worker = [&](size_t w) {
        ScanStats& st = stats[w];
        while (true) {
            std::vector<Frame> batch;
            {
                std::unique_lock lk(mu);
                not_empty.wait(lk, [&] { return !queue.empty() || done; });
                if (queue.empty()) return;
                batch = std::move(queue.front());
                queue.pop_front();
            }
            not_full.notify_one();
            for (const Frame& fr : batch) {
                st.frames++;
                st.bytes += fr.wire_len;
                net::Packet p = net::parse_packet(fr.data, link, opts);
                switch (p.status) {
                case net::ParseStatus::ok:
                    st.ip++;
                    f(states[w], p, fr);
                    break;
                case net::ParseStatus::not_ip: st.non_ip++; break;
                case net::ParseStatus::truncated: st.truncated++; break;
                default: st.malformed++; break;
                }
            }
        }
    };
    std::vector<std::thread> threads;
    for (size_t w = 0; w < states.size(); w++) threads.emplace_back(worker, w);

    out::Progress progress("reading " + r.path(), r.size());
    std::vector<Frame> batch;
    batch.reserve(batch_size);
    Frame fr;
    auto push = [&] {
        {
            std::unique_lock lk(mu);
            not_full.wait(lk, [&] { return queue.size() < max_queued; });
            queue.push_back(std::move(batch));
        }
        not_empty.notify_one();
        batch = {};
        batch.reserve(batch_size);
    };
    while (r.next(fr)) {
        batch.push_back(fr);
        if (batch.size() == batch_size) push();
        progress.tick([&] { return r.position(); });
    }
    if (!batch.empty()) push();
    {
        std::lock_guard lk(mu);
        done = true;
    }
    not_empty.notify_all();
    for (auto& t : threads) t.join();
    progress.finish();

    ScanStats total;
    for (auto& s : stats) {
        total.frames += s.frames;
        total.bytes += s.bytes;
        total.ip += s.ip;
        total.non_ip += s.non_ip;
        total.truncated += s.truncated;
        total.malformed += s.malformed;
    }
    total.file_truncated = r.truncated();
    total.file_error = r.error();
    return total;
}

}  // namespace edge::pcap
