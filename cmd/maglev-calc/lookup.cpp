// maglev-calc lookup: the backend for each flow, from arguments, JSON Lines or a capture.
#include <fmt/format.h>

#include "cli/error.hpp"
#include "flows/flow_map.hpp"
#include "jsonl/reader.hpp"
#include "net/flow.hpp"
#include "options.hpp"
#include "pcap/scan.hpp"
#include "pcap/filter.hpp"
#include "records/flow.hpp"

namespace maglev_calc {

namespace {
struct Lookup {
    const edge::maglev::Table& table;
    edge::hash::Key key;
    edge::out::Output& out;

    void emit(const edge_flow_key& k) {
        uint64_t h = edge::hash::flow_hash(k, key);
        uint32_t slot = table.slot(h);
        const auto& name = table.backends()[table.entries()[slot]].name;
        auto r = edge::records::flow(k);
        r.str("flow_hash", fmt::format("{:016x}", h)).num("slot", uint64_t{slot}).str("backend", name);
        r.text(fmt::format("{} -> {}", edge::net::format_flow(k), name));
        out.emit(r);
    }
};

int from_stdin(Lookup& l, const std::string& path) {
    edge::jsonl::Reader in(path);
    edge::json::Value doc;
    uint64_t bad = 0, other = 0;
    edge::jsonl::Reader::Status st;
    while ((st = in.next(doc)) != edge::jsonl::Reader::Status::end) {
        std::string err;
        if (st == edge::jsonl::Reader::Status::bad_line) {
            err = in.error();
        } else {
            std::string_view type;
            if (!edge::jsonl::get_string(doc, "type", type)) {
                err = "no \"type\" field";
            } else if (type != "flow") {
                other++;
                continue;
            } else {
                auto k = edge::records::flow_from_json(doc);
                if (k) {
                    l.emit(*k);
                    continue;
                }
                err = k.error();
            }
        }
        if (++bad <= 10) edge::out::warn(fmt::format("{}:{}: skipped: {}", in.name(), in.line_number(), err));
    }
    if (other) edge::out::info(fmt::format("{}: ignored {} records of other types", in.name(), other));
    if (bad) {
        edge::out::warn(fmt::format("{}: skipped {} bad lines of {}", in.name(), bad, in.line_number()));
        return edge::exit_usage;
    }
    return edge::exit_ok;
}
}  // namespace

int run_lookup(const Options& o, edge::out::Output& out) {
    auto backends = load_backends(o.backends, "backends");
    auto table = build_table(backends, o.size);
    Lookup l{table, hash_key(o), out};
    if (!o.pcap.empty() && !o.flows.empty()) edge::usage_error("give flows either as arguments or with --pcap, not both");
    if (o.pcap.empty() && o.flows.empty())
        edge::usage_error("no flows given: pass SRC:PORT-DST:PORT/PROTO arguments, '-' for JSON Lines on stdin, or --pcap FILE");

    if (!o.pcap.empty()) {
        // One record per distinct flow, at its first packet, so output streams.
        edge::pcap::Reader r(o.pcap);
        edge::pcap::apply_filter(r, o.filter);
        edge::flows::FlowMap<char> seen;
        auto st = edge::pcap::scan(r, [&](const edge::net::Packet& p, const edge::pcap::Frame&) {
            bool fresh;
            seen.get(p.key, edge::hash::flow_hash(p.key, l.key), fresh);
            if (fresh) l.emit(p.key);
        });
        return edge::pcap::report(r, st);
    }
    // Parse every argument first: a typo should fail before any output.
    std::vector<edge_flow_key> keys;
    bool use_stdin = false;
    for (auto& f : o.flows) {
        if (f == "-") {
            use_stdin = true;
            continue;
        }
        auto k = edge::net::parse_flow(f);
        if (!k) edge::usage_error("bad flow '{}': {}", f, k.error());
        keys.push_back(*k);
    }
    for (auto& k : keys) l.emit(k);
    return use_stdin ? from_stdin(l, "-") : edge::exit_ok;
}

}  // namespace maglev_calc
