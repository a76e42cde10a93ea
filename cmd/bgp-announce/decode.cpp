// bgp-announce decode: BGP from MRT dumps (RFC 6396, RFC 8050; gzip/bzip2 transparent) and
// from packet captures (TCP reassembly on port 179 and --port), as JSON Lines, text, or the
// one-line format of `bgpdump -m` (-m), byte for byte.
#include "decode.hpp"
#include "community_fields.hpp"
#include "line_pool.hpp"

#include <bzlib.h>
#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include <unistd.h>

#include <fmt/format.h>

#include "bgp/message.hpp"
#include "cli/error.hpp"
#include "mrt/mrt.hpp"
#include "net/packet.hpp"
#include "out/output.hpp"
#include "out/record.hpp"
#include "pcap/file_reader.hpp"
#include "pcap/parallel_scan.hpp"

namespace bgp_announce {
namespace {

using edge::out::Record;
namespace bgp = edge::bgp;
namespace mrt = edge::mrt;
namespace net = edge::net;

// ---- input: plain, gzip or bzip2, file or stdin ----------------------------------------
class Source {
public:
    virtual ~Source() = default;
    // Up to n bytes; 0 at the end. `cut` tells that compressed data ended early.
    virtual size_t read(uint8_t* p, size_t n) = 0;
    bool cut = false;
    std::string error;
};

class FileSource : public Source {
public:
    FileSource(const std::string& path) : name_(path == "-" ? "stdin" : path) {
        if (path == "-") {
            f_ = stdin;
        } else {
            f_ = std::fopen(path.c_str(), "rb");
            if (!f_) edge::usage_error("cannot open {}: {}", path, std::strerror(errno));
            owned_ = true;
        }
        peek_.resize(8);
        peek_len_ = std::fread(peek_.data(), 1, peek_.size(), f_);
    }
    ~FileSource() override {
        if (owned_) std::fclose(f_);
    }
    std::span<const uint8_t> peek() const { return {peek_.data(), peek_len_}; }
    size_t read(uint8_t* p, size_t n) override {
        if (peek_off_ < peek_len_) {
            size_t k = std::min(n, peek_len_ - peek_off_);
            std::memcpy(p, peek_.data() + peek_off_, k);
            peek_off_ += k;
            return k;
        }
        size_t k = std::fread(p, 1, n, f_);
        if (k == 0 && std::ferror(f_)) edge::usage_error("cannot read {}: {}", name_, std::strerror(errno));
        return k;
    }

private:
    std::string name_;
    std::FILE* f_ = nullptr;
    bool owned_ = false;
    std::vector<uint8_t> peek_;
    size_t peek_len_ = 0, peek_off_ = 0;
};

class GzipSource : public Source {
public:
    GzipSource(std::unique_ptr<FileSource> in) : in_(std::move(in)), buf_(1 << 18) {
        if (inflateInit2(&z_, 15 + 32) != Z_OK) edge::failure("zlib: cannot initialise");
    }
    ~GzipSource() override { inflateEnd(&z_); }
    size_t read(uint8_t* p, size_t n) override {
        z_.next_out = p;
        z_.avail_out = unsigned(n);
        while (z_.avail_out == n) {
            if (z_.avail_in == 0) {
                if (eof_) return 0;
                size_t k = in_->read(buf_.data(), buf_.size());
                if (k == 0) {
                    eof_ = true;
                    if (!ended_) cut = true;
                    return n - z_.avail_out;
                }
                z_.next_in = buf_.data();
                z_.avail_in = unsigned(k);
            }
            if (ended_) {  // another gzip member follows
                inflateReset(&z_);
                ended_ = false;
            }
            int rc = inflate(&z_, Z_NO_FLUSH);
            if (rc == Z_STREAM_END) {
                ended_ = true;
            } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
                edge::usage_error("corrupt gzip data: {}", z_.msg ? z_.msg : "inflate failed");
            }
        }
        return n - z_.avail_out;
    }

private:
    std::unique_ptr<FileSource> in_;
    std::vector<uint8_t> buf_;
    z_stream z_{};
    bool eof_ = false, ended_ = false;
};

class Bzip2Source : public Source {
public:
    Bzip2Source(std::unique_ptr<FileSource> in) : in_(std::move(in)), buf_(1 << 18) {
        if (BZ2_bzDecompressInit(&z_, 0, 0) != BZ_OK) edge::failure("bzip2: cannot initialise");
    }
    ~Bzip2Source() override { BZ2_bzDecompressEnd(&z_); }
    size_t read(uint8_t* p, size_t n) override {
        z_.next_out = reinterpret_cast<char*>(p);
        z_.avail_out = unsigned(n);
        while (z_.avail_out == n) {
            if (z_.avail_in == 0) {
                if (eof_) return 0;
                size_t k = in_->read(buf_.data(), buf_.size());
                if (k == 0) {
                    eof_ = true;
                    if (!ended_) cut = true;
                    return n - z_.avail_out;
                }
                z_.next_in = reinterpret_cast<char*>(buf_.data());
                z_.avail_in = unsigned(k);
            }
            if (ended_) {  // concatenated streams (pbzip2)
                BZ2_bzDecompressEnd(&z_);
                char* ni = z_.next_in;
                unsigned ai = z_.avail_in;
                char* no = z_.next_out;
                unsigned ao = z_.avail_out;
                z_ = bz_stream{};
                BZ2_bzDecompressInit(&z_, 0, 0);
                z_.next_in = ni, z_.avail_in = ai, z_.next_out = no, z_.avail_out = ao;
                ended_ = false;
            }
            int rc = BZ2_bzDecompress(&z_);
            if (rc == BZ_STREAM_END) ended_ = true;
            else if (rc != BZ_OK) edge::usage_error("corrupt bzip2 data (error {})", rc);
        }
        return n - z_.avail_out;
    }

private:
    std::unique_ptr<FileSource> in_;
    std::vector<uint8_t> buf_;
    bz_stream z_{};
    bool eof_ = false, ended_ = false;
};

std::unique_ptr<Source> open_input(const std::string& path, std::string& kind) {
    auto f = std::make_unique<FileSource>(path);
    auto m = f->peek();
    if (m.size() >= 2 && m[0] == 0x1f && m[1] == 0x8b) {
        kind = "gzip";
        return std::make_unique<GzipSource>(std::move(f));
    }
    if (m.size() >= 3 && m[0] == 'B' && m[1] == 'Z' && m[2] == 'h') {
        kind = "bzip2";
        return std::make_unique<Bzip2Source>(std::move(f));
    }
    kind = "plain";
    return f;
}

// ---- output --------------------------------------------------------------------------------
// Output goes out in whole 64 KiB blocks at 64 KiB offsets: the kernel then fills whole
// (large) page-cache folios instead of splitting one across two writes. A write error
// stops the output with exit 1; a closed pipe kills the process by SIGPIPE as any filter.
// (A writer thread that overlapped write() with formatting was measured: on this kind of
// 2-core VM the output's cache lines moving between the cores cost the formatting thread
// about what the write() calls had cost it, and the process ~5 ms more CPU.)
struct Sink {
    static constexpr size_t block = 1u << 16;
    mrt::Text buf;
    Sink() { buf.reserve(5 * block); }
    static void write_all(const char* p, size_t n) {
        while (n) {
            ssize_t k = ::write(STDOUT_FILENO, p, n);
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) edge::failure("cannot write the output: {}", std::strerror(k < 0 ? errno : EIO));
            p += k;
            n -= size_t(k);
        }
    }
    // Everything out before returning (stream when reading a pipe, before exiting).
    void flush() {
        std::fflush(stdout);
        write_all(buf.data(), buf.size());
        buf.clear();
    }
    void maybe_flush() {
        if (buf.size() >= 4 * block) {
            std::fflush(stdout);
            size_t n = buf.size() & ~(block - 1);
            write_all(buf.data(), n);
            buf.erase_front(n);
        }
    }
};

enum class Mode { text, json, bgpdump };

struct Options {
    std::string mrt, pcap;
    std::vector<uint16_t> ports;
    bool routes = false;
    bool bgpdump = false;
    unsigned threads = 0;  // -m on a capture: 0 = one per core (up to 4)
};

struct Warnings {
    std::string file;
    uint64_t count = 0;
    static constexpr uint64_t shown = 10;
    void add(const std::string& where, const std::string& what) {
        if (count < shown) edge::out::warn(fmt::format("{}: {}: {}", file, where, what));
        ++count;
    }
    void summary() {
        if (count > shown) edge::out::warn(fmt::format("{}: {} warnings in all ({} shown)", file, count, shown));
    }
};

std::string prefix_text(const mrt::Prefix& p, bool v6) {
    char b[64];
    size_t n = v6 ? mrt::format_ipv6(p.addr.data(), b) : mrt::format_ipv4(p.addr.data(), b);
    return fmt::format("{}/{}", std::string_view(b, n), p.len);
}
std::string v4_text(const std::array<uint8_t, 4>& a) {
    char b[16];
    return std::string(b, mrt::format_ipv4(a.data(), b));
}
std::string v6_text(const std::array<uint8_t, 16>& a) {
    char b[64];
    return std::string(b, mrt::format_ipv6(a.data(), b));
}
std::string hex(std::span<const uint8_t> v) {
    static const char* d = "0123456789abcdef";
    std::string s;
    s.reserve(v.size() * 2);
    for (uint8_t c : v) {
        s.push_back(d[c >> 4]);
        s.push_back(d[c & 15]);
    }
    return s;
}
std::string family_name(int afi, int safi) { return bgp::AfiSafi{uint16_t(afi), uint8_t(safi)}.to_string(); }

// The origin AS: the last AS of the path when it ends in an AS_SEQUENCE.
std::optional<uint32_t> origin_as(const bgp::AsPath& p) {
    for (auto it = p.rbegin(); it != p.rend(); ++it) {
        if (it->type == bgp::as_confed_sequence || it->type == bgp::as_confed_set) continue;
        if (it->type == bgp::as_sequence && !it->asns.empty()) return it->asns.back();
        if (it->type == bgp::as_sequence) continue;
        return std::nullopt;  // AS_SET: no single origin (RFC 6811 2)
    }
    return std::nullopt;
}

// Attribute fields shared by bgp_message, bgp_rib entries and bgp_route.
void add_attrs(Record& r, const mrt::Attrs& a, bool with_next_hop) {
    if (a.has(bgp::attr::origin))
        r.str("origin", a.origin == 0 ? "igp" : a.origin == 1 ? "egp" : a.origin == 2 ? "incomplete" : "invalid");
    if (a.has(bgp::attr::as_path)) {
        auto p = mrt::as_path(a);
        r.str("as_path", a.as_path_error ? "" : bgp::to_string(p));
        if (auto o = origin_as(p); o && !a.as_path_error) r.num("origin_as", uint64_t{*o});
        if (a.asn_len == 2 && a.has(bgp::attr::as4_path)) r.boolean("as4_path_merged", true);
    }
    if (with_next_hop && a.has(bgp::attr::next_hop)) r.str("next_hop", v4_text(a.next_hop));
    if (a.has(bgp::attr::med)) r.num("med", uint64_t{a.med});
    if (a.has(bgp::attr::local_pref)) r.num("local_pref", uint64_t{a.local_pref});
    if (a.has(bgp::attr::atomic_aggregate)) r.boolean("atomic_aggregate", true);
    if (a.has(bgp::attr::aggregator)) {
        uint32_t as = a.aggregator_as;
        auto addr = a.aggregator_addr;
        if (a.asn_len == 2 && as == bgp::as_trans && a.has(bgp::attr::as4_aggregator)) {
            as = a.as4_aggregator_as;
            addr = a.as4_aggregator_addr;
        }
        r.str("aggregator", fmt::format("{} {}", as, v4_text(addr)));
    }
    add_community_fields(r, a.has(bgp::attr::communities) ? &a.communities : nullptr, a.large_communities, a.ext_communities);
    if (a.has(bgp::attr::originator_id)) {
        std::array<uint8_t, 4> b{uint8_t(a.originator_id >> 24), uint8_t(a.originator_id >> 16), uint8_t(a.originator_id >> 8),
                                 uint8_t(a.originator_id)};
        r.str("originator_id", v4_text(b));
    }
    if (!a.cluster_list.empty()) {
        std::vector<std::string> v;
        for (auto c : a.cluster_list) v.push_back(v4_text({uint8_t(c >> 24), uint8_t(c >> 16), uint8_t(c >> 8), uint8_t(c)}));
        r.strings("cluster_list", v);
    }
    if (!a.unknown.empty()) {
        std::vector<Record> v;
        for (auto& u : a.unknown) {
            Record x("attr");
            x.num("code", unsigned{u.type}).num("flags", unsigned{u.flags}).str("value_hex", hex(u.value));
            v.push_back(std::move(x));
        }
        r.objects("unknown_attributes", v);
    }
    if (a.other_families) r.num("other_families", unsigned{a.other_families});
}

// ---- the decoder ----------------------------------------------------------------------------
struct MsgMeta {
    int64_t ts_us = 0;
    const char* source = "mrt";
    std::string mrt_type, mrt_subtype;
    std::string peer, local;
    uint32_t peer_as = 0, local_as = 0;
    bool sent = false;  // *_LOCAL: the collector sent it
    bool as4 = true;
    bool addpath = false;
    uint64_t session = 0;  // pcap: the TCP connection number
};

class Decoder {
public:
    Decoder(Mode mode, bool routes, Warnings& w) : mode_(mode), routes_(routes), warn_(w) {}
    Sink out;
    uint64_t records = 0, messages = 0, skipped = 0;
    mrt::BgpdumpFormatter fmt;

    void emit(const Record& r) {
        if (mode_ == Mode::json) {
            out.buf += r.json();
        } else {
            out.buf += r.type();
            out.buf.push_back(' ');
            out.buf += r.text_line();
        }
        out.buf.push_back('\n');
    }
    template <class Where>
    void flush_fmt_warnings(Where&& where) {
        if (fmt.warnings.empty()) return;
        std::string w = where();
        for (auto& x : fmt.warnings) warn_.add(w, x);
        fmt.warnings.clear();
    }

    // One BGP message (header included), from an MRT BGP4MP record or a TCP stream.
    void message(const MsgMeta& mm, std::span<const uint8_t> msg, const std::string& where) {
        ++messages;
        auto f = bgp::check_frame(msg, bgp::max_extended_size);
        Record r("bgp_message");
        base(r, mm);
        if (f.status != bgp::Frame::ok) {
            r.str("message", "invalid").str("error", f.error.describe());
            warn_.add(where, "invalid BGP message header: " + f.error.describe());
            if (!routes_) emit(r);
            return;
        }
        auto body = msg.subspan(bgp::header_size, f.length - bgp::header_size);
        switch (f.type) {
        case bgp::MsgType::update: update(r, mm, body, where); return;
        case bgp::MsgType::open: {
            r.str("message", "open");
            auto d = bgp::decode_open(body);
            if (auto* o = std::get_if<bgp::Open>(&d.msg); o && d.outcome == bgp::Outcome::ok) {
                r.num("asn", uint64_t{o->asn}).num("hold_time_s", unsigned{o->hold_time});
                std::array<uint8_t, 4> id{uint8_t(o->router_id >> 24), uint8_t(o->router_id >> 16), uint8_t(o->router_id >> 8),
                                          uint8_t(o->router_id)};
                r.str("router_id", v4_text(id)).boolean("four_octet_as", o->four_octet_as);
                std::vector<std::string> fam, ap;
                for (auto& m : o->multiprotocol) fam.push_back(m.to_string());
                for (auto& m : o->add_path)
                    ap.push_back(m.af.to_string() + (m.send_receive == 1 ? ":receive" : m.send_receive == 2 ? ":send" : ":both"));
                if (!fam.empty()) r.strings("families", fam);
                if (!ap.empty()) r.strings("add_path", ap);
                if (o->route_refresh) r.boolean("route_refresh", true);
                if (o->extended_message) r.boolean("extended_message", true);
                if (o->graceful_restart) r.boolean("graceful_restart", true);
            } else {
                r.str("error", d.error ? d.error->describe() : "malformed OPEN");
                warn_.add(where, "malformed OPEN: " + (d.error ? d.error->describe() : std::string("?")));
            }
            break;
        }
        case bgp::MsgType::notification: {
            r.str("message", "notification");
            bgp::Notification n;
            if (body.size() >= 2) {
                n.code = body[0];
                n.subcode = body[1];
                n.data.assign(body.begin() + 2, body.end());
            }
            r.num("code", unsigned{n.code}).num("subcode", unsigned{n.subcode}).str("name", n.name());
            if (auto s = n.shutdown_message()) r.str("shutdown_message", *s);
            else if (!n.data.empty()) r.str("data_hex", hex(n.data));
            break;
        }
        case bgp::MsgType::keepalive: r.str("message", "keepalive"); break;
        case bgp::MsgType::route_refresh: {
            r.str("message", "route_refresh");
            if (body.size() >= 4) r.str("family", family_name(body[0] << 8 | body[1], body[3])).num("subtype", unsigned{body[2]});
            break;
        }
        }
        if (!routes_) emit(r);
    }

    void base(Record& r, const MsgMeta& mm) {
        r.num("ts_us", mm.ts_us).str("source", mm.source);
        if (!mm.mrt_type.empty()) r.str("mrt_type", mm.mrt_type).str("mrt_subtype", mm.mrt_subtype);
        if (mm.session) r.num("session", mm.session);
        r.str("peer", mm.peer).num("peer_as", uint64_t{mm.peer_as});
        if (!mm.local.empty()) r.str("local", mm.local).num("local_as", uint64_t{mm.local_as});
        r.str("direction", mm.sent ? "sent" : "received");
    }

    void update(Record& r, const MsgMeta& mm, std::span<const uint8_t> body, const std::string& where) {
        r.str("message", "update");
        // Fields from the dump reader's parser...
        attrs_.reset();
        wd_.clear();
        nlri_.clear();
        std::vector<std::string> warns;
        size_t i = 0;
        auto u16 = [&](size_t at) -> int { return at + 2 <= body.size() ? body[at] << 8 | body[at + 1] : -1; };
        int wl = u16(0);
        bool framing_ok = wl >= 0 && size_t(2 + wl + 2) <= body.size();
        int al = framing_ok ? u16(2 + size_t(wl)) : -1;
        framing_ok = framing_ok && al >= 0 && size_t(4 + wl + al) <= body.size();
        if (!framing_ok) {
            warns.push_back("UPDATE lengths exceed the message");
        } else {
            i = 2;
            mrt::parse_prefixes(body.subspan(i, size_t(wl)), mm.addpath, wd_, &warns);
            i += size_t(wl) + 2;
            mrt::AttrOptions o;
            o.asn_len = mm.as4 ? 4 : 2;
            o.addpath = mm.addpath;
            mrt::parse_attributes(body.subspan(i, size_t(al)), o, attrs_);
            for (auto& w : attrs_.warnings) warns.push_back(w);
            i += size_t(al);
            mrt::parse_prefixes(body.subspan(i), mm.addpath, nlri_, &warns);
        }
        // ...and the speaker's codec for the RFC 7606 verdict on the same bytes.
        bgp::Context ctx;
        ctx.four_octet_as = mm.as4;
        ctx.max_size = bgp::max_extended_size;
        if (mm.addpath)
            ctx.add_path_receive = {bgp::ipv4_unicast, bgp::ipv6_unicast, bgp::AfiSafi{1, 2}, bgp::AfiSafi{2, 2}};
        auto d = bgp::decode_update(body, ctx);
        for (auto& w : warns) warn_.add(where, w);
        const mrt::Attrs& a = attrs_;
        if (routes_) {
            routes(mm, a, where);
            return;
        }
        std::vector<std::string> w, an;
        std::vector<Record> wp, ap;
        auto add = [&](std::vector<std::string>& v, std::vector<Record>& pv, const std::vector<mrt::Prefix>& ps, bool v6) {
            for (auto& p : ps) {
                v.push_back(prefix_text(p, v6));
                if (mm.addpath) {
                    Record x("nlri");
                    x.str("prefix", v.back()).num("path_id", uint64_t{p.path_id});
                    pv.push_back(std::move(x));
                }
            }
        };
        add(w, wp, wd_, false);
        add(an, ap, nlri_, false);
        std::vector<std::string> fams;
        for (int afi = 1; afi <= 2; ++afi)
            for (int safi = 1; safi <= 3; ++safi) {
                if (a.unreach[afi][safi].present) add(w, wp, a.unreach[afi][safi].prefixes, afi == 2);
                if (a.reach[afi][safi].present) {
                    add(an, ap, a.reach[afi][safi].prefixes, afi == 2);
                    fams.push_back(family_name(afi, safi));
                }
            }
        if (mm.addpath) {
            r.objects("withdrawn", wp).objects("announced", ap);
        } else {
            r.strings("withdrawn", w).strings("announced", an);
        }
        add_attrs(r, a, true);
        for (int afi = 1; afi <= 2; ++afi)
            for (int safi = 1; safi <= 3; ++safi)
                if (a.reach[afi][safi].present) {
                    auto& m = a.reach[afi][safi];
                    r.str(afi == 1 ? "mp_next_hop" : "mp_next_hop6", afi == 1 ? v4_text({m.nh[0], m.nh[1], m.nh[2], m.nh[3]}) : v6_text(m.nh));
                }
        if (auto eor = std::get_if<bgp::Update>(&d.msg); eor && d.outcome == bgp::Outcome::ok)
            if (auto af = eor->end_of_rib()) r.str("end_of_rib", af->to_string());
        if (d.outcome != bgp::Outcome::ok) {
            r.str("rfc7606", bgp::to_string(d.outcome));
            if (d.outcome == bgp::Outcome::session_reset && d.error) warns.push_back("codec: " + d.error->describe());
            for (auto& x : d.warnings) warns.push_back("codec: " + x);
        }
        if (!warns.empty()) r.strings("warnings", warns);
        emit(r);
    }

    void routes(const MsgMeta& mm, const mrt::Attrs& a, const std::string&) {
        auto one = [&](const mrt::Prefix& p, bool v6, const char* action, const std::string* nh) {
            Record r("bgp_route");
            r.num("ts_us", mm.ts_us).str("source", mm.source);
            if (mm.session) r.num("session", mm.session);
            r.str("peer", mm.peer).num("peer_as", uint64_t{mm.peer_as}).str("action", action).str("prefix", prefix_text(p, v6));
            if (mm.addpath) r.num("path_id", uint64_t{p.path_id});
            if (nh) {
                add_attrs(r, a, false);
                if (!nh->empty()) r.str("next_hop", *nh);
            }
            emit(r);
        };
        for (auto& p : wd_) one(p, false, "withdraw", nullptr);
        for (int afi = 1; afi <= 2; ++afi)
            for (int safi = 1; safi <= 3; ++safi)
                if (a.unreach[afi][safi].present)
                    for (auto& p : a.unreach[afi][safi].prefixes) one(p, afi == 2, "withdraw", nullptr);
        std::string nh = a.has(bgp::attr::next_hop) ? v4_text(a.next_hop) : "";
        for (auto& p : nlri_) one(p, false, "announce", &nh);
        for (int afi = 1; afi <= 2; ++afi)
            for (int safi = 1; safi <= 3; ++safi)
                if (a.reach[afi][safi].present) {
                    auto& m = a.reach[afi][safi];
                    std::string mnh = afi == 1 ? v4_text({m.nh[0], m.nh[1], m.nh[2], m.nh[3]}) : v6_text(m.nh);
                    for (auto& p : m.prefixes) one(p, afi == 2, "announce", &mnh);
                }
    }

    // TABLE_DUMP_V2 RIB and TABLE_DUMP entries in JSON / text.
    void rib_entry_fields(Record& x, const mrt::Attrs& a, bool v6prefix) {
        add_attrs(x, a, true);
        if (v6prefix && a.reach[2][1].present) {
            auto& m = a.reach[2][1];
            if (m.nh_len == 4) x.str("next_hop", v4_text({m.nh[0], m.nh[1], m.nh[2], m.nh[3]}));
            else x.str("next_hop", v6_text(m.nh));
        }
        if (!a.warnings.empty()) x.strings("warnings", a.warnings);
    }

    mrt::Attrs attrs_;
    std::vector<mrt::Prefix> wd_, nlri_;

    Mode mode_;
    bool routes_;
    Warnings& warn_;
};

// ---- MRT ------------------------------------------------------------------------------------
int decode_mrt(const Options& opt, Mode mode) {
    std::string kind;
    auto src = open_input(opt.mrt, kind);
    std::string name = opt.mrt == "-" ? "stdin" : opt.mrt;
    Warnings warn{name};
    Decoder dec(mode, opt.routes, warn);
    std::vector<uint8_t> buf(1 << 20);
    size_t pos = 0, end = 0;
    bool eof = false;
    uint64_t offset = 0;  // of buf[pos] in the (decompressed) stream
    mrt::PeerIndex peers;
    bool have_peers = false;
    mrt::Rib rib;
    mrt::Bgp4mp bm;
    mrt::TableDump td;
    mrt::Attrs attrs;
    std::string why;
    uint64_t unknown_types = 0;

    // Makes at least n bytes available at buf[pos]; false at the end of input.
    auto ensure = [&](size_t n) {
        while (end - pos < n) {
            if (eof) return false;
            if (pos > 0) {
                std::memmove(buf.data(), buf.data() + pos, end - pos);
                end -= pos;
                pos = 0;
            }
            if (buf.size() < n) buf.resize(std::max(n, buf.size() * 2));
            size_t k = src->read(buf.data() + end, buf.size() - end);
            if (k == 0) {
                eof = true;
                return end - pos >= n;
            }
            end += k;
            if (opt.mrt == "-") dec.out.flush();  // stream when reading a pipe
        }
        return true;
    };

    auto fail_truncated = [&](const std::string& what) {
        dec.out.flush();
        warn.summary();
        edge::usage_error("{}: {} at byte {} (after {} complete records{}); the records before it were printed", name, what,
                          offset, dec.records, src->cut ? ", compressed data cut short" : "");
    };

    for (;;) {
        if (!ensure(mrt::header_size)) {
            if (end - pos > 0) fail_truncated(fmt::format("truncated MRT header ({} of 12 bytes)", end - pos));
            if (src->cut) fail_truncated("compressed data cut short");
            break;
        }
        mrt::Header h;
        if (h.type = uint16_t(buf[pos + 4] << 8 | buf[pos + 5]); h.type == mrt::type_bgp4mp_et && !ensure(16))
            fail_truncated("truncated MRT header");
        mrt::parse_header({buf.data() + pos, end - pos}, h);
        bool known = h.type == mrt::type_table_dump || h.type == mrt::type_table_dump_v2 || h.type == mrt::type_bgp4mp ||
                     h.type == mrt::type_bgp4mp_et || h.type == 11 || h.type == 32 || h.type == 33 || h.type == 48 ||
                     h.type == 49 || h.type <= 10;
        if (h.length > mrt::max_record_length || (!known && dec.records == 0)) {
            dec.out.flush();
            if (dec.records)
                edge::usage_error("{}: corrupt MRT record at byte {} (type {}, length {}) after {} good records; the records before it were printed",
                                  name, offset, h.type, h.length, dec.records);
            edge::usage_error("{}: not an MRT file (first record: type {}, length {}); a capture needs --pcap", name, h.type, h.length);
        }
        if (!ensure(h.header_len + h.length))
            fail_truncated(fmt::format("truncated {} record (length {}, {} bytes present)", mrt::type_name(h.type), h.length,
                                       end - pos - h.header_len));
        std::span<const uint8_t> body(buf.data() + pos + h.header_len, h.length);
        ++dec.records;
        auto where_f = [&] { return fmt::format("record {}", dec.records); };
        int64_t ts_us = int64_t(h.timestamp) * 1000000 + h.microseconds;
        switch (h.type) {
        case mrt::type_bgp4mp:
        case mrt::type_bgp4mp_et: {
            if (!mrt::parse_bgp4mp(h, body, bm, why)) {
                warn.add(where_f(), why);
                ++dec.skipped;
                break;
            }
            if (mode == Mode::bgpdump) {
                dec.fmt.bgp4mp(h, bm, dec.out.buf);
                dec.flush_fmt_warnings(where_f);
                break;
            }
            std::string where = where_f();
            MsgMeta mm;
            mm.ts_us = ts_us;
            mm.mrt_type = mrt::type_name(h.type);
            mm.mrt_subtype = mrt::subtype_name(h.type, h.subtype);
            mm.peer = bm.peer_ip.to_string();
            mm.local = bm.local_ip.to_string();
            mm.peer_as = bm.peer_as;
            mm.local_as = bm.local_as;
            mm.sent = bm.local;
            mm.as4 = bm.as4;
            mm.addpath = bm.addpath;
            if (bm.state) {
                if (opt.routes) break;
                Record r("bgp_message");
                dec.base(r, mm);
                r.str("message", "state_change").str("old_state", mrt::state_name(bm.old_state)).str("new_state", mrt::state_name(bm.new_state));
                dec.emit(r);
                break;
            }
            dec.message(mm, bm.msg, where);
            break;
        }
        case mrt::type_table_dump_v2: {
            if (h.subtype == mrt::td2::peer_index_table) {
                if (!mrt::parse_peer_index(body, peers, why)) {
                    warn.add(where_f(), why);
                }
                have_peers = true;
                if (mode == Mode::bgpdump || opt.routes) break;
                Record r("mrt_peer_index");
                std::array<uint8_t, 4> cid{uint8_t(peers.collector_id >> 24), uint8_t(peers.collector_id >> 16),
                                           uint8_t(peers.collector_id >> 8), uint8_t(peers.collector_id)};
                r.num("ts_us", ts_us).str("collector_id", v4_text(cid)).str("view", peers.view);
                std::vector<Record> ps;
                for (auto& p : peers.peers) {
                    Record x("peer");
                    std::array<uint8_t, 4> id{uint8_t(p.bgp_id >> 24), uint8_t(p.bgp_id >> 16), uint8_t(p.bgp_id >> 8), uint8_t(p.bgp_id)};
                    x.str("peer", p.ip.to_string()).num("peer_as", uint64_t{p.asn}).str("bgp_id", v4_text(id));
                    ps.push_back(std::move(x));
                }
                r.objects("peers", ps);
                dec.emit(r);
                break;
            }
            if (!mrt::parse_rib(h.subtype, body, rib, why)) {
                warn.add(where_f(), why);
                ++dec.skipped;
                break;
            }
            if (!have_peers) {
                warn.add(where_f(), "RIB record before any PEER_INDEX_TABLE");
                ++dec.skipped;
                break;
            }
            if (mode == Mode::bgpdump) {
                dec.fmt.rib(h, rib, peers, dec.out.buf);
                dec.flush_fmt_warnings(where_f);
                break;
            }
            mrt::Prefix px;
            px.len = rib.prefix_len;
            px.addr = rib.prefix;
            std::string prefix = prefix_text(px, rib.afi == 2);
            std::vector<Record> entries;
            for (auto& e : rib.entries) {
                attrs.reset();
                mrt::AttrOptions o;
                o.asn_len = 4;
                o.addpath = rib.addpath;
                o.mrt_abbreviated = true;
                mrt::parse_attributes(e.attrs, o, attrs);
                for (auto& w : attrs.warnings) warn.add(where_f(), w);
                bool known_peer = e.peer_index < peers.peers.size();
                if (!known_peer) warn.add(where_f(), fmt::format("RIB entry for unknown peer index {}", e.peer_index));
                Record x(opt.routes ? "bgp_route" : "rib_entry");
                if (opt.routes) {
                    x.num("ts_us", ts_us).str("source", "mrt");
                }
                x.str("peer", known_peer ? peers.peers[e.peer_index].ip.to_string() : "")
                    .num("peer_as", uint64_t{known_peer ? peers.peers[e.peer_index].asn : 0});
                if (opt.routes) x.str("action", "rib").str("prefix", prefix);
                x.num("originated_ts_us", int64_t{e.originated} * 1000000);
                if (rib.addpath) x.num("path_id", uint64_t{e.path_id});
                dec.rib_entry_fields(x, attrs, rib.afi == 2);
                if (opt.routes) dec.emit(x);
                else entries.push_back(std::move(x));
            }
            if (!opt.routes) {
                Record r("bgp_rib");
                r.num("ts_us", ts_us).str("source", "mrt").str("mrt_type", "TABLE_DUMP_V2").str("mrt_subtype", mrt::subtype_name(h.type, h.subtype));
                r.num("sequence", uint64_t{rib.sequence}).str("prefix", prefix).objects("entries", entries);
                dec.emit(r);
            }
            break;
        }
        case mrt::type_table_dump: {
            if (!mrt::parse_table_dump(h.subtype, body, td, why)) {
                warn.add(where_f(), why);
                ++dec.skipped;
                break;
            }
            if (mode == Mode::bgpdump) {
                dec.fmt.table_dump(h, td, dec.out.buf);
                dec.flush_fmt_warnings(where_f);
                break;
            }
            attrs.reset();
            mrt::AttrOptions o;
            o.asn_len = td.as4 ? 4 : 2;
            mrt::parse_attributes(td.attrs, o, attrs);
            for (auto& w : attrs.warnings) warn.add(where_f(), w);
            mrt::Prefix px;
            px.len = td.prefix_len;
            px.addr = td.prefix.b;
            Record x(opt.routes ? "bgp_route" : "bgp_rib");
            x.num("ts_us", ts_us).str("source", "mrt");
            if (!opt.routes) x.str("mrt_type", "TABLE_DUMP").str("mrt_subtype", mrt::subtype_name(h.type, h.subtype)).num("sequence", unsigned{td.sequence});
            x.str("peer", td.peer_ip.to_string()).num("peer_as", uint64_t{td.peer_as});
            if (opt.routes) x.str("action", "rib");
            x.str("prefix", prefix_text(px, td.v6)).num("originated_ts_us", int64_t{td.originated} * 1000000);
            dec.rib_entry_fields(x, attrs, td.v6);
            dec.emit(x);
            break;
        }
        default:
            ++unknown_types;
            ++dec.skipped;
            if (unknown_types == 1) warn.add(where_f(), fmt::format("skipping MRT records of type {} (not BGP)", h.type));
            break;
        }
        pos += h.header_len + h.length;
        offset += h.header_len + h.length;
        dec.out.maybe_flush();
    }
    dec.out.flush();
    warn.summary();
    edge::out::debug(fmt::format("{}: {} records ({}), {} BGP messages, {} skipped", name, dec.records, kind, dec.messages, dec.skipped));
    return 0;
}

// ---- pcap: TCP reassembly -----------------------------------------------------------------
struct Dir {
    bool init = false;
    uint32_t next = 0;
    std::map<uint32_t, std::vector<uint8_t>> ooo;  // segments ahead of `next`
    size_t ooo_bytes = 0;
    std::vector<uint8_t> buf;
    size_t off = 0;
    std::optional<bgp::Open> open;
    // -m: what every line of this direction shares, valid while no OPEN changed (opens_seen).
    mrt::Bgp4mp line;
    uint64_t line_stamp = ~uint64_t{0};
    const LinePool::Peer* line_peer = nullptr;  // `line` in the pool, when it runs
    net::IpAddr addr;
    uint16_t port = 0;
    uint64_t retransmitted = 0, reordered = 0, resyncs = 0;
};
struct Conn {
    Dir d[2];
    uint64_t id = 0;
};

struct ConnKey {
    std::array<uint8_t, 16> a{}, b{};
    uint16_t pa = 0, pb = 0;
    bool v6 = false;
    auto operator<=>(const ConnKey&) const = default;
};

int decode_pcap(const Options& opt, Mode mode) {
    edge::pcap::FileReader rd(opt.pcap);
    std::string name = opt.pcap == "-" ? "stdin" : opt.pcap;
    if (!rd.link()) edge::usage_error("{}: unsupported link type {} (need Ethernet, raw IP, Linux cooked or loopback)", name, rd.dlt());
    std::set<uint16_t> ports{179};
    for (auto p : opt.ports) ports.insert(p);
    Warnings warn{name};
    Decoder dec(mode, opt.routes, warn);
    std::map<ConnKey, Conn> conns;
    Conn* last_conn = nullptr;
    ConnKey last_key;
    uint64_t next_id = 1, frames = 0, tcp_segments = 0, opens_seen = 0;
    edge::pcap::Frame f;
    net::ParseOptions po;
    po.checksums = false;
    // -m on a big capture: lines are made on every core (LinePool), once enough messages
    // came to be worth it; the lines before that were made here, in dec.out.
    std::optional<LinePool> pool;
    const unsigned pool_workers = mode != Mode::bgpdump ? 0 : (opt.threads ? opt.threads : edge::pcap::scan_threads(4)) - 1;
    constexpr uint64_t pool_after = 4096;
    auto warn_at = [&](const std::string& where, const std::string& what) {
        if (pool) pool->warn(where, what);
        else warn.add(where, what);
    };

    // Decodes the complete messages at the start of `data` (a segment's payload straight from
    // the capture, or the reassembly buffer); returns the bytes used (messages and any bytes
    // skipped to find a marker). What is left is the start of an incomplete message.
    auto process = [&](Conn& c, int di, int64_t ts_us, std::span<const uint8_t> data) -> size_t {
        Dir& d = c.d[di];
        Dir& o = c.d[1 - di];
        size_t used = 0;
        for (;;) {
            std::span<const uint8_t> avail = data.subspan(used);
            if (avail.size() < bgp::header_size) break;
            // The capture is read once, front to back, a message per cache line or so: ask
            // for the lines a few messages on (the hardware's prefetch stops at each page).
            __builtin_prefetch(avail.data() + 512);
            bgp::Frame fr;
            uint64_t m0, m1;
            std::memcpy(&m0, avail.data(), 8);
            std::memcpy(&m1, avail.data() + 8, 8);
            size_t len = size_t(avail[16]) << 8 | avail[17];
            if (m0 == ~uint64_t{0} && m1 == ~uint64_t{0} && avail[18] == uint8_t(bgp::MsgType::update) && len >= 23 &&
                len <= bgp::max_extended_size) {  // the usual case, checked in place
                if (avail.size() < len) break;
                fr.status = bgp::Frame::ok;
                fr.length = len;
                fr.type = bgp::MsgType::update;
            } else {
                fr = bgp::check_frame(avail, bgp::max_extended_size);
            }
            if (fr.status == bgp::Frame::need_more) break;
            if (fr.status == bgp::Frame::bad) {
                // Not at a message boundary (capture started mid-stream, or a gap): find the next marker.
                size_t k = 1;
                for (; k + 16 <= avail.size(); ++k) {
                    bool m = true;
                    for (size_t j = 0; j < 16 && m; ++j) m = avail[k + j] == 0xff;
                    if (m) break;
                }
                if (d.resyncs++ == 0)
                    warn_at(fmt::format("session {}", c.id), fmt::format("{}:{}: not at a BGP message boundary; skipping to the next marker", d.addr.to_string(), d.port));
                used += std::min(k, avail.size() - 15);
                continue;
            }
            auto msg = avail.first(fr.length);
            uint32_t peer_as = 0, local_as = 0;
            bool as4 = true, ap = false;
            if (mode != Mode::bgpdump || d.line_stamp != opens_seen || fr.type == bgp::MsgType::open) {
                peer_as = d.open ? d.open->asn : 0;
                local_as = o.open ? o.open->asn : 0;
                as4 = (!d.open || d.open->four_octet_as) && (!o.open || o.open->four_octet_as);
                if (d.open && o.open)
                    for (auto& x : d.open->add_path)
                        for (auto& y : o.open->add_path)
                            if (x.af == y.af && (x.send_receive & 2) && (y.send_receive & 1)) ap = true;
            }
            if (fr.type == bgp::MsgType::open) {
                auto od = bgp::decode_open(msg.subspan(bgp::header_size));
                if (auto* op = std::get_if<bgp::Open>(&od.msg); op && od.outcome == bgp::Outcome::ok) {
                    d.open = *op;
                    ++opens_seen;
                    peer_as = op->asn;
                }
            }
            auto where = [&] { return fmt::format("session {} {}:{}", c.id, d.addr.to_string(), d.port); };
            if (mode == Mode::bgpdump) {
                mrt::Header h;
                h.type = mrt::type_bgp4mp_et;
                h.timestamp = uint32_t(ts_us / 1000000);
                h.microseconds = uint32_t(ts_us % 1000000);
                mrt::Bgp4mp& b = d.line;
                if (d.line_stamp != opens_seen || fr.type == bgp::MsgType::open) {
                    b = mrt::Bgp4mp{};
                    b.as4 = as4;
                    b.addpath = ap;
                    b.peer_as = peer_as;
                    b.local_as = local_as;
                    b.afi = d.addr.is_v4() ? 1 : 2;
                    b.peer_ip.v6 = d.addr.is_v6();
                    std::memcpy(b.peer_ip.b.data(), d.addr.bytes().data(), d.addr.bytes().size());
                    d.line_stamp = fr.type == bgp::MsgType::open ? ~uint64_t{0} : opens_seen;
                    d.line_peer = nullptr;
                }
                if (!pool && pool_workers && dec.messages >= pool_after) {
                    dec.out.flush();
                    pool.emplace(pool_workers, &Sink::write_all, [&](const std::string& w, const std::string& x) { warn.add(w, x); });
                }
                if (pool) {
                    if (!d.line_peer) d.line_peer = pool->peer(b, where());
                    // Bytes of a mapped capture stay put; the reassembly buffers do not.
                    bool stable = rd.mapped() && msg.data() >= f.data.data() && msg.data() + msg.size() <= f.data.data() + f.data.size();
                    pool->add(d.line_peer, ts_us, msg, stable);
                } else {
                    b.msg = msg;
                    dec.fmt.bgp4mp(h, b, dec.out.buf);
                    dec.flush_fmt_warnings(where);
                }
                ++dec.messages;
            } else {
                MsgMeta mm;
                mm.ts_us = ts_us;
                mm.source = "pcap";
                mm.session = c.id;
                mm.peer = d.addr.to_string();
                mm.local = o.addr.to_string();
                mm.peer_as = peer_as;
                mm.local_as = local_as;
                mm.as4 = as4;
                mm.addpath = ap;
                dec.message(mm, msg, where());
            }
            used += fr.length;
        }
        return used;
    };
    // In-order bytes of one direction. Whole messages are decoded in place; only a message
    // split across segments is gathered in d.buf (with just the bytes that complete it).
    auto feed = [&](Conn& c, int di, int64_t ts_us, std::span<const uint8_t> data) {
        Dir& d = c.d[di];
        while (d.off < d.buf.size() && !data.empty()) {
            size_t have = d.buf.size() - d.off, want = 0;
            if (have < bgp::header_size) {
                want = bgp::header_size - have;
            } else {
                auto fr = bgp::check_frame(std::span<const uint8_t>(d.buf).subspan(d.off), bgp::max_extended_size);
                want = fr.status == bgp::Frame::need_more && fr.length > have ? fr.length - have : data.size();
            }
            size_t k = std::min(want, data.size());
            d.buf.insert(d.buf.end(), data.begin(), data.begin() + long(k));
            data = data.subspan(k);
            d.off += process(c, di, ts_us, std::span<const uint8_t>(d.buf).subspan(d.off));
            if (d.off == d.buf.size()) {
                d.buf.clear();
                d.off = 0;
            } else if (d.off > (1u << 16) && d.off * 2 > d.buf.size()) {
                d.buf.erase(d.buf.begin(), d.buf.begin() + long(d.off));
                d.off = 0;
            }
        }
        if (data.empty()) return;
        size_t used = process(c, di, ts_us, data);
        d.buf.assign(data.begin() + long(used), data.end());
        d.off = 0;
    };

    while (rd.next(f)) {
        ++frames;
        auto p = net::parse_packet(f.data, *rd.link(), po);
        if (!p.ok() || p.proto != 6 || !p.has_l4) continue;
        if (!ports.count(p.sport) && !ports.count(p.dport)) continue;
        ++tcp_segments;
        ConnKey k;
        k.v6 = p.src.is_v6();
        auto sa = p.src.bytes(), da = p.dst.bytes();
        std::array<uint8_t, 16> s{}, t{};
        std::memcpy(s.data(), sa.data(), sa.size());
        std::memcpy(t.data(), da.data(), da.size());
        int di;
        if (std::tie(s, p.sport) < std::tie(t, p.dport)) {
            k.a = s, k.pa = p.sport, k.b = t, k.pb = p.dport;
            di = 0;
        } else {
            k.a = t, k.pa = p.dport, k.b = s, k.pb = p.sport;
            di = 1;
        }
        // Consecutive segments mostly belong to one connection: skip the map for those
        // (map nodes do not move).
        bool fresh = false;
        if (!last_conn || !(k == last_key)) {
            auto [it, added] = conns.try_emplace(k);
            fresh = added;
            last_conn = &it->second;
            last_key = k;
        }
        Conn& c = *last_conn;
        if (fresh) {
            c.id = next_id++;
            c.d[di].addr = p.src, c.d[di].port = p.sport;
            c.d[1 - di].addr = p.dst, c.d[1 - di].port = p.dport;
        }
        Dir& d = c.d[di];
        auto payload = f.data.subspan(std::min(p.payload_off, f.data.size()), std::min(p.payload_len, f.data.size() - std::min(p.payload_off, f.data.size())));
        uint32_t seq = p.tcp_seq;
        if (p.tcp_flags & net::TcpFlags::syn) {
            if (d.init && !d.buf.empty() && d.off < d.buf.size())
                warn_at(fmt::format("session {}", c.id), "new SYN while a message was incomplete");
            // A new connection on the same 4-tuple starts afresh.
            d.buf.clear(), d.off = 0, d.ooo.clear(), d.ooo_bytes = 0;
            if (d.init && d.next != seq + 1) {
                d.open.reset();
                ++opens_seen;
            }
            d.init = true;
            d.next = seq + 1;
            seq += 1;
        }
        if (payload.empty()) continue;
        if (!d.init) {  // the capture started after the handshake
            d.init = true;
            d.next = seq;
        }
        int32_t diff = int32_t(seq - d.next);
        if (diff > 0) {  // a hole before this segment: keep it for later
            auto& slot = d.ooo[seq];
            if (slot.size() < payload.size()) {
                d.ooo_bytes += payload.size() - slot.size();
                slot.assign(payload.begin(), payload.end());
            }
            ++d.reordered;
            if (d.ooo_bytes > (64u << 20)) {  // the hole is never filled: give up on it
                warn_at(fmt::format("session {}", c.id), "bytes missing from the capture; skipping the hole");
                d.buf.resize(d.off);
                d.next = d.ooo.begin()->first;
            } else {
                continue;
            }
        } else {
            size_t skip = size_t(-int64_t(diff));
            if (skip >= payload.size()) {
                ++d.retransmitted;
                continue;
            }
            if (skip) ++d.retransmitted;
            d.next += uint32_t(payload.size() - skip);
            feed(c, di, f.ts_us, payload.subspan(skip));
        }
        // Fill in from held segments now contiguous.
        while (!d.ooo.empty()) {
            auto first = d.ooo.begin();
            int32_t dd = int32_t(first->first - d.next);
            if (dd > 0) break;
            size_t skip = size_t(-int64_t(dd));
            std::vector<uint8_t> held = std::move(first->second);
            d.ooo_bytes -= held.size();
            d.ooo.erase(first);
            if (skip < held.size()) {
                d.next += uint32_t(held.size() - skip);
                feed(c, di, f.ts_us, std::span<const uint8_t>(held).subspan(skip));
            }
        }
        dec.out.maybe_flush();
    }
    if (pool) pool->finish();
    dec.out.flush();
    for (auto& [k, c] : conns)
        for (auto& d : c.d)
            if (d.off < d.buf.size() || !d.ooo.empty())
                warn.add(fmt::format("session {}", c.id), fmt::format("{}:{}: capture ends inside a BGP message ({} bytes left over)",
                                                                     d.addr.to_string(), d.port, d.buf.size() - d.off + d.ooo_bytes));
    warn.summary();
    edge::out::debug(fmt::format("{}: {} frames, {} TCP segments on BGP ports, {} sessions, {} BGP messages", name, frames,
                                 tcp_segments, conns.size(), dec.messages));
    if (rd.truncated()) edge::usage_error("{}: capture cut short ({}); the messages before it were printed", name, rd.error());
    return 0;
}

}  // namespace

void add_decode_command(edge::cli::Tool& tool) {
    static Options opt;
    auto* cmd = tool.command("decode", "Decode BGP from an MRT dump (--mrt) or a packet capture (--pcap)", [&tool] {
        if (opt.mrt.empty() == opt.pcap.empty()) edge::usage_error("decode needs exactly one of --mrt FILE or --pcap FILE");
        Mode mode = opt.bgpdump ? Mode::bgpdump : tool.globals().json ? Mode::json : Mode::text;
        if (opt.bgpdump && opt.routes) edge::usage_error("-m already prints one line per route: drop --routes");
        if (!opt.mrt.empty()) return decode_mrt(opt, mode);
        return decode_pcap(opt, mode);
    });
    tool.file(cmd->add_option("--mrt", opt.mrt, "MRT dump to read (gzip and bzip2 are read transparently; - for stdin)"));
    tool.file(cmd->add_option("--pcap", opt.pcap, "Packet capture to read (pcap or pcapng; - for stdin)"));
    cmd->add_option("--port", opt.ports, "Also reassemble TCP on this port as BGP (179 always is; repeatable)");
    cmd->add_flag("--routes", opt.routes, "One record per prefix (bgp_route) instead of one per message");
    cmd->add_flag("-m,--bgpdump", opt.bgpdump, "One line per route, byte-identical to bgpdump -m");
    cmd->add_option("-t,--threads", opt.threads, "Threads making -m lines of a capture (0 = one per core, up to 4; 1 = no extra threads)")
        ->check(CLI::Range(0u, 64u));
}

}  // namespace bgp_announce
