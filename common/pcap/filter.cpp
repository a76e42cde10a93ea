#include "pcap/filter.hpp"

#include "cli/error.hpp"

namespace edge::pcap {

void Reader::set_filter(const std::string& expr) {
    struct bpf_program prog;
    if (pcap_compile(p_, &prog, expr.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0)
        usage_error("bad filter '{}': {}", expr, pcap_geterr(p_));
    if (map_) {  // the mapped path filters each record itself
        if (has_filter_) pcap_freecode(&filter_);
        filter_ = prog;
        has_filter_ = true;
        return;
    }
    int rc = pcap_setfilter(p_, &prog);
    pcap_freecode(&prog);
    if (rc != 0) usage_error("cannot apply filter '{}': {}", expr, pcap_geterr(p_));
}

void apply_filter(Reader& r, const std::string& expr) {
    if (!expr.empty()) r.set_filter(expr);
}

}  // namespace edge::pcap
