#include "pcap/writer.hpp"

#include "cli/error.hpp"

namespace edge::pcap {

Writer::Writer(const std::string& path, int dlt, int snaplen) : path_(path) {
    dead_ = pcap_open_dead_with_tstamp_precision(dlt, snaplen, PCAP_TSTAMP_PRECISION_MICRO);
    if (!dead_) failure("cannot create a pcap writer");
    d_ = pcap_dump_open(dead_, path.c_str());
    if (!d_) {
        std::string err = pcap_geterr(dead_);
        pcap_close(dead_);
        usage_error("cannot write capture {}: {}", path, err);
    }
}

Writer::~Writer() {
    if (d_) pcap_dump_close(d_);
    if (dead_) pcap_close(dead_);
}

void Writer::write(std::span<const uint8_t> data, int64_t ts_us, uint32_t wire_len) {
    struct pcap_pkthdr h{};
    h.ts.tv_sec = ts_us / 1000000;
    h.ts.tv_usec = ts_us % 1000000;
    h.caplen = static_cast<bpf_u_int32>(data.size());
    h.len = wire_len ? wire_len : h.caplen;
    pcap_dump(reinterpret_cast<u_char*>(d_), &h, data.data());
}

void Writer::flush() {
    if (pcap_dump_flush(d_) != 0) failure("cannot write capture {}: write error", path_);
}

}  // namespace edge::pcap
