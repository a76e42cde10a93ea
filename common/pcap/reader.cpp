#include "pcap/reader.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "cli/error.hpp"

namespace edge::pcap {

Reader::Reader(const std::string& path) : path_(path) {
    char err[PCAP_ERRBUF_SIZE] = {0};
    if (path != "-") {
        struct stat st{};
        if (stat(path.c_str(), &st) != 0) usage_error("cannot open capture {}: {}", path, std::strerror(errno));
        if (S_ISDIR(st.st_mode)) usage_error("cannot open capture {}: is a directory", path);
        if (S_ISREG(st.st_mode)) size_ = static_cast<uint64_t>(st.st_size);
        if (size_ == 0 && S_ISREG(st.st_mode)) usage_error("cannot read capture {}: the file is empty", path);
    }
    p_ = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_MICRO, err);
    if (!p_) {
        std::string why = err;
        if (why.find("unknown file format") != std::string::npos)
            why = "not a pcap or pcapng capture (unknown file format)";
        else if (why.find("truncated") != std::string::npos)
            why = "not a complete capture: the file header is truncated";
        usage_error("cannot read capture {}: {}", path == "-" ? "<stdin>" : path, why);
    }
    dlt_ = pcap_datalink(p_);
    link_ = net::link_from_dlt(dlt_);
    if (size_ > 24) map_classic_pcap();
}

Reader::~Reader() {
    if (map_) munmap(const_cast<uint8_t*>(map_), size_);
    if (has_filter_) pcap_freecode(&filter_);
    if (p_) pcap_close(p_);
}

void Reader::map_classic_pcap() {
    int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;  // libpcap has it open: fall back to reading through it
    void* m = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return;
    auto* b = static_cast<const uint8_t*>(m);
    uint32_t magic;
    std::memcpy(&magic, b, 4);
    switch (magic) {
    case 0xa1b2c3d4: break;
    case 0xa1b23c4d: nanos_ = true; break;
    case 0xd4c3b2a1: swapped_ = true; break;
    case 0x4d3cb2a1: swapped_ = nanos_ = true; break;
    default: munmap(m, size_); return;  // pcapng or other: libpcap reads it
    }
    madvise(m, size_, MADV_SEQUENTIAL);
    map_ = b;
    map_off_ = 24;
}

bool Reader::next_mapped(Frame& f) {
    // libpcap's limit for the link types the parser handles.
    constexpr uint32_t max_caplen = 262144;
    constexpr uint64_t kPrefetchAhead = 8192;
    while (true) {
        if (map_off_ == size_) return false;
        if (size_ - map_off_ < 16) {
            error_ = fmt::format("truncated dump file; tried to read 16 header bytes, only got {}", size_ - map_off_);
            return false;
        }
        uint32_t h[4];
        std::memcpy(h, map_ + map_off_, 16);
        if (swapped_)
            for (auto& x : h) x = __builtin_bswap32(x);
        const uint32_t caplen = h[2];
        if (caplen > max_caplen) {
            error_ = fmt::format("invalid packet capture length {}, bigger than maximum of {}", caplen, max_caplen);
            return false;
        }
        if (size_ - map_off_ - 16 < caplen) {
            error_ = fmt::format("truncated dump file; tried to read {} captured bytes, only got {}", caplen,
                                 size_ - map_off_ - 16);
            return false;
        }
        const uint8_t* data = map_ + map_off_ + 16;
        map_off_ += 16 + uint64_t{caplen};
        // Every cache line a few KB ahead is asked for: each record's header says where
        // the next one starts, so without this every record waited for memory (the
        // hardware prefetcher stops at page boundaries and misses variable strides).
        // Prefetching was 20% of a decode of short QUIC datagrams; a prefetch never
        // faults (one into a page not mapped yet is dropped).
        const uint64_t ahead = std::min<uint64_t>(size_, map_off_ + kPrefetchAhead);
        for (; prefetched_ < ahead; prefetched_ += 64) __builtin_prefetch(map_ + prefetched_);
        // Unmap what has been read, 8 MiB at a time, so resident memory stays small
        // on big captures (the pages stay in the page cache).
        constexpr uint64_t chunk = 8 << 20;
        if (map_off_ - released_ > 2 * chunk) {
            madvise(const_cast<uint8_t*>(map_) + released_, chunk, MADV_DONTNEED);
            released_ += chunk;
        }
        if (has_filter_) {
            struct pcap_pkthdr ph{};
            ph.caplen = caplen;
            ph.len = h[3];
            if (!pcap_offline_filter(&filter_, &ph, data)) continue;
        }
        f.data = {data, caplen};
        f.wire_len = h[3];
        f.ts_us = int64_t{h[0]} * 1000000 + (nanos_ ? h[1] / 1000 : h[1]);
        frames_++;
        return true;
    }
}

bool Reader::next(Frame& f) {
    if (map_) return next_mapped(f);
    struct pcap_pkthdr* h;
    const u_char* d;
    int rc = pcap_next_ex(p_, &h, &d);
    if (rc == 1) {
        f.data = {d, h->caplen};
        f.wire_len = h->len;
        // Unsigned: a pcapng with an absurd if_tsresol gives seconds that overflow (wraps, no UB).
        f.ts_us = static_cast<int64_t>(static_cast<uint64_t>(h->ts.tv_sec) * 1000000u + static_cast<uint64_t>(h->ts.tv_usec));
        frames_++;
        return true;
    }
    if (rc == PCAP_ERROR) error_ = pcap_geterr(p_);
    return false;
}

uint64_t Reader::position() const {
    if (map_) return map_off_;
    FILE* f = pcap_file(p_);
    if (!f || size_ == 0) return 0;
    long pos = std::ftell(f);
    return pos < 0 ? 0 : static_cast<uint64_t>(pos);
}

}  // namespace edge::pcap
