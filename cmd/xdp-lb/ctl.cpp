// xdp-lb load / unload / service / backend: a balancer without a foreground daemon.
// `load` attaches the program and leaves it attached; its maps, the program and the
// running configuration (as lb.toml text, in a one-entry array map `xlb_state`) are
// pinned under /sys/fs/bpf/edge/xdp-lb/IF/. The editing commands read that
// configuration, change it, apply it to the pinned maps with the same Controller as
// `run` (a service's new Maglev table goes into the inactive half of its ring, then
// one map update flips it), and store it back. A lock on the pin directory keeps
// concurrent edits apart.
#include <fcntl.h>
#include <linux/if_link.h>
#include <sys/file.h>

#include <filesystem>

#include "bpf/maps.hpp"
#include "bpf/xdp.hpp"
#include "lb.hpp"
#include "options.hpp"
#include "out/record.hpp"
#include "xdp_lb.skel.h"

namespace xlb {

namespace fs = std::filesystem;

namespace {

constexpr const char* kStateName = "xlb_state";
constexpr const char* kProgName = "xdp_lb";
constexpr uint32_t kStateSize = 1u << 20;  // bytes of lb.toml text the state map holds

void event(const edge::cli::Globals& g, const edge::out::Record& r) { edge::out::event(r, g.json); }

using Fd = edge::bpf::OwnedFd;

void write_state(int fd, const std::string& text) {
    if (text.size() + 4 > kStateSize) edge::usage_error("the configuration is larger than {} bytes", kStateSize - 4);
    std::vector<uint8_t> buf(kStateSize, 0);
    uint32_t n = static_cast<uint32_t>(text.size());
    std::memcpy(buf.data(), &n, 4);
    std::memcpy(buf.data() + 4, text.data(), text.size());
    uint32_t zero = 0;
    check(bpf_map_update_elem(fd, &zero, buf.data(), BPF_ANY), "writing xlb_state");
}

std::string read_state_text(int fd) {
    std::vector<uint8_t> buf(kStateSize, 0);
    uint32_t zero = 0, n = 0;
    check(bpf_map_lookup_elem(fd, &zero, buf.data()), "reading xlb_state");
    std::memcpy(&n, buf.data(), 4);
    if (n > kStateSize - 4) edge::failure("xlb_state holds no valid configuration");
    return std::string(reinterpret_cast<const char*>(buf.data()) + 4, n);
}

// The pin directory of a balancer started by `load`, locked; usage errors otherwise.
struct Loaded {
    std::string dir;
    std::unique_ptr<Fd> lock;
    std::unique_ptr<Fd> state;
};

Loaded open_loaded(const std::string& ifname) {
    edge::bpf::require_bpf();
    Loaded l;
    l.dir = pin_dir(ifname);
    if (!fs::exists(l.dir)) {
        ifindex_of(ifname);
        edge::usage_error("no xdp-lb loaded on {} (no pins in {}): xdp-lb -c lb.toml load -i {}", ifname, l.dir, ifname);
    }
    l.lock = std::make_unique<Fd>(open(l.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (l.lock->fd < 0 || flock(l.lock->fd, LOCK_EX) != 0)
        edge::failure("cannot lock {}: {}", l.dir, std::strerror(errno));
    l.state = std::make_unique<Fd>(bpf_obj_get((l.dir + "/" + kStateName).c_str()));
    if (l.state->fd < 0)
        edge::usage_error("the balancer on {} was started by `xdp-lb run`: edit its configuration and send it SIGHUP, "
                          "or stop it and use xdp-lb load",
                          ifname);
    return l;
}

Maps open_maps(const std::string& dir) {
    Maps m;
    for (int i = 0; i < kNumMaps; i++) {
        int fd = bpf_obj_get((dir + "/" + kMapNames[i]).c_str());
        if (fd < 0) edge::failure("cannot open {}/{}: {}", dir, kMapNames[i], std::strerror(errno));
        *map_slot(m, i) = fd;
    }
    return m;
}

void close_maps(Maps& m) {
    for (int i = 0; i < kNumMaps; i++)
        if (*map_slot(m, i) >= 0) close(*map_slot(m, i));
}


// The service the options name (--vip, --port, --proto).
ServiceCfg* find(LbConfig& c, const Options& o, bool must) {
    auto ip = IpAddr::parse(o.vip);
    if (!ip) edge::usage_error("--vip '{}': {}", o.vip, ip.error());
    uint8_t proto = o.proto == "udp" ? 17 : 6;
    for (auto& s : c.services)
        if (s.vip == *ip && s.port == o.port && s.proto == proto) return &s;
    if (must) {
        ServiceCfg want;
        want.vip = *ip;
        want.port = o.port;
        want.proto = proto;
        edge::usage_error("no service {} on {} (xdp-lb service list -i {})", want.name(), o.interface, o.interface);
    }
    return nullptr;
}

BackendCfg* find_backend(ServiceCfg& s, const IpAddr& a) {
    for (auto& b : s.backends)
        if (b.addr == a) return &b;
    return nullptr;
}

IpAddr parse_addr(const std::string& text, const char* opt) {
    auto ip = IpAddr::parse(text);
    if (!ip) edge::usage_error("{} '{}': {}", opt, text, ip.error());
    return *ip;
}

// Validates the edited configuration (the same checks as a config file), applies it to
// the pinned maps and stores it.
void commit(Loaded& l, const LbConfig& edited) {
    std::string text = render_config(edited);
    LbConfig c = parse_config(edge::config::parse(text, l.dir + "/" + kStateName));
    Maps m = open_maps(l.dir);
    try {
        Controller ctl(m, c.table_size, c.max_services);
        ctl.adopt();
        ctl.apply(c);
    } catch (...) {
        close_maps(m);
        throw;
    }
    close_maps(m);
    write_state(l.state->fd, text);
}

edge::out::Record backend_record(const ServiceCfg& s, const BackendCfg& b) {
    auto r = edge::out::Record("lb_backend");
    r.str("service", s.name()).str("backend", b.addr.to_string()).num("weight", uint64_t{b.weight});
    if (b.mac) r.str("mac", format_mac(*b.mac));
    if (b.server_id) r.num("server_id", uint64_t{*b.server_id});
    if (!b.interface.empty()) r.str("interface", b.interface);
    return r;
}

}  // namespace

int run_load(const Options& o, const edge::cli::Globals& g, edge::out::Output& out) {
    (void)out;
    LbConfig c = load_config(g);
    int ifindex = ifindex_of(o.interface);
    edge::bpf::require_bpf();
    edge::bpf::ensure_bpffs();
    std::string dir = pin_dir(o.interface);
    if (fs::exists(dir)) {
        if (edge::bpf::attached_prog(ifindex))
            edge::usage_error("xdp-lb already runs on {} (pins in {}): xdp-lb unload -i {} first", o.interface, dir,
                              o.interface);
        fs::remove_all(dir);  // left by a balancer whose interface went away
    }
    xdp_lb* s = xdp_lb__open();
    if (!s) edge::failure("cannot open the BPF object: {}", std::strerror(errno));
    std::unique_ptr<xdp_lb, void (*)(xdp_lb*)> guard(s, xdp_lb__destroy);
    size_maps(s, c);
    if (int err = xdp_lb__load(s)) edge::failure("cannot load the BPF program: {}", edge::bpf::error_text(err));
    Controller ctl(skel_maps(s), c.table_size, c.max_services);
    ctl.apply(c);
    fs::create_directories(dir);
    uint32_t flags = 0;
    try {
        for (int i = 0; i < kNumMaps; i++) {
            struct bpf_map* m = bpf_object__find_map_by_name(s->obj, kMapNames[i]);
            if (!m || bpf_map__pin(m, (dir + "/" + kMapNames[i]).c_str()) != 0)
                edge::failure("cannot pin {} in {}: {}", kMapNames[i], dir, std::strerror(errno));
        }
        if (bpf_program__pin(s->progs.xdp_lb, (dir + "/" + kProgName).c_str()) != 0)
            edge::failure("cannot pin the program in {}: {}", dir, std::strerror(errno));
        Fd st(bpf_map_create(BPF_MAP_TYPE_ARRAY, kStateName, 4, kStateSize, 1, nullptr));
        if (st.fd < 0) edge::failure("cannot create the state map: {}", std::strerror(errno));
        write_state(st.fd, render_config(c));
        if (bpf_obj_pin(st.fd, (dir + "/" + kStateName).c_str()) != 0)
            edge::failure("cannot pin the state map in {}: {}", dir, std::strerror(errno));
        flags = edge::bpf::attach_xdp(ifindex, bpf_program__fd(s->progs.xdp_lb), o.interface, o.mode);
    } catch (...) {
        fs::remove_all(dir);
        throw;
    }
    const char* mode = flags & XDP_FLAGS_DRV_MODE ? "native" : "generic";
    event(g, edge::out::Record("lb_event")
                 .str("event", "loaded")
                 .str("interface", o.interface)
                 .str("mode", mode)
                 .num("services", static_cast<uint64_t>(c.services.size()))
                 .str("pins", dir)
                 .text(fmt::format("loaded on {} ({} XDP), {} services; maps pinned in {} (xdp-lb unload -i {} detaches)",
                                   o.interface, mode, c.services.size(), dir, o.interface)));
    return edge::exit_ok;
}

int run_unload(const Options& o, const edge::cli::Globals& g, edge::out::Output& out) {
    (void)out;
    Loaded l = open_loaded(o.interface);
    int ifindex = ifindex_of(o.interface);
    Fd prog(bpf_obj_get((l.dir + "/" + kProgName).c_str()));
    uint8_t mode = 0;
    uint32_t attached = edge::bpf::attached_prog(ifindex, &mode);
    bool detached = false;
    if (prog.fd >= 0 && attached) {
        bpf_prog_info info{};
        uint32_t len = sizeof info;
        if (bpf_obj_get_info_by_fd(prog.fd, &info, &len) == 0 && info.id == attached) {
            uint32_t flags = mode == XDP_ATTACHED_SKB ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
            edge::bpf::detach_xdp(ifindex, flags, prog.fd);
            detached = edge::bpf::attached_prog(ifindex) != attached;
            if (!detached) edge::failure("cannot detach the program from {}", o.interface);
        }
    }
    edge::bpf::remove_pins(l.dir);
    event(g, edge::out::Record("lb_event")
                 .str("event", "unloaded")
                 .str("interface", o.interface)
                 .boolean("detached", detached)
                 .text(fmt::format("unloaded from {}{}; pins removed", o.interface,
                                   detached ? "" : " (the program was no longer attached)")));
    return edge::exit_ok;
}

int run_service(const std::string& verb, const Options& o, const edge::cli::Globals& g, edge::out::Output& out) {
    Loaded l = open_loaded(o.interface);
    LbConfig c = parse_config(edge::config::parse(read_state_text(l.state->fd), l.dir + "/" + kStateName));
    if (verb == "list") {
        for (auto& s : c.services) {
            std::vector<edge::out::Record> bes;
            std::string text = fmt::format("{}{}{}", s.name(), s.quic ? " (quic)" : "", s.daisy_chain ? " (daisy chaining)" : "");
            for (auto& b : s.backends) {
                bes.push_back(backend_record(s, b));
                text += fmt::format("\n  {} weight {}{}", b.addr.to_string(), b.weight, b.weight ? "" : " (drained)");
            }
            out.emit(edge::out::Record("lb_service_config")
                         .str("service", s.name())
                         .boolean("quic", s.quic)
                         .boolean("daisy_chain", s.daisy_chain)
                         .objects("backends", bes)
                         .text(text));
        }
        return edge::exit_ok;
    }
    if (verb == "add") {
        if (find(c, o, false)) edge::usage_error("service {} exists: change it with xdp-lb backend add|del|set", find(c, o, false)->name());
        ServiceCfg s;
        s.vip = parse_addr(o.vip, "--vip");
        s.port = o.port;
        s.proto = o.proto == "udp" ? 17 : 6;
        s.quic = o.quic;
        if (s.quic && s.proto != 17) edge::usage_error("--quic needs --proto udp");
        s.daisy_chain = o.daisy_chain;
        if (s.daisy_chain && s.proto != 6) edge::usage_error("--daisy-chain needs --proto tcp");
        if (o.backends.empty()) edge::usage_error("service add needs at least one --backend ADDR[=WEIGHT]");
        for (auto& b : o.backends) {
            BackendCfg bc;
            std::string addr = b;
            if (auto eq = b.rfind('='); eq != std::string::npos) {
                addr = b.substr(0, eq);
                std::string w = b.substr(eq + 1);
                char* end = nullptr;
                errno = 0;
                unsigned long v = std::strtoul(w.c_str(), &end, 10);
                if (w.empty() || *end || errno || v > 1000000)
                    edge::usage_error("--backend '{}': expected ADDR=WEIGHT with WEIGHT 0..1000000", b);
                bc.weight = static_cast<uint32_t>(v);
            }
            bc.addr = parse_addr(addr, "--backend");
            if (find_backend(s, bc.addr)) edge::usage_error("--backend {} is given twice", bc.addr.to_string());
            s.backends.push_back(bc);
        }
        if (c.services.size() >= c.max_services)
            edge::usage_error("{} has max_services = {} services already", o.interface, c.max_services);
        std::string name = s.name();
        c.services.push_back(std::move(s));
        commit(l, c);
        event(g, edge::out::Record("lb_event").str("event", "service_added").str("service", name).text(
                     fmt::format("added service {} on {}", name, o.interface)));
        return edge::exit_ok;
    }
    // del
    ServiceCfg* s = find(c, o, true);
    std::string name = s->name();
    c.services.erase(c.services.begin() + (s - c.services.data()));
    commit(l, c);
    event(g, edge::out::Record("lb_event").str("event", "service_deleted").str("service", name).text(
                 fmt::format("deleted service {} from {}", name, o.interface)));
    return edge::exit_ok;
}

int run_backend(const std::string& verb, const Options& o, const edge::cli::Globals& g, edge::out::Output& out) {
    Loaded l = open_loaded(o.interface);
    LbConfig c = parse_config(edge::config::parse(read_state_text(l.state->fd), l.dir + "/" + kStateName));
    if (verb == "list") {
        bool all = o.vip.empty();
        for (auto& s : c.services) {
            if (!all && &s != find(c, o, true)) continue;
            for (auto& b : s.backends)
                out.emit(backend_record(s, b).text(fmt::format("{} {} weight {}{}", s.name(), b.addr.to_string(), b.weight,
                                                               b.weight ? "" : " (drained)")));
        }
        return edge::exit_ok;
    }
    if (o.vip.empty()) edge::usage_error("backend {} needs the service: --vip ADDR --port N [--proto tcp|udp]", verb);
    if (o.backend.empty()) edge::usage_error("backend {} needs --address ADDR", verb);
    ServiceCfg* s = find(c, o, true);
    IpAddr a = parse_addr(o.backend, "--address");
    BackendCfg* b = find_backend(*s, a);
    std::string what;
    if (verb == "add") {
        if (b) edge::usage_error("{} is already a backend of {}: use backend set --weight", a.to_string(), s->name());
        BackendCfg nb;
        nb.addr = a;
        nb.weight = o.weight >= 0 ? static_cast<uint32_t>(o.weight) : 1u;
        if (!o.mac.empty()) {
            nb.mac = parse_mac(o.mac);
            if (!nb.mac) edge::usage_error("--mac '{}': expected a MAC address such as 02:00:00:00:00:01", o.mac);
        }
        s->backends.push_back(nb);
        what = fmt::format("added backend {} to {} (weight {})", a.to_string(), s->name(), nb.weight);
    } else {
        if (!b) edge::usage_error("{} is not a backend of {} (xdp-lb backend list -i {})", a.to_string(), s->name(), o.interface);
        if (verb == "del") {
            if (s->backends.size() == 1)
                edge::usage_error("{} is the last backend of {}: delete the service (xdp-lb service del) or drain it",
                                  a.to_string(), s->name());
            s->backends.erase(s->backends.begin() + (b - s->backends.data()));
            what = fmt::format("deleted backend {} from {}", a.to_string(), s->name());
        } else if (verb == "drain") {
            b->weight = 0;
            what = fmt::format("drained backend {} of {}: no new flows, established flows stay", a.to_string(), s->name());
        } else {  // set
            if (o.weight < 0 && o.mac.empty()) edge::usage_error("backend set needs --weight N or --mac MAC");
            if (o.weight >= 0) b->weight = static_cast<uint32_t>(o.weight);
            if (!o.mac.empty()) {
                b->mac = parse_mac(o.mac);
                if (!b->mac) edge::usage_error("--mac '{}': expected a MAC address such as 02:00:00:00:00:01", o.mac);
            }
            what = fmt::format("backend {} of {}: weight {}", a.to_string(), s->name(), b->weight);
        }
    }
    std::string svc = s->name();
    commit(l, c);
    event(g, edge::out::Record("lb_event")
                 .str("event", "backend_" + (verb == "add" ? std::string("added") : verb == "del" ? std::string("deleted")
                                                         : verb == "drain" ? std::string("drained") : std::string("set")))
                 .str("service", svc)
                 .str("backend", a.to_string())
                 .text(what));
    return edge::exit_ok;
}

}  // namespace xlb
