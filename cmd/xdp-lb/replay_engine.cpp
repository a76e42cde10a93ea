#include "replay_engine.hpp"

#include <linux/bpf.h>

#include "lb.hpp"
#include "xdp_lb.skel.h"

namespace xlb {

struct ReplayEngine::Impl {
    xdp_lb* s = nullptr;
    std::unique_ptr<Controller> ctl;
    std::vector<uint64_t> before = std::vector<uint64_t>(XLB_R_COUNT), after = std::vector<uint64_t>(XLB_R_COUNT);
    ~Impl() {
        if (s) xdp_lb__destroy(s);
    }
    void read(std::vector<uint64_t>& v) {
        for (uint32_t r = 0; r < XLB_R_COUNT; r++) v[r] = percpu_sum(bpf_map__fd(s->maps.xlb_reasons), r, 1)[0];
    }
};

ReplayEngine::ReplayEngine(const edge::cli::Globals& g) : impl_(std::make_unique<Impl>()) {
    LbConfig c = load_config(g);
    auto why = edge::bpf::unavailable_reason();
    if (!why.empty()) edge::usage_error("cannot load BPF programs: {}", why);
    impl_->s = xdp_lb__open();
    if (!impl_->s) edge::failure("cannot open the BPF object: {}", std::strerror(errno));
    size_maps(impl_->s, c);
    if (int err = xdp_lb__load(impl_->s)) edge::failure("cannot load the BPF program: {}", edge::bpf::error_text(err));
    impl_->ctl = std::make_unique<Controller>(skel_maps(impl_->s), c.table_size, c.max_services);
    impl_->ctl->apply(c);
    impl_->read(impl_->before);
}

ReplayEngine::~ReplayEngine() = default;

ReplayEngine::Result ReplayEngine::run(std::span<const uint8_t> frame) {
    auto r = edge::bpf::test_run(bpf_program__fd(impl_->s->progs.xdp_lb), frame);
    Result out;
    out.verdict = r.retval;
    switch (r.retval) {
    case XDP_ABORTED: out.verdict_name = "aborted"; break;
    case XDP_DROP: out.verdict_name = "drop"; break;
    case XDP_PASS: out.verdict_name = "pass"; break;
    case XDP_TX: out.verdict_name = "tx"; break;
    case XDP_REDIRECT: out.verdict_name = "redirect"; break;
    default: out.verdict_name = "unknown"; break;
    }
    out.data = std::move(r.data);
    impl_->read(impl_->after);
    for (uint32_t i = 0; i < XLB_R_COUNT; i++) {
        if (impl_->after[i] == impl_->before[i]) continue;
        if (out.reason.empty() || out.reason == "tx") out.reason = reason_name(i);  // the specific one, not "tx"
    }
    impl_->before = impl_->after;
    if (out.reason.empty()) out.reason = "none";
    return out;
}

}  // namespace xlb
