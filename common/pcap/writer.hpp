// RAII pcap writer; "-" writes to stdout.
#pragma once
#include <pcap/pcap.h>

#include <cstdint>
#include <span>
#include <string>

namespace edge::pcap {

class Writer {
public:
    Writer(const std::string& path, int dlt, int snaplen = 262144);
    ~Writer();
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;
    void write(std::span<const uint8_t> data, int64_t ts_us, uint32_t wire_len = 0);
    void flush();

private:
    pcap_t* dead_ = nullptr;
    pcap_dumper_t* d_ = nullptr;
    std::string path_;
};

}  // namespace edge::pcap
