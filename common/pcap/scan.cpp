#include "pcap/scan.hpp"

#include <fmt/format.h>

#include "cli/error.hpp"
#include "out/output.hpp"

namespace edge::pcap {

std::string ScanStats::skipped_summary() const {
    std::string parts;
    auto add = [&](uint64_t n, const char* what) {
        if (!n) return;
        if (!parts.empty()) parts += ", ";
        parts += fmt::format("{} {}", n, what);
    };
    add(non_ip, "non-IP");
    add(truncated, "truncated");
    add(malformed, "malformed");
    if (parts.empty()) return {};
    return fmt::format("skipped {} of {} frames", parts, frames);
}

void require_link(const Reader& r) {
    if (!r.link()) {
        const char* name = pcap_datalink_val_to_name(r.dlt());
        usage_error("{}: unsupported link type {} ({}): expected Ethernet, raw IP, Linux cooked or loopback",
                    r.path(), r.dlt(), name ? name : "unknown");
    }
}

int report(const Reader& r, const ScanStats& st) {
    if (auto s = st.skipped_summary(); !s.empty()) out::info(fmt::format("{}: {}", r.path(), s));
    if (st.file_truncated) {
        out::warn(fmt::format("{}: capture is cut short after {} complete frames: {}", r.path(), st.frames,
                              st.file_error));
        return exit_usage;
    }
    return exit_ok;
}

}  // namespace edge::pcap
