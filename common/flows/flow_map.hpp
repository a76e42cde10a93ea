// A hash map from flow key to V for per-flow accounting over big captures.
// The caller passes the flow hash it already computed (the SipHash that also picks the
// Maglev slot), so each packet is hashed once. Open addressing, linear probing.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

#include "edge/flow.h"

namespace edge::flows {

template <typename V>
class FlowMap {
public:
    struct Slot {
        edge_flow_key key;
        uint64_t hash;
        V value;
        bool used;
    };

    explicit FlowMap(size_t initial = 1024) { reset(initial); }

    // The value for `key`, default-constructed on first sight; `inserted` tells which.
    V& get(const edge_flow_key& key, uint64_t hash, bool& inserted) {
        if ((size_ + 1) * 2 > slots_.size()) grow();
        size_t i = hash & mask_;
        while (true) {
            Slot& s = slots_[i];
            if (!s.used) {
                s.used = true;
                s.key = key;
                s.hash = hash;
                s.value = V{};
                size_++;
                inserted = true;
                return s.value;
            }
            if (s.hash == hash && std::memcmp(&s.key, &key, sizeof key) == 0) {
                inserted = false;
                return s.value;
            }
            i = (i + 1) & mask_;
        }
    }

    size_t size() const { return size_; }

    // Start loading the slot a later get() with this hash will touch. Callers that
    // batch packets hide the cache miss that otherwise dominates big captures.
    void prefetch(uint64_t hash) const { __builtin_prefetch(&slots_[hash & mask_]); }

    template <typename F>
    void for_each(F&& f) const {
        for (auto& s : slots_)
            if (s.used) f(s.key, s.hash, s.value);
    }

private:
    void reset(size_t cap) {
        size_t c = 16;
        while (c < cap) c <<= 1;
        slots_.assign(c, Slot{});
        mask_ = c - 1;
        size_ = 0;
    }
    void grow() {
        std::vector<Slot> old;
        old.swap(slots_);
        reset(old.size() * 2);
        for (auto& s : old) {
            if (!s.used) continue;
            size_t i = s.hash & mask_;
            while (slots_[i].used) i = (i + 1) & mask_;
            slots_[i] = s;
            size_++;
        }
    }
    std::vector<Slot> slots_;
    size_t mask_ = 0;
    size_t size_ = 0;
};

}  // namespace edge::flows
