// A capture reader without libpcap: classic pcap (micro- and nanosecond, either byte order)
// and pcapng (sections, several interfaces of one link type, if_tsresol/if_tsoffset,
// enhanced, simple and obsolete packet blocks), from a file (memory-mapped and read in
// place) or a pipe/stdin ("-", read through a buffer).
// For tools that only read files: a program that does not otherwise use libpcap then does
// not load it and its dependencies at start-up. Same contract as Reader: open errors
// (missing file, not a capture) throw edge::UsageError; a capture cut short or a corrupt
// record ends next() with false and truncated()/error() tell why, after every frame
// before it was returned. Frames point into the mapping (mapped(): they stay valid until
// the reader is destroyed) or into the buffer (valid until the next call).
// A mapped file of more than 8 MiB is paged in by a helper thread a little ahead of the
// read position (MADV_POPULATE_READ), so the reading thread takes fewer page faults; the
// thread stops before the mapping goes.
#pragma once
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "net/packet.hpp"
#include "pcap/reader.hpp"  // Frame (the header only; nothing of libpcap is called)

namespace edge::pcap {

class FileReader {
public:
    explicit FileReader(const std::string& path);
    ~FileReader();
    FileReader(const FileReader&) = delete;
    FileReader& operator=(const FileReader&) = delete;

    bool next(Frame& f);

    int dlt() const { return dlt_; }
    std::optional<net::LinkType> link() const { return link_; }
    const std::string& path() const { return path_; }
    uint64_t frames() const { return frames_; }
    bool truncated() const { return !error_.empty(); }
    const std::string& error() const { return error_; }
    bool mapped() const { return map_ != nullptr; }
    bool pcapng() const { return ng_; }

private:
    // Bytes at the read position: up to n of them (fewer only at the end of the input).
    size_t avail(size_t n);
    const uint8_t* at() const { return (map_ ? map_ : buf_.data()) + pos_; }
    void advance(size_t n);
    void open_header();
    bool read_shb(bool first);  // the section header block at the read position
    bool next_classic(Frame& f);
    bool next_ng(Frame& f);
    uint16_t u16(const uint8_t* p) const;
    uint32_t u32(const uint8_t* p) const;
    bool fail(std::string why);
    void start_prefetch();
    void stop_prefetch();

    std::string path_, name_;
    int fd_ = -1;
    bool own_fd_ = false;
    // mapped file
    const uint8_t* map_ = nullptr;
    uint64_t size_ = 0, released_ = 0;
    std::thread prefetch_;
    std::atomic<uint64_t> read_pos_{0};  // pos_, for the prefetch thread
    std::atomic<bool> stop_prefetch_{false};
    // stream
    std::vector<uint8_t> buf_;
    size_t end_ = 0;  // bytes of buf_ filled
    bool eof_ = false;
    uint64_t pos_ = 0;  // read position in the map or buf_

    bool swapped_ = false, nanos_ = false, ng_ = false;
    uint32_t snaplen_ = 0;
    struct Iface {
        uint64_t units = 1000000;  // timestamp units per second
        int64_t offset_s = 0;
        uint32_t snaplen = 0;
    };
    std::vector<Iface> ifaces_;
    int dlt_ = -1;
    std::optional<net::LinkType> link_;
    uint64_t frames_ = 0;
    std::string error_;
};

}  // namespace edge::pcap
