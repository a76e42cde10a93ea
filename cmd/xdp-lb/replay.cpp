// xdp-lb replay: every packet of a capture through the real xdp_lb program with
// BPF_PROG_TEST_RUN (maps filled from -c exactly as `run` fills them); verdicts and
// backends as {"type":"flow",...} records, output packets to a pcap.
#include <cstring>
#include <map>
#include <unordered_map>

#include "cli/error.hpp"
#include "hash/flow_hash.hpp"
#include "net/flow.hpp"
#include "net/packet.hpp"
#include "options.hpp"
#include "out/progress.hpp"
#include "pcap/reader.hpp"
#include "pcap/writer.hpp"
#include "records/flow.hpp"
#include "replay_engine.hpp"

namespace xlb {

namespace {
struct FlowKeyHash {
    size_t operator()(const edge_flow_key& k) const { return static_cast<size_t>(edge::hash::flow_hash(k)); }
};
struct FlowKeyEq {
    bool operator()(const edge_flow_key& a, const edge_flow_key& b) const { return std::memcmp(&a, &b, sizeof a) == 0; }
};
}  // namespace

int run_replay(const Options& o, const edge::cli::Globals& g, edge::out::Output& out) {
    ReplayEngine engine(g);  // the configuration first: its errors before the capture's
    edge::pcap::Reader reader(o.pcap);
    auto link = reader.link();
    if (!link || (*link != edge::net::LinkType::ethernet && *link != edge::net::LinkType::raw_ip))
        edge::usage_error("{}: link type {} not supported: replay needs Ethernet or raw IP captures", o.pcap, reader.dlt());

    std::unique_ptr<edge::pcap::Writer> writer;
    if (!o.out.empty()) writer = std::make_unique<edge::pcap::Writer>(o.out, 1 /* Ethernet */);

    std::unordered_map<edge_flow_key, bool, FlowKeyHash, FlowKeyEq> seen;
    std::map<std::string, uint64_t> per_backend, per_verdict, per_reason;
    uint64_t frames = 0, skipped = 0;
    edge::out::Progress progress("replaying " + o.pcap, reader.size());
    edge::pcap::Frame fr;
    std::vector<uint8_t> frame;
    while (reader.next(fr)) {
        frames++;
        frame.assign(fr.data.begin(), fr.data.end());
        if (*link == edge::net::LinkType::raw_ip) {
            // A synthetic Ethernet header in front: XDP sees Ethernet frames.
            uint8_t v = frame.empty() ? 0 : frame[0] >> 4;
            std::vector<uint8_t> eth = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, uint8_t(v == 6 ? 0x86 : 0x08),
                                        uint8_t(v == 6 ? 0xdd : 0x00)};
            frame.insert(frame.begin(), eth.begin(), eth.end());
        }
        if (frame.size() < 14) {
            skipped++;
            continue;
        }
        auto r = engine.run(frame);
        std::string backend;
        if (r.verdict == 3 /* XDP_TX */ || r.verdict == 4 /* XDP_REDIRECT: encapsulated too */) {
            auto op = edge::net::parse_packet(r.data, edge::net::LinkType::ethernet, {false});
            backend = op.ip_version ? op.dst.to_string() : "";
            per_backend[backend]++;
        }
        per_verdict[r.verdict_name]++;
        per_reason[r.reason]++;
        if (writer && (r.verdict == 2 || r.verdict == 3 || r.verdict == 4 /* XDP_PASS, XDP_TX, XDP_REDIRECT */))
            writer->write(r.data, fr.ts_us);

        auto p = edge::net::parse_packet(frame, edge::net::LinkType::ethernet, {false});
        bool has_flow = p.ip_version != 0;
        bool fresh = has_flow && seen.emplace(p.key, true).second;
        if (o.per_packet || fresh) {
            auto rec = has_flow ? edge::records::flow(p.key) : edge::out::Record("flow");
            if (o.per_packet) rec.num("frame", frames);
            rec.str("verdict", r.verdict_name);
            if (backend.empty()) rec.null("backend");
            else rec.str("backend", backend);
            rec.str("reason", r.reason).num("bytes", static_cast<uint64_t>(frame.size())).num("out_bytes", static_cast<uint64_t>(r.data.size()));
            rec.text(fmt::format("{} -> {} ({}{})", has_flow ? edge::net::format_flow(p.key) : std::string("non-IP frame"),
                                 backend.empty() ? "-" : backend, r.verdict_name,
                                 r.reason == r.verdict_name ? "" : ", " + r.reason));
            out.emit(rec);
        }
        progress.tick([&] { return reader.position(); });
    }
    progress.finish();
    if (writer) writer->flush();

    auto counts = [](const std::map<std::string, uint64_t>& m) {
        edge::out::Record r("counts");
        for (auto& [k, n] : m) r.num(k, n);
        return r;
    };
    std::string text = fmt::format("{} frames, {} flows:", frames, seen.size());
    for (auto& [k, n] : per_verdict) text += fmt::format(" {} {}", k, n);
    for (auto& [k, n] : per_backend) text += fmt::format("; {} {}", k, n);
    out.emit(edge::out::Record("replay_summary")
                 .num("frames", frames)
                 .num("flows", static_cast<uint64_t>(seen.size()))
                 .num("skipped", skipped)
                 .object("verdicts", counts(per_verdict))
                 .object("backends", counts(per_backend))
                 .object("reasons", counts(per_reason))
                 .text(text));
    if (reader.truncated()) {
        edge::out::warn(fmt::format("{}: {}", o.pcap, reader.error()));
        return edge::exit_usage;
    }
    return edge::exit_ok;
}

}  // namespace xlb
