// `decode -m` lines of BGP messages made on several cores, written in input order.
// The reader (this thread) hands over messages with their peer's header fields; batches of
// them are formatted by worker threads (and by this thread when it is ahead), each with its
// own BgpdumpFormatter. A formatted batch is written at once by the thread that made it
// when every earlier one is out (its text is still in that core's cache), else left for the
// thread that writes the one before it: nobody waits for a turn. The output and the
// warnings, in their order, are the same as formatting each message in turn.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "mrt/mrt.hpp"

namespace bgp_announce {

class LinePool {
public:
    // A peer's fields for its messages' lines (Bgp4mp without msg) and the warnings' "where".
    struct Peer {
        edge::mrt::Bgp4mp line;
        std::string where;
    };
    using Write = std::function<void(const char*, size_t)>;
    using Warn = std::function<void(const std::string& where, const std::string& what)>;

    // `workers` threads besides this one (at least 1).
    LinePool(unsigned workers, Write write, Warn warn);
    ~LinePool();  // stops the workers; output not yet written is dropped (an error unwinds)
    LinePool(const LinePool&) = delete;
    LinePool& operator=(const LinePool&) = delete;

    // A peer snapshot for the messages that follow (stays valid for the pool's life).
    const Peer* peer(const edge::mrt::Bgp4mp& line, std::string where);
    // One message. `stable`: its bytes stay valid and unchanged until finish() (a mapped
    // capture); otherwise they are copied.
    void add(const Peer* p, int64_t ts_us, std::span<const uint8_t> msg, bool stable);
    // A warning that belongs between the messages added before and after it.
    void warn(const std::string& where, const std::string& what);
    // Formats and writes everything added; rethrows a worker's failure.
    void finish();

private:
    struct Item {
        const Peer* peer;
        const uint8_t* p;  // nullptr: at `off` in the batch's bytes
        uint32_t off, len;
        int64_t ts_us;
    };
    struct Note {
        size_t before;  // item index it precedes (formatter warnings: the item's own index)
        std::string where, what;
    };
    struct Batch {
        uint64_t seq = 0;
        std::vector<Item> items;
        std::vector<uint8_t> bytes;
        std::vector<Note> notes, fmt_notes;
        edge::mrt::Text text;
        void reset() { items.clear(), bytes.clear(), notes.clear(), fmt_notes.clear(), text.clear(); }
    };
    static constexpr size_t batch_items = 2048, batch_bytes = 1u << 20;

    std::unique_ptr<Batch> fresh();  // a spare batch, or a new one
    void seal();                     // the filling batch goes to the workers
    // Under the lock: formats the oldest waiting batch here, or waits for one to be written.
    void help_or_wait(std::unique_lock<std::mutex>& lk);
    // Formats b; then writes it and every formatted batch after it in order, unless
    // another thread is writing (it takes them) or an earlier batch is not formatted yet.
    void process(std::unique_ptr<Batch> b, edge::mrt::BgpdumpFormatter& f);
    void format(Batch& b, edge::mrt::BgpdumpFormatter& f);
    void work(size_t w);
    void stop();

    Write write_;
    Warn warn_;
    std::deque<Peer> peers_;  // never moves its elements
    std::unique_ptr<Batch> cur_;
    std::mutex mu_;
    std::condition_variable work_cv_, done_cv_;
    std::deque<std::unique_ptr<Batch>> pending_;  // sealed, not yet taken, in input order
    std::map<uint64_t, std::unique_ptr<Batch>> ready_;  // formatted, not written, by seq
    bool writing_ = false;
    std::vector<std::unique_ptr<Batch>> spare_;
    uint64_t next_seq_ = 0, written_ = 0;  // batches sealed; batches written (the next turn)
    size_t in_flight_ = 0;                 // sealed, not yet written
    std::vector<edge::mrt::BgpdumpFormatter> fmts_;  // [0]: this thread's
    std::vector<std::thread> threads_;
    std::exception_ptr error_;  // the first failure: later batches are dropped, not written
    bool stopping_ = false;
    size_t max_in_flight_;
};

}  // namespace bgp_announce
