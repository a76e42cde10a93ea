#include <fmt/format.h>

#include "backends.hpp"
#include "cli/error.hpp"
#include "options.hpp"

namespace maglev_calc {

edge::hash::Key hash_key(const Options& o) {
    if (o.hash_key.empty()) return {};
    auto k = edge::hash::parse_key(o.hash_key);
    if (!k) edge::usage_error("--hash-key: expected 32 hex digits, got '{}'", o.hash_key);
    return *k;
}

std::vector<edge::maglev::Backend> load_backends(const BackendSet& s, const char* what) {
    if (!s.list.empty() && !s.file.empty()) edge::usage_error("give {} either as a list or as a file, not both", what);
    if (!s.list.empty()) return parse_backend_list(s.list);
    if (!s.file.empty()) return read_backend_file(s.file);
    edge::usage_error("no {} given: use -b NAME[,NAME...] or --backends FILE", what);
}

edge::maglev::Table build_table(const std::vector<edge::maglev::Backend>& b, uint64_t size) {
    edge::maglev::validate(b, size);
    return edge::maglev::Table(b, static_cast<uint32_t>(size));
}

}  // namespace maglev_calc
