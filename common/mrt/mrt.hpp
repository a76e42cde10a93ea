// MRT routing information export format (RFC 6396, RFC 8050 ADD-PATH): record framing and
// the bodies of TABLE_DUMP, TABLE_DUMP_V2 and BGP4MP / BGP4MP_ET records, plus a BGP
// path-attribute reader that keeps what a dump reader shows (with the quirks of
// bgpdump, so `bgp-announce decode -m` prints byte for byte what `bgpdump -m` prints).
//
// Everything here works on spans into a caller's buffer, never throws, never reads out of
// bounds: a short or malformed body is a false return plus a reason, or a warning.
#pragma once
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bgp/message.hpp"

namespace edge::mrt {

// MRT types and subtypes (RFC 6396 4, RFC 8050 3).
constexpr uint16_t type_table_dump = 12, type_table_dump_v2 = 13, type_bgp4mp = 16, type_bgp4mp_et = 17;
namespace td2 {
constexpr uint16_t peer_index_table = 1, rib_ipv4_unicast = 2, rib_ipv4_multicast = 3, rib_ipv6_unicast = 4,
                   rib_ipv6_multicast = 5, rib_generic = 6, rib_ipv4_unicast_addpath = 8,
                   rib_ipv4_multicast_addpath = 9, rib_ipv6_unicast_addpath = 10,
                   rib_ipv6_multicast_addpath = 11, rib_generic_addpath = 12;
}
namespace bgp4mp {
constexpr uint16_t state_change = 0, message = 1, message_as4 = 4, state_change_as4 = 5, message_local = 6,
                   message_as4_local = 7, message_addpath = 8, message_as4_addpath = 9,
                   message_local_addpath = 10, message_as4_local_addpath = 11;
}

constexpr size_t header_size = 12;
constexpr uint32_t max_record_length = 16u << 20;  // larger is treated as corrupt input

struct Header {
    uint32_t timestamp = 0;
    uint16_t type = 0, subtype = 0;
    uint32_t length = 0;        // of the body (after the microseconds of _ET records)
    uint32_t microseconds = 0;  // BGP4MP_ET only
    size_t header_len = 12;     // 12, or 16 for BGP4MP_ET
};
// The header at the start of `buf`: 0 when `buf` is too short for it, else its length
// (12 or 16). The record is complete when buf.size() >= header_len + h.length.
size_t parse_header(std::span<const uint8_t> buf, Header& h);
std::string type_name(uint16_t type);                       // "BGP4MP_ET", "type-99"
std::string subtype_name(uint16_t type, uint16_t subtype);  // "MESSAGE_AS4_ADDPATH"

// An address as bytes: 4 (IPv4) or 16 (IPv6).
struct Addr {
    std::array<uint8_t, 16> b{};
    bool v6 = false;
    std::string to_string() const;
};
// Formats like inet_ntoa / inet_ntop (the forms bgpdump prints); returns chars written.
size_t format_ipv4(const uint8_t* a, char* out);
size_t format_ipv6(const uint8_t* a, char* out);

// ---- BGP4MP ---------------------------------------------------------------------------
struct Bgp4mp {
    uint16_t subtype = bgp4mp::message_as4;
    bool state = false;    // STATE_CHANGE(_AS4)
    bool as4 = false;      // 4-octet AS numbers in the MRT header and the message
    bool local = false;    // *_LOCAL: a message the collector sent
    bool addpath = false;  // *_ADDPATH: NLRI carry path ids
    uint32_t peer_as = 0, local_as = 0;
    uint16_t ifindex = 0, afi = 1;
    Addr peer_ip, local_ip;
    uint16_t old_state = 0, new_state = 0;
    std::span<const uint8_t> msg;  // the whole BGP message, header included
};
bool parse_bgp4mp(const Header& h, std::span<const uint8_t> body, Bgp4mp& out, std::string& why);
const char* state_name(uint16_t s);  // "idle" ... "established", "unknown"

// ---- TABLE_DUMP_V2 --------------------------------------------------------------------
struct Peer {
    uint32_t bgp_id = 0;
    Addr ip;
    uint32_t asn = 0;
};
struct PeerIndex {
    uint32_t collector_id = 0;
    std::string view;
    std::vector<Peer> peers;
};
bool parse_peer_index(std::span<const uint8_t> body, PeerIndex& out, std::string& why);

struct RibEntry {
    uint16_t peer_index = 0;
    uint32_t originated = 0;
    uint32_t path_id = 0;
    std::span<const uint8_t> attrs;
};
struct Rib {
    uint32_t sequence = 0;
    uint16_t afi = 1;
    uint8_t safi = 1;
    bool addpath = false;
    uint8_t prefix_len = 0;
    std::array<uint8_t, 16> prefix{};
    std::vector<RibEntry> entries;
};
// RIB_IPV4/IPV6_UNICAST/MULTICAST and their ADD-PATH variants (not RIB_GENERIC).
bool parse_rib(uint16_t subtype, std::span<const uint8_t> body, Rib& out, std::string& why);

// ---- TABLE_DUMP (v1) -----------------------------------------------------------------
struct TableDump {
    uint16_t view = 0, sequence = 0;
    bool v6 = false, as4 = false;
    Addr prefix;
    uint8_t prefix_len = 0, status = 0;
    uint32_t originated = 0;
    Addr peer_ip;
    uint32_t peer_as = 0;
    std::span<const uint8_t> attrs;
};
bool parse_table_dump(uint16_t subtype, std::span<const uint8_t> body, TableDump& out, std::string& why);

// ---- path attributes ------------------------------------------------------------------
struct Prefix {
    uint8_t len = 0;
    uint32_t path_id = 0;
    std::array<uint8_t, 16> addr{};  // as received: host bits are not cleared
};
struct MpNlri {
    bool present = false;
    uint8_t nh_len = 0;
    std::array<uint8_t, 16> nh{}, nh_local{};
    std::vector<Prefix> prefixes;
};
struct Segment {
    uint8_t type = bgp::as_sequence;
    uint32_t start = 0, count = 0;  // into Attrs::asns / as4_asns
};
struct Unknown {
    uint8_t flags = 0, type = 0;
    std::span<const uint8_t> value;
};

// What one attribute block says. `reset()` keeps capacity so a reader reuses one.
struct Attrs {
    uint64_t present = 0;  // bit (type-1) for each attribute type 1..64 seen
    bool has(uint8_t type) const { return type >= 1 && type <= 64 && (present >> (type - 1)) & 1; }
    int origin = -1;
    std::vector<Segment> segments;  // AS_PATH
    std::vector<uint32_t> asns;
    bool as_path_error = false;     // a bad segment: bgpdump prints "! Error !"
    std::vector<Segment> segments4;  // AS4_PATH
    std::vector<uint32_t> asns4;
    bool as4_path_error = false;
    uint8_t asn_len = 4;                  // AS_PATH and AGGREGATOR width
    std::array<uint8_t, 4> next_hop{255, 255, 255, 255};  // bgpdump's INADDR_NONE default
    uint32_t med = 0, local_pref = 0;
    uint32_t aggregator_as = 0;
    std::array<uint8_t, 4> aggregator_addr{255, 255, 255, 255};
    uint32_t as4_aggregator_as = 0;
    std::array<uint8_t, 4> as4_aggregator_addr{255, 255, 255, 255};
    std::vector<uint32_t> communities;
    std::vector<bgp::LargeCommunity> large_communities;
    std::vector<bgp::ExtCommunity> ext_communities;
    uint32_t originator_id = 0;
    std::vector<uint32_t> cluster_list;
    std::vector<Unknown> unknown;
    // MP_REACH / MP_UNREACH for AFI 1..2 x SAFI 1..3 (what bgpdump shows); other
    // families are counted in `other_families`.
    MpNlri reach[3][4], unreach[3][4];
    unsigned other_families = 0;
    std::vector<std::string> warnings;
    bool mp_touched = true;  // reset() clears the MP slots only when something was put there
    void reset();
};
struct AttrOptions {
    uint8_t asn_len = 4;
    bool addpath = false;
    bool mrt_abbreviated = false;  // TABLE_DUMP_V2: MP_REACH may hold only the next hop
};
// Reads an attribute block (without its 2-byte length). Problems become warnings.
void parse_attributes(std::span<const uint8_t> a, const AttrOptions& o, Attrs& out);
// Reads a NLRI list (withdrawn routes or NLRI) into `out`; false (with a warning) when
// the last prefix is cut short.
bool parse_prefixes(std::span<const uint8_t> p, bool addpath, std::vector<Prefix>& out, std::vector<std::string>* warnings);

// The AS path with RFC 6793 AS4_PATH merging done properly (for JSON and validation).
bgp::AsPath as_path(const Attrs& a);

// ---- bgpdump -m -----------------------------------------------------------------------
// An append-only byte buffer whose room is handed out without being zero-filled first
// (std::string::resize would clear what the formatter is about to overwrite).
class Text {
public:
    Text() = default;
    Text(Text&& o) noexcept : p_(std::move(o.p_)), len_(o.len_), cap_(o.cap_) { o.len_ = o.cap_ = 0; }
    Text& operator=(Text&& o) noexcept {
        p_ = std::move(o.p_), len_ = o.len_, cap_ = o.cap_;
        o.len_ = o.cap_ = 0;
        return *this;
    }
    // At least n writable bytes at the end (contents unspecified); valid until the next
    // call that changes the buffer. commit() then says where the new content ends.
    char* room(size_t n) {
        if (cap_ - len_ < n) grow(n);
        return p_.get() + len_;
    }
    void commit(const char* end) { len_ = size_t(end - p_.get()); }
    void append(const char* s, size_t n) {
        if (n) std::memcpy(room(n), s, n);
        len_ += n;
    }
    void append(std::string_view s) { append(s.data(), s.size()); }
    void push_back(char c) {
        *room(1) = c;
        ++len_;
    }
    Text& operator+=(std::string_view s) {
        append(s);
        return *this;
    }
    Text& operator+=(char c) {
        push_back(c);
        return *this;
    }
    const char* data() const { return p_.get(); }
    size_t size() const { return len_; }
    bool empty() const { return len_ == 0; }
    size_t capacity() const { return cap_; }
    std::string_view view() const { return {p_.get(), len_}; }
    void clear() { len_ = 0; }
    void truncate(size_t n) { len_ = n < len_ ? n : len_; }
    void erase_front(size_t n) {
        n = n < len_ ? n : len_;
        if (n < len_) std::memmove(p_.get(), p_.get() + n, len_ - n);
        len_ -= n;
    }
    void reserve(size_t n) {
        if (n > cap_) grow(n - len_);
    }

private:
    void grow(size_t n);
    std::unique_ptr<char[]> p_;
    size_t len_ = 0, cap_ = 0;
};

// Appends the lines `bgpdump -m` prints for one record to `out`.
class BgpdumpFormatter {
public:
    // BGP4MP / BGP4MP_ET: STATE line, or A/W lines of an UPDATE (nothing for other messages).
    void bgp4mp(const Header& h, const Bgp4mp& m, std::string& out);
    void bgp4mp(const Header& h, const Bgp4mp& m, Text& out);
    // TABLE_DUMP_V2 RIB record (the peer index table must have been read).
    void rib(const Header& h, const Rib& r, const PeerIndex& peers, std::string& out);
    void rib(const Header& h, const Rib& r, const PeerIndex& peers, Text& out);
    void table_dump(const Header& h, const TableDump& t, std::string& out);
    void table_dump(const Header& h, const TableDump& t, Text& out);
    std::vector<std::string> warnings;  // cleared by the caller

private:
    // The common UPDATE (4-octet session, no ADD-PATH, IPv4 NLRI and withdrawals, only
    // attributes whose -m text needs no merging) in one pass straight into `out`; false,
    // with nothing written, for anything else (the general path then handles it).
    // Out: Text, or an adapter of std::string (room/commit).
    template <class Out>
    bool fast_update(const Header& h, const Bgp4mp& m, std::span<const uint8_t> upd, Out& out);
    template <class Out>
    bool try_fast(const Header& h, const Bgp4mp& m, Out& out);
    void bgp4mp_general(const Header& h, const Bgp4mp& m, std::string& out);
    std::string scratch_;  // the general path's lines on their way to a Text
    struct HeadKey {
        uint32_t ts = 0, us = 0, as = 0;
        uint16_t type = 0, afi = 0;
        uint64_t ip0 = 0, ip1 = 0;
        bool local = false;
        bool operator==(const HeadKey& o) const {
            return ts == o.ts && us == o.us && as == o.as && type == o.type && afi == o.afi && ip0 == o.ip0 && ip1 == o.ip1 &&
                   local == o.local;
        }
    };
    HeadKey head_key_;
    char head_buf_[160];
    size_t head_len_ = 0, head_kind_ = 0;
    // The text after the AS path of the last UPDATE's lines, and what it was made from
    // (communities up to 64 bytes; longer ones are formatted each time into post_big_).
    struct PostKey {
        int origin = -1;
        uint32_t nh = 0, lp = 0, med = 0;
        bool atomic = false, has_agg = false;
        uint64_t agg = 0;
        uint32_t comms_len = 0;
        uint8_t comms[64] = {};
    };
    PostKey post_key_;
    char post_buf_[320];
    size_t post_len_ = 0;  // 0: nothing kept
    std::string post_big_;
    void aspath_string(const Attrs& a);
    void attr_tail(const Attrs& a, const char* next_hop_text, std::string& out, bool signed_numbers = false);
    Attrs attrs_;
    std::vector<Prefix> withdrawn_, nlri_;
    std::string aspath_, head_, head6_, tail_;
    std::vector<Segment> merged_;
    std::vector<uint32_t> merged_asns_;
};

}  // namespace edge::mrt
