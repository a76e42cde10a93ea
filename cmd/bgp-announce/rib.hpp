// The speaker's RIB: prefix -> entry in one flat open-addressing table (linear probing,
// backward-shift deletion, load <= 1/2). A million routes cost about one cache miss per
// lookup instead of the two or three of std::unordered_map's nodes, which was most of the
// speaker's CPU when a script streams a full table in.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "net/addr.hpp"

namespace bgp_announce {

template <typename V>
class PrefixMap {
public:
    PrefixMap() { reset(16); }

    size_t size() const { return size_; }

    // The entry for `p`, default-constructed on first use.
    V& operator[](const edge::net::Prefix& p) {
        if ((size_ + 1) * 2 > slots_.size()) grow();
        uint64_t h = hash_of(p);
        for (size_t i = h & mask_;; i = (i + 1) & mask_) {
            Slot& s = slots_[i];
            if (!s.used) {
                s.used = true;
                s.hash = h;
                s.key = p;
                s.value = V{};
                ++size_;
                return s.value;
            }
            if (s.hash == h && s.key == p) return s.value;
        }
    }

    V* find(const edge::net::Prefix& p) {
        size_t i = index_of(p);
        return i == npos ? nullptr : &slots_[i].value;
    }

    bool erase(const edge::net::Prefix& p) {
        size_t i = index_of(p);
        if (i == npos) return false;
        // Backward shift: pull later members of the probe run into the hole, so lookups
        // never need tombstones.
        for (size_t j = (i + 1) & mask_; slots_[j].used; j = (j + 1) & mask_) {
            size_t home = slots_[j].hash & mask_;
            bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
            if (stays) continue;
            slots_[i] = std::move(slots_[j]);
            i = j;
        }
        slots_[i].used = false;
        slots_[i].value = V{};
        --size_;
        return true;
    }

    // f(const Prefix&, V&) for every entry, in table order. No inserts or erases inside.
    template <typename F>
    void for_each(F&& f) {
        for (auto& s : slots_)
            if (s.used) f(static_cast<const edge::net::Prefix&>(s.key), s.value);
    }
    template <typename F>
    void for_each(F&& f) const {
        for (auto& s : slots_)
            if (s.used) f(s.key, s.value);
    }

private:
    static constexpr size_t npos = ~size_t{0};
    struct Slot {
        edge::net::Prefix key;
        uint64_t hash = 0;
        V value{};
        bool used = false;
    };

    static uint64_t hash_of(const edge::net::Prefix& p) {
        return edge::net::IpAddrHash{}(p.addr()) ^ (uint64_t(p.length()) * 0x9e3779b97f4a7c15ull);
    }
    size_t index_of(const edge::net::Prefix& p) const {
        uint64_t h = hash_of(p);
        for (size_t i = h & mask_;; i = (i + 1) & mask_) {
            const Slot& s = slots_[i];
            if (!s.used) return npos;
            if (s.hash == h && s.key == p) return i;
        }
    }
    void reset(size_t n) {
        slots_.clear();
        slots_.resize(n);
        mask_ = n - 1;
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
            slots_[i] = std::move(s);
            ++size_;
        }
    }

    std::vector<Slot> slots_;
    size_t mask_ = 0, size_ = 0;
};

}  // namespace bgp_announce
