// JSON Lines input and the cross-tool flow record reader.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "cli/error.hpp"
#include "jsonl/reader.hpp"
#include "records/flow.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static std::string path = "/tmp/edge-fuzz-jsonl-" + std::to_string(getpid());
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return 0;
    std::fwrite(data, 1, size, f);
    std::fclose(f);
    edge::jsonl::Reader r(path);
    simdjson::dom::element doc;
    edge::jsonl::Reader::Status st;
    while ((st = r.next(doc)) != edge::jsonl::Reader::Status::end) {
        if (st == edge::jsonl::Reader::Status::record) (void)edge::records::flow_from_json(doc);
    }
    return 0;
}
