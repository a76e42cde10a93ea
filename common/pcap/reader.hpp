// RAII reader over libpcap: pcap and pcapng files, "-" for stdin; classic pcap files
// are memory-mapped and read in place.
// Open errors (missing file, not a capture) throw edge::UsageError. A capture cut short
// mid-record is not an exception: next() returns false and truncated() tells, so the
// caller can report what was read and say how it ended.
#pragma once
#include <pcap/pcap.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "net/packet.hpp"

namespace edge::pcap {

struct Frame {
    std::span<const uint8_t> data;  // captured bytes
    uint32_t wire_len = 0;          // original length on the wire
    int64_t ts_us = 0;              // microseconds since the epoch
};

class Reader {
public:
    explicit Reader(const std::string& path);
    ~Reader();
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;

    // Next frame, or false at end of file or on a read error (see truncated()/error()).
    bool next(Frame& f);
    // A libpcap filter expression; a bad one is an edge::UsageError (see filter.hpp).
    void set_filter(const std::string& expr);

    int dlt() const { return dlt_; }
    // The link type as the packet parser knows it; nullopt for link types it does not parse.
    std::optional<net::LinkType> link() const { return link_; }
    const std::string& path() const { return path_; }
    uint64_t frames() const { return frames_; }
    bool truncated() const { return !error_.empty(); }
    const std::string& error() const { return error_; }
    // Bytes of the file consumed so far and its size (0 for pipes): for progress.
    uint64_t position() const;
    uint64_t size() const { return size_; }
    // Frames stay valid after the next call (they point into the mapped file), so
    // they can be handed to other threads.
    bool mapped() const { return map_ != nullptr; }

private:
    bool next_mapped(Frame& f);
    void map_classic_pcap();

    std::string path_;
    pcap_t* p_ = nullptr;
    // Fast path for classic pcap files: the file is mapped and records are read in
    // place (no copy through stdio); libpcap still validates the header, reads
    // pcapng and pipes, and compiles filters (applied with pcap_offline_filter).
    const uint8_t* map_ = nullptr;
    uint64_t map_off_ = 0;
    uint64_t released_ = 0;  // bytes at the start of the map already given back
    uint64_t prefetched_ = 0;  // the map is asked for, a cache line at a time, up to here
    bool swapped_ = false;
    bool nanos_ = false;
    bool has_filter_ = false;
    struct bpf_program filter_{};
    int dlt_ = 0;
    std::optional<net::LinkType> link_;
    uint64_t frames_ = 0;
    uint64_t size_ = 0;
    std::string error_;
};

}  // namespace edge::pcap
