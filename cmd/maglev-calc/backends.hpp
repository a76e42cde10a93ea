// Backend sets for maglev-calc: inline lists (-b a,b=2,c) and files (one "name [weight]"
// a line, # comments), "-" for stdin.
#pragma once
#include <string>
#include <vector>

#include "maglev/maglev.hpp"

namespace maglev_calc {

// "a,b=2,c": names separated by commas, optional "=WEIGHT".
std::vector<edge::maglev::Backend> parse_backend_list(const std::string& list);
// A file of "name [weight]" lines. Errors name FILE:LINE.
std::vector<edge::maglev::Backend> read_backend_file(const std::string& path);

}  // namespace maglev_calc
