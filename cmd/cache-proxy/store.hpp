// The memory tier: a sharded map of stored responses with a byte limit, LRU eviction
// guarded by a TinyLFU-style admission filter, Vary variants, and the coalescing table
// (one origin fetch per key; the others wait).
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "http/cache.hpp"

namespace cache_proxy {

// A stored body: in memory, or (large ones) in a sealed memfd that is sent with sendfile:
// zero-copy, and safe because the kernel holds the pages, not a user-space buffer.
struct Body {
    std::string data;
    int fd = -1;
    const char* map = nullptr;  // the sealed memfd mapped read-only (TLS encrypts from it), or null
    size_t size = 0;
    Body() = default;
    Body(const Body&) = delete;
    Body& operator=(const Body&) = delete;
    ~Body();
};
// Keeps `bytes` in memory, or moves them to a sealed memfd when at least `file_min` long.
std::shared_ptr<const Body> make_body(std::string&& bytes, size_t file_min);

// A stored response: immutable once published (a 304 publishes a new Object that shares
// the body). The header block is ready to send.
struct Object {
    std::string head;         // "HTTP/1.1 200 OK\r\n" + header lines + "Content-Length: N\r\n"
    size_t lines_begin = 0;   // first header line
    size_t lines_end = 0;     // end of header lines before our Content-Length
    std::shared_ptr<const Body> body;
    edge::http::ResponseFacts facts;
    int status = 200;
    std::string etag, last_modified;
    std::vector<std::pair<std::string, std::string>> vary;  // lowercase field name, request value
    size_t charge() const { return head.size() + (body ? body->size : 0) + 256; }
};
using ObjectPtr = std::shared_ptr<const Object>;

// A request's field value by (lowercase) name; "" when absent.
using FieldLookup = std::function<std::string_view(std::string_view)>;

struct Waiter {
    unsigned worker;
    uint64_t conn;
};

class DiskTier;

class Store {
public:
    explicit Store(uint64_t limit);
    // Evicted objects go to `d` and memory misses look there (nullptr: memory only).
    void set_disk(DiskTier* d) { disk_ = d; }
    // Hand every object to the disk tier (at shutdown, so that a restart finds them).
    void spill_all();
    void set_limit(uint64_t limit) { limit_.store(limit); }

    ObjectPtr lookup(const std::string& key, const FieldLookup& fields);
    // Stores (replacing the variant with the same Vary values). False if not admitted.
    bool insert(const std::string& key, ObjectPtr obj);
    bool remove(const std::string& key);
    size_t remove_prefix(std::string_view prefix);

    // Coalescing: true if the caller leads (fetches); false if it was queued behind a leader.
    bool claim(const std::string& key, Waiter w);
    std::vector<Waiter> release(const std::string& key);

    uint64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }
    uint64_t objects() const { return objects_.load(std::memory_order_relaxed); }
    uint64_t evictions() const { return evictions_.load(std::memory_order_relaxed); }
    uint64_t rejected() const { return rejected_.load(std::memory_order_relaxed); }

private:
    struct Entry {
        std::string key;
        std::vector<ObjectPtr> variants;
        size_t bytes = 0;
        Entry *prev = nullptr, *next = nullptr;  // LRU: head = most recent
    };
    struct Shard {
        std::mutex mu;
        std::unordered_map<std::string, std::unique_ptr<Entry>> map;
        Entry* head = nullptr;
        Entry* tail = nullptr;
        std::unordered_map<std::string, std::vector<Waiter>> pending;
    };
    static constexpr size_t k_shards = 64;
    Shard& shard(size_t h) { return shards_[h % k_shards]; }
    void unlink(Shard& s, Entry* e);
    void push_front(Shard& s, Entry* e);
    void erase(Shard& s, Entry* e);  // s locked
    void make_room(size_t start_shard, size_t incoming_hash, size_t need);

    // Count-min sketch of key popularity (4-bit-ish counters, halved periodically):
    // a new object displaces an LRU victim only if it has been asked for at least as often.
    uint32_t estimate(size_t h) const;
    void touch(size_t h);

    Shard shards_[k_shards];
    DiskTier* disk_ = nullptr;
    std::atomic<uint64_t> limit_;
    std::atomic<uint64_t> bytes_{0}, objects_{0}, evictions_{0}, rejected_{0};
    static constexpr size_t k_sketch = 1 << 16;
    std::unique_ptr<std::atomic<uint8_t>[]> sketch_;
    std::atomic<uint64_t> sketch_adds_{0};
};

}  // namespace cache_proxy
