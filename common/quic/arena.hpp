// Memory for many objects that live exactly as long as their owner (a connection
// tracker's connections, an index's entries): carved in order from large anonymous
// mappings, released together when the arena goes (no per-object malloc, no lock shared
// with other threads), and faulted in a MiB at a time ahead of use (a decode of a big
// capture touches hundreds of MB of fresh memory; its page faults were a quarter of the
// run).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace edge::quic {

class Arena {
public:
    Arena() = default;
    ~Arena();
    Arena(const Arena&) = delete;
    Arena& operator=(const Arena&) = delete;
    Arena(Arena&& o) noexcept;
    Arena& operator=(Arena&& o) noexcept;

    // Uninitialised memory for `bytes` bytes aligned to `align` (a power of two, at most
    // 4096); throws std::bad_alloc when the system has none.
    void* allocate(std::size_t bytes, std::size_t align);
    // The next mapping holds at least `bytes` more (a hint: sized from the input once
    // instead of doubling up to it).
    void reserve(std::size_t bytes);
    std::size_t mapped_bytes() const noexcept;
    std::size_t blocks() const noexcept { return blocks_.size(); }

    static constexpr std::size_t kHugePage = std::size_t{2} << 20;
    static constexpr int kMadvPopulateWrite = 23;  // MADV_POPULATE_WRITE, missing from older headers

private:
    struct Block {
        void* base;
        std::size_t size;
    };
    void add_block(std::size_t at_least);
    void release() noexcept;
    std::vector<Block> blocks_;
    std::uint8_t* next_ = nullptr;
    std::uint8_t* end_ = nullptr;
    std::uint8_t* populated_ = nullptr;  // [block start, populated_) is faulted in
    static constexpr std::size_t kPopulateStep = std::size_t{1} << 20;
    std::size_t grow_ = std::size_t{64} << 10;  // the next block's size: doubles up to kMaxBlock
    static constexpr std::size_t kMaxBlock = std::size_t{64} << 20;
};

// Zero-filled memory straight from the kernel (a fresh anonymous mapping: nothing to
// clear), 2 MiB-aligned and advised for transparent huge pages when it is kHugeFrom or
// more: for big randomly probed tables, where with 4 KiB pages nearly every probe also
// misses the TLB. Smaller tables (within the TLB's reach) stay on 4 KiB pages: on VMs
// that hand freed memory back to the host (virtio-balloon free page reporting) a fresh
// huge page sometimes costs 10-20 ms to fault in, the 512 small pages ~1 ms.
class ZeroedPages {
public:
    static constexpr std::size_t kHugeFrom = std::size_t{32} << 20;
    ZeroedPages() = default;
    explicit ZeroedPages(std::size_t bytes);  // throws std::bad_alloc
    ~ZeroedPages();
    ZeroedPages(const ZeroedPages&) = delete;
    ZeroedPages& operator=(const ZeroedPages&) = delete;
    ZeroedPages(ZeroedPages&& o) noexcept { swap(o); }
    ZeroedPages& operator=(ZeroedPages&& o) noexcept {
        swap(o);
        return *this;
    }
    void swap(ZeroedPages& o) noexcept {
        std::swap(base_, o.base_);
        std::swap(size_, o.size_);
    }
    void* data() const noexcept { return base_; }
    std::size_t size() const noexcept { return size_; }
    // Faults every page in for writing now, in one system call (ignored where the kernel
    // cannot): a table read before it is written otherwise maps the shared zero page,
    // and its first write per page then copies it and flushes the other CPUs' TLBs.
    void populate() noexcept;

private:
    void* base_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace edge::quic
