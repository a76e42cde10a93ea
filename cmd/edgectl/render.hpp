// edgectl render: the stack as each tool's config file, per PoP.
#pragma once
#include <string>
#include <vector>

#include "stack.hpp"

namespace edgectl {

struct RenderedFile {
    std::string pop, tool, path;
};

// Writes OUT/<pop>/{xdp-lb,synflood-guard,cache-proxy,bgp-announce,maglev-calc}.toml and
// backends.txt; returns what it wrote.
std::vector<RenderedFile> render(const Stack& s, const std::string& out_dir);

}  // namespace edgectl
