#include "pcap/file_reader.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <system_error>

#include <fmt/format.h>

#include "cli/error.hpp"

namespace edge::pcap {

namespace {
constexpr uint32_t max_caplen = 262144;             // libpcap's limit for these link types
constexpr uint32_t max_block = 16u << 20;           // libpcap's largest pcapng block
constexpr uint32_t shb_type = 0x0A0D0D0A, bom = 0x1A2B3C4D;
constexpr uint64_t map_chunk = 4u << 20;            // given back at a time
constexpr uint64_t prefetch_min = 8u << 20;         // smaller files are not worth a thread
constexpr uint64_t prefetch_step = 1u << 20, prefetch_ahead = 32u << 20;
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
}  // namespace

FileReader::FileReader(const std::string& path) : path_(path), name_(path == "-" ? "<stdin>" : path) {
    if (path == "-") {
        fd_ = STDIN_FILENO;
    } else {
        struct stat st{};
        if (stat(path.c_str(), &st) != 0) usage_error("cannot open capture {}: {}", path, std::strerror(errno));
        if (S_ISDIR(st.st_mode)) usage_error("cannot open capture {}: is a directory", path);
        if (S_ISREG(st.st_mode) && st.st_size == 0) usage_error("cannot read capture {}: the file is empty", path);
        fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd_ < 0) usage_error("cannot open capture {}: {}", path, std::strerror(errno));
        own_fd_ = true;
        if (S_ISREG(st.st_mode)) {
            size_ = uint64_t(st.st_size);
            void* m = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
            if (m != MAP_FAILED) {
                map_ = static_cast<const uint8_t*>(m);
                madvise(m, size_, MADV_SEQUENTIAL);
                close(fd_);
                fd_ = -1, own_fd_ = false;
            }
        }
    }
    try {
        open_header();
    } catch (...) {  // the destructor does not run for a constructor that throws
        if (map_) munmap(const_cast<uint8_t*>(map_), size_);
        if (own_fd_) close(fd_);
        throw;
    }
    start_prefetch();
}

FileReader::~FileReader() {
    stop_prefetch();
    if (map_) munmap(const_cast<uint8_t*>(map_), size_);
    if (own_fd_ && fd_ >= 0) close(fd_);
}

// Pages the mapping in, 1 MiB at a time, up to 32 MiB ahead of the read position (pages
// behind it are given back by avail()); it stops at the end, when told to, or when the
// kernel has no MADV_POPULATE_READ (before 5.14): the reader then just takes the faults.
void FileReader::start_prefetch() {
    if (!map_ || size_ <= prefetch_min) return;
    try {
        prefetch_ = std::thread([this] {
            uint64_t done = 0;
            while (done < size_ && !stop_prefetch_.load(std::memory_order_relaxed)) {
                uint64_t at = read_pos_.load(std::memory_order_relaxed);
                done = std::max(done, at & ~(prefetch_step - 1));  // the reader got ahead: skip to it
                if (done >= at + prefetch_ahead) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(1));
                    continue;
                }
                uint64_t n = std::min(prefetch_step, size_ - done);
                if (madvise(const_cast<uint8_t*>(map_) + done, n, MADV_POPULATE_READ) != 0 && errno != EINTR) return;
                done += n;
            }
        });
    } catch (const std::system_error&) {
        // no thread: no prefetching
    }
}

void FileReader::stop_prefetch() {
    if (!prefetch_.joinable()) return;
    stop_prefetch_.store(true, std::memory_order_relaxed);
    prefetch_.join();
}

size_t FileReader::avail(size_t n) {
    if (map_) {
        // Give back what was read long ago so resident memory stays small on big captures
        // (the pages stay in the page cache).
        if (pos_ > released_ + 4 * map_chunk) {
            madvise(const_cast<uint8_t*>(map_) + released_, map_chunk, MADV_DONTNEED);
            released_ += map_chunk;
            read_pos_.store(pos_, std::memory_order_relaxed);
        }
        return size_t(std::min<uint64_t>(size_ - pos_, n));
    }
    if (end_ - pos_ >= n || eof_) return std::min(end_ - size_t(pos_), n);
    if (pos_) {  // keep the unread rest at the start
        std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
        end_ -= pos_;
        pos_ = 0;
    }
    if (buf_.size() < std::max<size_t>(n, 1u << 18)) buf_.resize(std::max<size_t>(n, 1u << 18));
    while (end_ < n && !eof_) {
        ssize_t k = read(fd_, buf_.data() + end_, buf_.size() - end_);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            error_ = fmt::format("error reading dump file: {}", std::strerror(errno));
            eof_ = true;
            break;
        }
        if (k == 0) eof_ = true;
        end_ += size_t(k);
    }
    return std::min(end_ - size_t(pos_), n);
}

void FileReader::advance(size_t n) { pos_ += n; }

uint16_t FileReader::u16(const uint8_t* p) const {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return swapped_ ? __builtin_bswap16(v) : v;
}
uint32_t FileReader::u32(const uint8_t* p) const {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return swapped_ ? __builtin_bswap32(v) : v;
}

bool FileReader::fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
    return false;
}

void FileReader::open_header() {
    size_t got = avail(24);
    if (!error_.empty()) usage_error("cannot read capture {}: {}", name_, error_);
    auto bad = [&] { usage_error("cannot read capture {}: not a pcap or pcapng capture (unknown file format)", name_); };
    auto cut = [&] { usage_error("cannot read capture {}: not a complete capture: the file header is truncated", name_); };
    if (got < 4) cut();
    uint32_t magic;
    std::memcpy(&magic, at(), 4);
    if (magic == shb_type) {
        ng_ = true;
        if (!read_shb(true)) {
            if (error_ == "cut") cut();
            usage_error("cannot read capture {}: {}", name_, error_);
        }
        // The link type comes from the first interface description, which libpcap reads
        // at open: look ahead for it (packets cannot come before it).
        for (size_t off = 0;;) {
            if (avail(off + 8) < off + 8) usage_error("cannot read capture {}: the capture has no interface description block", name_);
            uint32_t type = u32(at() + off), len = u32(at() + off + 4);
            if (len < 12 || len % 4 || len > max_block) usage_error("cannot read capture {}: corrupt pcapng block length {}", name_, len);
            if (avail(off + len) < off + len) cut();
            if (type == 1) {
                if (len < 20) usage_error("cannot read capture {}: interface description block too short", name_);
                dlt_ = u16(at() + off + 8);
                break;
            }
            if (type == shb_type || type == 2 || type == 3 || type == 6)
                usage_error("cannot read capture {}: the capture has no interface description block", name_);
            off += len;
        }
    } else {
        switch (magic) {
        case 0xa1b2c3d4: break;
        case 0xa1b23c4d: nanos_ = true; break;
        case 0xd4c3b2a1: swapped_ = true; break;
        case 0x4d3cb2a1: swapped_ = nanos_ = true; break;
        default: bad();
        }
        if (got < 24) cut();
        snaplen_ = u32(at() + 16);
        dlt_ = int(u32(at() + 20) & 0x03FFFFFF);
        advance(24);
    }
    link_ = net::link_from_dlt(dlt_);
}

// The SHB at pos_: sets the byte order and forgets the interfaces of the last section.
bool FileReader::read_shb(bool first) {
    size_t got = avail(12);
    if (got < 12) return fail(first ? "cut" : fmt::format("truncated pcapng dump file; tried to read 12 bytes, only got {}", got));
    uint32_t order;
    std::memcpy(&order, at() + 8, 4);
    if (order == bom) swapped_ = false;
    else if (order == __builtin_bswap32(bom)) swapped_ = true;
    else return fail(first ? "not a pcap or pcapng capture (unknown file format)" : "pcapng section header with an unknown byte-order magic");
    uint32_t len = u32(at() + 4);
    if (len < 28 || len % 4 || len > max_block) return fail(fmt::format("corrupt pcapng section header block length {}", len));
    got = avail(len);
    if (got < len) return fail(first ? "cut" : fmt::format("truncated pcapng dump file; tried to read {} bytes, only got {}", len, got));
    uint16_t major = u16(at() + 12), minor = u16(at() + 14);
    if (major != 1 || (minor != 0 && minor != 2))  // what libpcap reads
        return fail(fmt::format("unsupported pcapng savefile version {}.{}", major, minor));
    ifaces_.clear();
    advance(len);
    return true;
}

bool FileReader::next(Frame& f) {
    if (!error_.empty()) return false;
    return ng_ ? next_ng(f) : next_classic(f);
}

bool FileReader::next_classic(Frame& f) {
    size_t got = avail(16);
    if (got == 0) return false;
    if (got < 16) return fail(fmt::format("truncated dump file; tried to read 16 header bytes, only got {}", got));
    const uint8_t* h = at();
    uint32_t sec = u32(h), frac = u32(h + 4), caplen = u32(h + 8), len = u32(h + 12);
    if (caplen > max_caplen)
        return fail(fmt::format("invalid packet capture length {}, bigger than maximum of {}", caplen, max_caplen));
    got = avail(16 + size_t(caplen));
    if (got < 16 + size_t(caplen))
        return fail(fmt::format("truncated dump file; tried to read {} captured bytes, only got {}", caplen, got - 16));
    f.data = {at() + 16, caplen};
    f.wire_len = len;
    f.ts_us = int64_t{sec} * 1000000 + (nanos_ ? frac / 1000 : frac);
    advance(16 + size_t(caplen));
    frames_++;
    return true;
}

bool FileReader::next_ng(Frame& f) {
    for (;;) {
        size_t got = avail(8);
        if (got == 0) return false;
        if (got < 8) return fail(fmt::format("truncated pcapng dump file; tried to read 8 bytes, only got {}", got));
        uint32_t type = u32(at());
        if (type == shb_type) {
            if (!read_shb(false)) return false;
            continue;
        }
        uint32_t len = u32(at() + 4);
        if (len % 4) return fail(fmt::format("block in pcapng dump file has a length of {} that is not a multiple of 4", len));
        if (len < 12) return fail(fmt::format("block in pcapng dump file has a length of {} < 12", len));
        if (len > max_block) return fail(fmt::format("pcapng block size {} > maximum {}", len, max_block));
        got = avail(len);
        if (got < len)  // libpcap's words: it counts the bytes after the block header
            return fail(fmt::format("truncated pcapng dump file; tried to read {} bytes, only got {}", len - 8, got - 8));
        if (u32(at() + len - 4) != len) return fail("block total length in header and trailer don't match");
        const uint8_t* b = at() + 8;  // the body
        size_t bl = len - 12;
        switch (type) {
        case 1: {  // interface description
            if (bl < 8) return fail("interface description block too short");
            int lt = u16(b);
            if (lt != dlt_) return fail(fmt::format("an interface has a type {} different from the type of the first interface", lt));
            Iface i;
            i.snaplen = u32(b + 4);
            for (size_t o = 8; o + 4 <= bl;) {  // options
                uint16_t code = u16(b + o), ol = u16(b + o + 2);
                if (code == 0) break;
                if (o + 4 + ol > bl) break;
                const uint8_t* v = b + o + 4;
                if (code == 9 && ol == 1) {  // if_tsresol
                    uint8_t r = v[0];
                    uint64_t u = 1;
                    if (r & 0x80) {
                        if ((r & 0x7f) > 63) return fail("unsupported interface timestamp resolution");
                        u = uint64_t{1} << (r & 0x7f);
                    } else {
                        if (r > 19) return fail("unsupported interface timestamp resolution");
                        for (int k = 0; k < r; ++k) u *= 10;
                    }
                    i.units = u;
                } else if (code == 14 && ol == 8) {  // if_tsoffset
                    uint64_t x;
                    std::memcpy(&x, v, 8);
                    if (swapped_) x = __builtin_bswap64(x);
                    i.offset_s = int64_t(x);
                }
                o += 4 + ((ol + 3u) & ~3u);
            }
            ifaces_.push_back(i);
            advance(len);
            continue;
        }
        case 6:    // enhanced packet
        case 2: {  // packet (obsolete)
            if (bl < 20) return fail("packet block too short");
            uint32_t id = type == 6 ? u32(b) : u16(b);
            uint64_t ts = uint64_t{u32(b + 4)} << 32 | u32(b + 8);
            uint32_t caplen = u32(b + 12), wire = u32(b + 16);
            if (id >= ifaces_.size()) return fail(fmt::format("a packet arrived on interface {}, but there's no Interface Description Block for that interface", id));
            const Iface& i = ifaces_[id];
            uint32_t snap = i.snaplen && i.snaplen < max_caplen ? i.snaplen : max_caplen;
            if (caplen > snap) return fail(fmt::format("invalid packet capture length {}, bigger than snaplen of {}", caplen, snap));
            if (caplen > bl - 20) return fail(fmt::format("block of type {} in pcapng dump file is too short", type));
            uint64_t sec = ts / i.units, fr = ts % i.units;
            uint64_t us = i.units == 1000000 ? fr : uint64_t(static_cast<unsigned __int128>(fr) * 1000000 / i.units);
            f.data = {b + 20, caplen};
            f.wire_len = wire;
            // Unsigned arithmetic: absurd times (a corrupt block) wrap instead of overflowing.
            f.ts_us = int64_t((sec + uint64_t(i.offset_s)) * 1000000u + us);
            advance(len);
            frames_++;
            return true;
        }
        case 3: {  // simple packet: interface 0, no timestamp
            if (bl < 4) return fail("simple packet block too short");
            if (ifaces_.empty()) return fail("a packet arrived on interface 0, but there's no Interface Description Block for that interface");
            uint32_t wire = u32(b);
            uint32_t caplen = std::min<uint32_t>(wire, uint32_t(bl - 4));
            if (ifaces_[0].snaplen && caplen > ifaces_[0].snaplen) caplen = ifaces_[0].snaplen;
            if (caplen > max_caplen) caplen = max_caplen;
            f.data = {b + 4, caplen};
            f.wire_len = wire;
            f.ts_us = 0;
            advance(len);
            frames_++;
            return true;
        }
        default: advance(len); continue;  // statistics, name resolution, custom...: not packets
        }
    }
}

}  // namespace edge::pcap
