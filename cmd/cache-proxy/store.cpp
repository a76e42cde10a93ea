#include "store.hpp"

#include "disk.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

namespace cache_proxy {

Body::~Body() {
    if (map) ::munmap(const_cast<char*>(map), size);
    if (fd >= 0) ::close(fd);
}

std::shared_ptr<const Body> make_body(std::string&& bytes, size_t file_min) {
    auto b = std::make_shared<Body>();
    b->size = bytes.size();
    if (file_min && bytes.size() >= file_min) {
        int fd = memfd_create("cache-proxy-body", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd >= 0) {
            size_t off = 0;
            while (off < bytes.size()) {
                ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
                if (n <= 0) break;
                off += static_cast<size_t>(n);
            }
            if (off == bytes.size() && fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0) {
                b->fd = fd;
                // Sealed against writes and shrinking: a read-only view stays valid.
                void* m = ::mmap(nullptr, bytes.size(), PROT_READ, MAP_SHARED, fd, 0);
                if (m != MAP_FAILED) b->map = static_cast<const char*>(m);
                return b;
            }
            ::close(fd);  // fall back to memory
        }
    }
    b->data = std::move(bytes);
    return b;
}

Store::Store(uint64_t limit) : limit_(limit), sketch_(new std::atomic<uint8_t>[k_sketch]) {
    for (size_t i = 0; i < k_sketch; i++) sketch_[i].store(0, std::memory_order_relaxed);
}

namespace {
size_t mix(size_t h, unsigned i) {
    uint64_t x = h + 0x9e3779b97f4a7c15ULL * (i + 1);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return static_cast<size_t>(x ^ (x >> 31));
}
}  // namespace

uint32_t Store::estimate(size_t h) const {
    uint32_t m = 255;
    for (unsigned i = 0; i < 4; i++) m = std::min<uint32_t>(m, sketch_[mix(h, i) % k_sketch].load(std::memory_order_relaxed));
    return m;
}

void Store::touch(size_t h) {
    for (unsigned i = 0; i < 4; i++) {
        auto& c = sketch_[mix(h, i) % k_sketch];
        uint8_t v = c.load(std::memory_order_relaxed);
        if (v < 15) c.store(static_cast<uint8_t>(v + 1), std::memory_order_relaxed);
    }
    // Ageing: halve every counter after 10 x the sketch size of additions.
    if (sketch_adds_.fetch_add(1, std::memory_order_relaxed) % (k_sketch * 10) == k_sketch * 10 - 1) {
        for (size_t i = 0; i < k_sketch; i++)
            sketch_[i].store(static_cast<uint8_t>(sketch_[i].load(std::memory_order_relaxed) / 2), std::memory_order_relaxed);
    }
}

void Store::unlink(Shard& s, Entry* e) {
    if (e->prev) e->prev->next = e->next;
    else s.head = e->next;
    if (e->next) e->next->prev = e->prev;
    else s.tail = e->prev;
    e->prev = e->next = nullptr;
}

void Store::push_front(Shard& s, Entry* e) {
    e->prev = nullptr;
    e->next = s.head;
    if (s.head) s.head->prev = e;
    s.head = e;
    if (!s.tail) s.tail = e;
}

void Store::erase(Shard& s, Entry* e) {
    unlink(s, e);
    bytes_.fetch_sub(e->bytes, std::memory_order_relaxed);
    objects_.fetch_sub(e->variants.size(), std::memory_order_relaxed);
    s.map.erase(e->key);  // frees e
}

static bool vary_matches(const Object& o, const FieldLookup& fields) {
    for (auto& [name, value] : o.vary)
        if (fields(name) != value) return false;
    return true;
}

ObjectPtr Store::lookup(const std::string& key, const FieldLookup& fields) {
    size_t h = std::hash<std::string>{}(key);
    touch(h);
    Shard& s = shard(h);
    {
        std::lock_guard lk(s.mu);
        auto it = s.map.find(key);
        if (it != s.map.end()) {
            Entry* e = it->second.get();
            for (auto& v : e->variants) {
                if (vary_matches(*v, fields)) {
                    if (s.head != e) {
                        unlink(s, e);
                        push_front(s, e);
                    }
                    return v;
                }
            }
        }
    }
    if (!disk_) return nullptr;
    ObjectPtr o = disk_->find(key, fields);  // the disk tier: read back, promoted to memory
    if (o) insert(key, o);
    return o;
}

bool Store::insert(const std::string& key, ObjectPtr obj) {
    size_t h = std::hash<std::string>{}(key);
    size_t charge = obj->charge();
    uint64_t limit = limit_.load(std::memory_order_relaxed);
    if (charge > limit) {
        rejected_.fetch_add(1, std::memory_order_relaxed);
        return false;
    }
    if (bytes_.load(std::memory_order_relaxed) + charge > limit) {
        // Admission: compare with the LRU victim of this shard (TinyLFU).
        Shard& s = shard(h);
        {
            std::lock_guard lk(s.mu);
            if (s.tail && s.tail->key != key && s.map.find(key) == s.map.end()) {
                size_t vh = std::hash<std::string>{}(s.tail->key);
                if (estimate(h) < estimate(vh)) {
                    rejected_.fetch_add(1, std::memory_order_relaxed);
                    return false;
                }
            }
        }
        make_room(h % k_shards, h, charge);
    }
    Shard& s = shard(h);
    std::lock_guard lk(s.mu);
    auto& slot = s.map[key];
    if (!slot) {
        slot = std::make_unique<Entry>();
        slot->key = key;
        push_front(s, slot.get());
    } else if (s.head != slot.get()) {
        unlink(s, slot.get());
        push_front(s, slot.get());
    }
    Entry* e = slot.get();
    // Replace the variant with the same Vary values (or a variant selected by other fields).
    bool replaced = false;
    for (auto& v : e->variants) {
        if (v->vary == obj->vary) {
            e->bytes -= v->charge();
            bytes_.fetch_sub(v->charge(), std::memory_order_relaxed);
            v = obj;
            replaced = true;
            break;
        }
    }
    if (!replaced) {
        if (e->variants.size() >= 16) {  // bound variants per key
            e->bytes -= e->variants.front()->charge();
            bytes_.fetch_sub(e->variants.front()->charge(), std::memory_order_relaxed);
            e->variants.erase(e->variants.begin());
            objects_.fetch_sub(1, std::memory_order_relaxed);
        }
        e->variants.push_back(obj);
        objects_.fetch_add(1, std::memory_order_relaxed);
    }
    e->bytes += charge;
    bytes_.fetch_add(charge, std::memory_order_relaxed);
    return true;
}

void Store::make_room(size_t start, size_t incoming, size_t need) {
    uint64_t limit = limit_.load(std::memory_order_relaxed);
    for (size_t round = 0; round < k_shards * 4 && bytes_.load(std::memory_order_relaxed) + need > limit; round++) {
        Shard& s = shards_[(start + round) % k_shards];
        std::lock_guard lk(s.mu);
        // Evict from this shard's tail until under the limit or the shard is empty of others.
        while (s.tail && bytes_.load(std::memory_order_relaxed) + need > limit) {
            Entry* victim = s.tail;
            (void)incoming;
            if (disk_)
                for (auto& v : victim->variants) disk_->spill(victim->key, v);  // queued, written by the disk thread
            erase(s, victim);
            evictions_.fetch_add(1, std::memory_order_relaxed);
        }
    }
}

bool Store::remove(const std::string& key) {
    bool on_disk = disk_ && disk_->remove(key);
    Shard& s = shard(std::hash<std::string>{}(key));
    std::lock_guard lk(s.mu);
    auto it = s.map.find(key);
    if (it == s.map.end()) return on_disk;
    erase(s, it->second.get());
    return true;
}

size_t Store::remove_prefix(std::string_view prefix) {
    std::vector<std::string> gone;
    if (disk_) gone = disk_->remove_prefix(prefix);
    for (auto& s : shards_) {
        std::lock_guard lk(s.mu);
        std::vector<Entry*> doomed;
        for (auto& [k, e] : s.map)
            if (std::string_view(k).substr(0, prefix.size()) == prefix) doomed.push_back(e.get());
        for (Entry* e : doomed) {
            gone.push_back(e->key);
            erase(s, e);
        }
    }
    std::sort(gone.begin(), gone.end());
    return static_cast<size_t>(std::unique(gone.begin(), gone.end()) - gone.begin());
}

void Store::spill_all() {
    if (!disk_) return;
    for (auto& s : shards_) {
        std::lock_guard lk(s.mu);
        for (Entry* e = s.tail; e; e = e->prev)  // least recent first: the newest end up most recent on disk
            for (auto& v : e->variants) disk_->spill(e->key, v);
    }
}

bool Store::claim(const std::string& key, Waiter w) {
    Shard& s = shard(std::hash<std::string>{}(key));
    std::lock_guard lk(s.mu);
    auto [it, inserted] = s.pending.try_emplace(key);
    if (inserted) return true;
    it->second.push_back(w);
    return false;
}

std::vector<Waiter> Store::release(const std::string& key) {
    Shard& s = shard(std::hash<std::string>{}(key));
    std::lock_guard lk(s.mu);
    auto it = s.pending.find(key);
    if (it == s.pending.end()) return {};
    auto w = std::move(it->second);
    s.pending.erase(it);
    return w;
}

}  // namespace cache_proxy
