// synflood-guard detect: SYN floods in a capture, and the mitigations for bgp-announce.
#include <fmt/format.h>

#include <array>

#include "cli/error.hpp"
#include "detect/synflood.hpp"
#include "options.hpp"
#include "out/record.hpp"
#include "pcap/scan.hpp"

namespace sfg {

using edge::out::Record;

namespace {
std::vector<std::string> port_strings(const std::vector<uint16_t>& ports) {
    std::vector<std::string> v;
    for (auto p : ports) v.push_back(std::to_string(p));
    return v;
}

std::vector<Record> counts(const std::vector<edge::detect::Count>& c, const char* key) {
    std::vector<Record> v;
    for (auto& x : c) v.push_back(Record("count").str(key, x.key).num("syn", x.syn));
    return v;
}

std::string ports_text(const std::vector<uint16_t>& ports) {
    if (ports.empty()) return "any port";
    return fmt::format("port {}", fmt::join(ports, ","));
}

Record flood_record(const edge::detect::Flood& f) {
    Record r("flood");
    r.str("kind", "syn_flood").str("target", f.kind).str("dst", f.dst.to_string());
    if (f.kind == "source") r.str("src", f.src.to_string());
    if (!f.dst_ports.empty()) r.num("dst_port", unsigned{f.dst_ports[0]});
    r.strings("dst_ports", port_strings(f.dst_ports));
    r.num("start_us", f.start_us).num("end_us", f.end_us).real("start_s", f.start_s).real("duration_s", f.duration_s);
    r.num("syn", f.syn).num("syn_flows", f.syn_flows).num("syn_ack", f.syn_ack).num("completed", f.completed);
    r.num("half_open", f.half_open);
    r.real("peak_syn_pps", f.peak_syn_pps).real("mean_syn_pps", f.mean_syn_pps).real("peak_bps", f.peak_bps);
    r.real("baseline_pps", f.baseline_pps).real("threshold_pps", f.threshold_pps);
    r.real("syn_ack_ratio", f.syn_ack_ratio).real("completion_ratio", f.completion_ratio);
    r.num("distinct_sources", f.distinct_sources).real("sources_per_syn", f.sources_per_syn);
    r.num("ttl_distinct", unsigned{f.ttl_distinct}).real("ttl_stdev", f.ttl_stdev);
    r.boolean("spoofed", f.spoofed).strings("spoofing_signs", f.spoofing_signs);
    r.real("top_source_share", f.top_source_share);
    r.objects("top_sources", counts(f.top_sources, "src")).objects("top_prefixes", counts(f.top_prefixes, "prefix"));
    if (f.kind == "source")
        r.text(fmt::format("SYN flood from {} to {} ({}): peak {:.0f} SYN/s over {:.0f} s, {} SYNs, {:.1f}% completed",
                           f.src.to_string(), f.dst.to_string(), ports_text(f.dst_ports), f.peak_syn_pps,
                           f.duration_s, f.syn, 100 * f.completion_ratio));
    else
        r.text(fmt::format(
            "SYN flood on {} ({}): peak {:.0f} SYN/s (threshold {:.0f}, baseline {:.0f}) from {:.0f} s for {:.0f} s, "
            "{} SYNs, {:.1f}% completed, {} half-open, ~{} sources{}",
            f.dst.to_string(), ports_text(f.dst_ports), f.peak_syn_pps, f.threshold_pps, f.baseline_pps, f.start_s,
            f.duration_s, f.syn, 100 * f.completion_ratio, f.half_open, f.distinct_sources,
            f.spoofed ? fmt::format(", spoofed ({})", fmt::join(f.spoofing_signs, ", ")) : ""));
    return r;
}

Record mitigation_record(const edge::detect::Mitigation& m, const edge::detect::Flood& f, const Options& o) {
    Record r("mitigation");
    r.str("action", m.action).str("prefix", m.prefix.to_string()).str("dst", f.dst.to_string());
    std::string rule;
    if (m.action == "flowspec") {
        if (m.source) r.str("source", m.source->to_string());
        r.str("protocol", "tcp");
        if (m.dst_ports.size() == 1) r.num("dst_port", unsigned{m.dst_ports[0]});
        else if (!m.dst_ports.empty()) r.strings("dst_ports", port_strings(m.dst_ports));
        r.str("tcp_flags", "syn&!ack").num("rate_bytes_per_s", 0);
        rule = fmt::format("flowspec destination {}{} protocol tcp{} tcp-flags syn&!ack rate 0 (drop)",
                           m.prefix.to_string(), m.source ? " source " + m.source->to_string() : "",
                           m.dst_ports.empty() ? "" : fmt::format(" destination-port {}", fmt::join(m.dst_ports, ",")));
    } else {
        rule = fmt::format("rtbh {} (BLACKHOLE community 65535:666)", m.prefix.to_string());
    }
    r.str("reason", m.reason);
    if (o.mitigation_duration > 0) r.num("duration_s", o.mitigation_duration);
    Record ev("evidence");
    ev.real("peak_syn_pps", f.peak_syn_pps).real("threshold_pps", f.threshold_pps).real("peak_bps", f.peak_bps);
    ev.num("syn", f.syn).real("completion_ratio", f.completion_ratio).num("distinct_sources", f.distinct_sources);
    ev.boolean("spoofed", f.spoofed).num("start_us", f.start_us).num("end_us", f.end_us);
    r.object("evidence", ev);
    r.objects("top_sources", counts(f.top_sources, "src")).objects("top_prefixes", counts(f.top_prefixes, "prefix"));
    r.text("mitigation: " + rule);
    return r;
}
}  // namespace

int run_detect(const Options& o, const edge::cli::Globals& g, edge::out::Output& out) {
    (void)g;
    if (o.floor_pps <= 0) edge::usage_error("--floor-pps must be > 0, got {}", o.floor_pps);
    if (o.src_floor_pps <= 0) edge::usage_error("--src-floor-pps must be > 0, got {}", o.src_floor_pps);
    edge::detect::SynFloodParams p;
    p.floor_pps = o.floor_pps;
    p.factor = o.factor;
    p.baseline_pps = o.baseline_pps;
    p.src_floor_pps = o.src_floor_pps;
    p.max_completion = o.max_completion;
    p.action = o.action;
    p.rtbh_bps = o.rtbh_bps;
    p.top = static_cast<size_t>(o.top);

    edge::pcap::Reader reader(o.pcap);
    if (!o.filter.empty()) reader.set_filter(o.filter);
    edge::detect::SynFloodDetector det(p);
    // edge::pcap::scan with a lean path for the common frame (IPv4/TCP, see
    // SynFloodDetector::add_frame); every other frame goes through the full parser.
    edge::pcap::require_link(reader);
    edge::pcap::ScanStats st;
    {
        edge::out::Progress progress("reading " + reader.path(), reader.size());
        const edge::net::LinkType link = *reader.link();
        // Frames of a mapped capture stay valid after the next read: read kAhead frames
        // ahead and let the detector read their headers and fetch the table slots they
        // will touch while it counts this one (the capture's bytes, and under a flood of
        // random sources each SYN's slots, are cache misses otherwise). Counting is
        // still in capture order. Other captures (pcapng, pipes) go one frame at a time.
        constexpr size_t kAhead = 4;
        const size_t ahead = reader.mapped() ? kAhead : 0;
        std::array<edge::pcap::Frame, 8> ring;  // a power of two > kAhead
        static_assert(kAhead < ring.size() && (ring.size() & (ring.size() - 1)) == 0);
        constexpr size_t kMask = ring.size() - 1;
        size_t head = 0, filled = 0;  // ring[head] is the next frame to count
        while (filled < ahead && reader.next(ring[filled])) filled++;
        bool more = filled == ahead;  // false: the reader is done (end, error)
        while (true) {
            if (more) {
                edge::pcap::Frame& in = ring[(head + filled) & kMask];
                if (reader.next(in)) {
                    filled++;
                    if (ahead) det.prefetch_frame(in.data, link);
                } else {
                    more = false;
                }
            }
            if (!filled) break;
            const edge::pcap::Frame& fr = ring[head];
            head = (head + 1) & kMask;
            filled--;
            st.frames++;
            st.bytes += fr.wire_len;
            if (det.add_frame(fr.data, link, fr.ts_us, fr.wire_len)) {
                st.ip++;
            } else {
                edge::net::Packet pk = edge::net::parse_packet(fr.data, link, {false});
                switch (pk.status) {
                case edge::net::ParseStatus::ok:
                    st.ip++;
                    det.add(pk, fr.ts_us, fr.wire_len);
                    break;
                case edge::net::ParseStatus::not_ip: st.non_ip++; break;
                case edge::net::ParseStatus::truncated: st.truncated++; break;
                default: st.malformed++; break;
                }
            }
            progress.tick([&] { return reader.position(); });
        }
        progress.finish();
        st.file_truncated = reader.truncated();
        st.file_error = reader.error();
    }
    int rc = edge::pcap::report(reader, st);
    auto rep = det.finish();

    for (auto& f : rep.floods) out.emit(flood_record(f));
    for (auto& m : rep.mitigations) out.emit(mitigation_record(m, rep.floods[m.flood], o));
    if (o.series)
        for (auto& s : rep.series)
            out.emit(Record("syn_second")
                         .str("dst", s.dst.to_string())
                         .num("second", unsigned{s.second})
                         .num("syn", s.syn)
                         .num("syn_ack", s.syn_ack)
                         .num("syn_bytes", s.syn_bytes)
                         .text(fmt::format("{} second {}: {} SYN, {} SYN-ACK", s.dst.to_string(), s.second, s.syn,
                                           s.syn_ack)));
    Record sum("summary");
    sum.num("frames", st.frames).num("packets", rep.packets).num("bytes", rep.bytes).num("tcp", rep.tcp);
    sum.num("syn", rep.syn).num("syn_ack", rep.syn_ack).num("rst", rep.rst).num("syn_flows", rep.syn_flows);
    sum.real("flow_sample_rate", rep.flow_sample_rate);
    sum.num("completed", rep.completed).num("destinations", rep.destinations).num("sources", rep.sources);
    sum.real("seconds", rep.seconds).num("floods", static_cast<uint64_t>(rep.floods.size()));
    sum.num("mitigations", static_cast<uint64_t>(rep.mitigations.size()));
    sum.num("skipped", st.non_ip + st.truncated + st.malformed).boolean("capture_truncated", st.file_truncated);
    sum.text(fmt::format("{} packets over {:.1f} s: {} SYN, {} SYN-ACK, {} handshakes completed; {} flood(s), {} mitigation(s)",
                         rep.packets, rep.seconds, rep.syn, rep.syn_ack, rep.completed, rep.floods.size(),
                         rep.mitigations.size()));
    out.emit(sum);
    if (rc != edge::exit_ok) return rc;
    return rep.floods.empty() ? edge::exit_ok : edge::exit_failure;
}

}  // namespace sfg
