// The community lists of a route in a JSON record, the same for decode's records and the
// speaker's received routes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bgp/message.hpp"
#include "out/record.hpp"

namespace bgp_announce {

// `communities` null: the attribute is absent (an empty list is printed when it is present).
inline void add_community_fields(edge::out::Record& r, const std::vector<uint32_t>* communities,
                                 const std::vector<edge::bgp::LargeCommunity>& large,
                                 const std::vector<edge::bgp::ExtCommunity>& ext) {
    if (communities) {
        std::vector<std::string> v;
        for (auto c : *communities) v.push_back(fmt::format("{}:{}", c >> 16, c & 0xffff));
        r.strings("communities", v);
    }
    if (!large.empty()) {
        std::vector<std::string> v;
        for (auto& c : large) v.push_back(c.to_string());
        r.strings("large_communities", v);
    }
    if (!ext.empty()) {
        std::vector<std::string> v;
        for (auto& c : ext) v.push_back(c.to_string());
        r.strings("ext_communities", v);
    }
}

}  // namespace bgp_announce
