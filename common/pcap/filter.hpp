// libpcap filter expressions ("dst port 443") applied to an offline capture.
#pragma once
#include <string>

#include "pcap/reader.hpp"

namespace edge::pcap {

// No-op for an empty expression; a bad expression is an edge::UsageError.
void apply_filter(Reader& r, const std::string& expr);

}  // namespace edge::pcap
