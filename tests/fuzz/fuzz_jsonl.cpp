// The JSON reader (json::Document) on the whole input, JSON Lines input, and the cross-tool
// flow record reader.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cli/error.hpp"
#include "json/json.hpp"
#include "jsonl/reader.hpp"
#include "records/flow.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // Whatever parses prints back (minify) as JSON that parses to the same text again.
    edge::json::Document d, again;
    if (d.parse(std::string_view(reinterpret_cast<const char*>(data), size))) {
        const std::string m = d.root().minify();
        if (!again.parse(m) || again.root().minify() != m) std::abort();
    }
    static std::string path = "/tmp/edge-fuzz-jsonl-" + std::to_string(getpid());
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return 0;
    std::fwrite(data, 1, size, f);
    std::fclose(f);
    edge::jsonl::Reader r(path);
    edge::json::Value doc;
    edge::jsonl::Reader::Status st;
    while ((st = r.next(doc)) != edge::jsonl::Reader::Status::end) {
        if (st == edge::jsonl::Reader::Status::record) (void)edge::records::flow_from_json(doc);
    }
    return 0;
}
