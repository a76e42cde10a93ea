#include "quic/arena.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <new>
#include <utility>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EDGE_QUIC_ARENA_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define EDGE_QUIC_ARENA_ASAN 1
#endif
#ifdef EDGE_QUIC_ARENA_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/lsan_interface.h>
#define ARENA_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define ARENA_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
// Objects in a block point to heap memory (a connection's strings and lists): the leak
// checker must scan the block like the heap, or all of that looks leaked.
#define ARENA_ROOT(p, n) __lsan_register_root_region(p, n)
#define ARENA_UNROOT(p, n) __lsan_unregister_root_region(p, n)
#else
#define ARENA_POISON(p, n) ((void)(p), (void)(n))
#define ARENA_UNPOISON(p, n) ((void)(p), (void)(n))
#define ARENA_ROOT(p, n) ((void)(p), (void)(n))
#define ARENA_UNROOT(p, n) ((void)(p), (void)(n))
#endif

namespace edge::quic {

Arena::~Arena() { release(); }

Arena::Arena(Arena&& o) noexcept { *this = std::move(o); }

Arena& Arena::operator=(Arena&& o) noexcept {
    if (this == &o) return *this;
    release();
    blocks_ = std::move(o.blocks_);
    next_ = std::exchange(o.next_, nullptr);
    end_ = std::exchange(o.end_, nullptr);
    populated_ = std::exchange(o.populated_, nullptr);
    grow_ = o.grow_;
    o.blocks_.clear();
    return *this;
}

void Arena::release() noexcept {
    for (const Block& b : blocks_) {
        ARENA_UNROOT(b.base, b.size);
        ARENA_UNPOISON(b.base, b.size);
        ::munmap(b.base, b.size);
    }
    blocks_.clear();
    next_ = end_ = populated_ = nullptr;
}

std::size_t Arena::mapped_bytes() const noexcept {
    std::size_t n = 0;
    for (const Block& b : blocks_) n += b.size;
    return n;
}

void Arena::reserve(std::size_t bytes) {
    if (static_cast<std::size_t>(end_ - next_) >= bytes) return;
    if (bytes > grow_) grow_ = bytes;
}

namespace {

// An anonymous mapping of `size` bytes; 2 MiB-aligned and advised for huge pages when
// `huge` (size a multiple of 2 MiB).
void* map_block(std::size_t size, bool huge) {
    // Huge blocks: map 2 MiB more and cut the ends off, for a 2 MiB-aligned block (a
    // huge page needs an aligned 2 MiB range).
    const std::size_t map = huge ? size + Arena::kHugePage : size;
    void* p = ::mmap(nullptr, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    auto* base = static_cast<std::uint8_t*>(p);
    if (huge) {
        const auto addr = reinterpret_cast<std::uintptr_t>(base);
        const std::size_t head = ((addr + Arena::kHugePage - 1) & ~(Arena::kHugePage - 1)) - addr;
        if (head) ::munmap(base, head);
        if (Arena::kHugePage - head) ::munmap(base + head + size, Arena::kHugePage - head);
        base += head;
        // Advice only: where the kernel has no THP (or says never), small pages it is.
        (void)::madvise(base, size, MADV_HUGEPAGE);
    }
    return base;
}

}  // namespace

ZeroedPages::ZeroedPages(std::size_t bytes) {
    if (bytes == 0) return;
    const bool huge = bytes >= kHugeFrom;
    const std::size_t round = huge ? Arena::kHugePage : 4096;
    size_ = (bytes + round - 1) & ~(round - 1);
    base_ = map_block(size_, huge);
}

void ZeroedPages::populate() noexcept {
    if (base_) (void)::madvise(base_, size_, Arena::kMadvPopulateWrite);
}

ZeroedPages::~ZeroedPages() {
    if (base_) ::munmap(base_, size_);
}

void Arena::add_block(std::size_t at_least) {
    std::size_t size = grow_ > at_least ? grow_ : at_least;
    size = (size + 4095) & ~std::size_t{4095};
    // Small pages: on this project's VMs a huge page of fresh memory costs more to fault
    // in than the 512 small ones it replaces (measured; see populate below instead).
    auto* base = static_cast<std::uint8_t*>(map_block(size, false));
    try {
        blocks_.push_back({base, size});
    } catch (...) {
        ::munmap(base, size);
        throw;
    }
    ARENA_POISON(base, size);
    ARENA_ROOT(base, size);
    next_ = populated_ = base;
    end_ = base + size;
    if (grow_ < kMaxBlock) grow_ *= 2;
}

void* Arena::allocate(std::size_t bytes, std::size_t align) {
    if (bytes == 0) bytes = 1;
    auto aligned = [&] {
        return reinterpret_cast<std::uint8_t*>((reinterpret_cast<std::uintptr_t>(next_) + align - 1) & ~(align - 1));
    };
    std::uint8_t* p = next_ ? aligned() : nullptr;
    if (!p || p > end_ || static_cast<std::size_t>(end_ - p) < bytes) {
        add_block(bytes + align);
        p = aligned();
    }
    next_ = p + bytes;
    // The memory is about to be written: fault it in kPopulateStep at a time with one
    // system call (MADV_POPULATE_WRITE, Linux 5.14) instead of one page fault per 4 KiB
    // (~25% less kernel time on a big capture). Older kernels refuse: faults it is.
    while (next_ > populated_) {
        const std::size_t n = std::min<std::size_t>(kPopulateStep, static_cast<std::size_t>(end_ - populated_));
        (void)::madvise(populated_, n, kMadvPopulateWrite);
        populated_ += n;
    }
    ARENA_UNPOISON(p, bytes);
    return p;
}

}  // namespace edge::quic
