// The optional disk tier: objects evicted from the memory tier are written (by one background
// thread, never by a worker) to files in a directory, kept in LRU order under a byte limit,
// and found again on a memory miss: the file is opened and its body is sent with sendfile
// straight from it. The directory is scanned at start, so the tier survives a restart.
//
// One file per stored variant, named after a hash of the key and the Vary values:
//   body bytes | metadata | u64 body_size | u64 meta_size | "CPDISK01"
// written to NAME.tmp and renamed, so a crash leaves no half file under a real name.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <list>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "store.hpp"

namespace cache_proxy {

class DiskTier {
public:
    // Creates `dir` if needed and indexes what it holds. Throws edge::Failure when unusable.
    DiskTier(std::string dir, uint64_t limit);
    ~DiskTier();
    DiskTier(const DiskTier&) = delete;
    DiskTier& operator=(const DiskTier&) = delete;

    // Queue an evicted object for writing (dropped when the writer is far behind).
    void spill(const std::string& key, const ObjectPtr& o);
    // The stored variant of `key` whose Vary values match, read back, or nullptr.
    ObjectPtr find(const std::string& key, const FieldLookup& fields);
    bool remove(const std::string& key);
    std::vector<std::string> remove_prefix(std::string_view prefix);  // the keys removed
    // Wait until the queue is written (tests, shutdown).
    void flush();

    uint64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }
    uint64_t objects() const { return objects_.load(std::memory_order_relaxed); }
    uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }
    uint64_t writes() const { return writes_.load(std::memory_order_relaxed); }
    uint64_t evictions() const { return evictions_.load(std::memory_order_relaxed); }
    uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
    const std::string& dir() const { return dir_; }

private:
    struct Item {
        std::string key;
        std::string file;  // name inside dir_
        std::vector<std::pair<std::string, std::string>> vary;
        uint64_t bytes = 0;
        int64_t response_time = 0;
    };
    using Lru = std::list<Item>;  // front = most recent
    void writer();
    bool write_file(const std::string& key, const Object& o, Item& item);
    void add_locked(Item item);  // mu_ held: index it, evict beyond the limit
    void drop_locked(Lru::iterator it);
    void scan();

    std::string dir_;
    uint64_t limit_;
    std::mutex mu_;
    Lru lru_;
    std::unordered_map<std::string, std::vector<Lru::iterator>> index_;  // key -> variants
    std::unordered_map<std::string, Lru::iterator> by_file_;
    std::deque<std::pair<std::string, ObjectPtr>> queue_;
    uint64_t queued_bytes_ = 0;
    bool stop_ = false, busy_ = false;
    uint64_t purges_ = 0;  // a write that overlapped a remove is discarded
    std::condition_variable cv_, idle_cv_;
    std::thread thread_;
    std::atomic<uint64_t> bytes_{0}, objects_{0}, hits_{0}, writes_{0}, evictions_{0}, dropped_{0};
};

}  // namespace cache_proxy
