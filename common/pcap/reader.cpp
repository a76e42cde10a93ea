#include "pcap/reader.hpp"

#include <sys/stat.h>

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
}

Reader::~Reader() {
    if (p_) pcap_close(p_);
}

bool Reader::next(Frame& f) {
    struct pcap_pkthdr* h;
    const u_char* d;
    int rc = pcap_next_ex(p_, &h, &d);
    if (rc == 1) {
        f.data = {d, h->caplen};
        f.wire_len = h->len;
        f.ts_us = int64_t{h->ts.tv_sec} * 1000000 + h->ts.tv_usec;
        frames_++;
        return true;
    }
    if (rc == PCAP_ERROR) error_ = pcap_geterr(p_);
    return false;
}

uint64_t Reader::position() const {
    FILE* f = pcap_file(p_);
    if (!f || size_ == 0) return 0;
    long pos = std::ftell(f);
    return pos < 0 ? 0 : static_cast<uint64_t>(pos);
}

}  // namespace edge::pcap
