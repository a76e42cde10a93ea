// TOML configs: toml++ plus the typed accessors every tool uses.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cli/error.hpp"
#include "config/toml.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        auto doc = edge::config::parse(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.toml");
        edge::config::Table t(doc);
        for (auto& [k, v] : doc.root) {
            auto key = k.str();
            try { (void)t.str(key); } catch (const edge::Error&) {}
            try { (void)t.integer(key, 0, 100); } catch (const edge::Error&) {}
            try { (void)t.strings(key); } catch (const edge::Error&) {}
            try { (void)t.tables(key); } catch (const edge::Error&) {}
            try { (void)t.table(key); } catch (const edge::Error&) {}
        }
    } catch (const edge::Error&) {
    }
    return 0;
}
