// edgectl: a running xdp-lb's Maglev and connection tables for one flow, by map id.
#include "lab_lbmap.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include <bpf/bpf.h>
#include <fmt/format.h>

#include "bpf/maps.hpp"
#include "edge/lb.h"
#include "net/addr.hpp"

namespace edgectl::lab {

namespace {

using Fd = edge::bpf::OwnedFd;

struct MapRef {
    std::shared_ptr<Fd> fd;
    uint32_t key_size = 0, value_size = 0;
};

std::string errno_text(int e) { return std::strerror(e); }

std::string addr_of(const xlb_backend& b) {
    if (b.family == EDGE_FAMILY_V4) {
        auto a = edge::net::IpAddr::from_bytes(std::span<const uint8_t>(b.addr, 4));
        return a ? a->to_string() : "?";
    }
    if (b.family == EDGE_FAMILY_V6) {
        auto a = edge::net::IpAddr::from_bytes(std::span<const uint8_t>(b.addr, 16));
        return a ? a->to_string() : "?";
    }
    return "";
}

// A Maglev table entry's backend id, as lb.h encodes it (a plain id in older layouts).
uint32_t ring_backend(uint32_t entry) {
#ifdef XLB_RING_CUR
    return XLB_RING_CUR(entry) == XLB_RING_NONE ? XLB_NO_BACKEND : XLB_RING_CUR(entry);
#else
    return entry;
#endif
}

}  // namespace

LbFlowView lb_flow_view(uint32_t prog_id, const edge_flow_key& key) {
    LbFlowView v;
    Fd prog(bpf_prog_get_fd_by_id(prog_id));
    if (prog.fd < 0) {
        v.error = fmt::format("cannot open XDP program {}: {}", prog_id, errno_text(errno));
        return v;
    }
    // The program's map ids (first call: how many).
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(prog.fd, &info, &len) != 0) {
        v.error = fmt::format("cannot read XDP program {}: {}", prog_id, errno_text(errno));
        return v;
    }
    std::vector<uint32_t> ids(info.nr_map_ids);
    info = bpf_prog_info{};
    info.nr_map_ids = static_cast<uint32_t>(ids.size());
    info.map_ids = reinterpret_cast<uintptr_t>(ids.data());
    len = sizeof(info);
    if (bpf_obj_get_info_by_fd(prog.fd, &info, &len) != 0) {
        v.error = fmt::format("cannot list the maps of XDP program {}: {}", prog_id, errno_text(errno));
        return v;
    }
    std::map<std::string, MapRef> maps;
    for (uint32_t id : ids) {
        int fd = bpf_map_get_fd_by_id(id);
        if (fd < 0) continue;
        auto f = std::make_shared<Fd>(fd);
        bpf_map_info mi{};
        uint32_t ml = sizeof(mi);
        if (bpf_obj_get_info_by_fd(fd, &mi, &ml) != 0) continue;
        maps[mi.name] = MapRef{f, mi.key_size, mi.value_size};
    }
    // Each map this needs, with the sizes lb.h gives it.
    auto need = [&](const char* name, size_t ks, size_t vs) -> const MapRef* {
        auto it = maps.find(name);
        if (it == maps.end()) {
            if (v.error.empty()) v.error = fmt::format("XDP program {} has no map {} (not xdp-lb?)", prog_id, name);
            return nullptr;
        }
        if (it->second.key_size != ks || it->second.value_size != vs) {
            if (v.error.empty())
                v.error = fmt::format("xdp-lb's {} has key/value sizes {}/{}, edgectl was built for {}/{} (bpf/include/edge/lb.h): rebuild edgectl",
                                      name, it->second.key_size, it->second.value_size, ks, vs);
            return nullptr;
        }
        return &it->second;
    };
    const bool v4 = key.family == EDGE_FAMILY_V4;
    auto* services = need("xlb_services", sizeof(xlb_vip_key), sizeof(xlb_service));
    auto* ring = need("xlb_ring", sizeof(uint32_t), sizeof(uint32_t));
    auto* backends = need("xlb_backends", sizeof(uint32_t), sizeof(xlb_backend));
    auto* config = need("xlb_config", sizeof(uint32_t), sizeof(xlb_config));
    auto* svc_info = need("xlb_svc_info", sizeof(uint32_t), sizeof(xlb_svc_info));
    auto* ct = v4 ? need("xlb_conntrack4", sizeof(xlb_ct4_key), sizeof(xlb_ct_value))
                  : need("xlb_conntrack", sizeof(edge_flow_key), sizeof(xlb_ct_value));
    if (!v.error.empty()) return v;

    auto backend = [&](uint32_t id) {
        xlb_backend b{};
        if (id == XLB_NO_BACKEND || bpf_map_lookup_elem(backends->fd->fd, &id, &b) != 0) return std::string();
        return addr_of(b);
    };

    // The service and its live Maglev table, hashed with the balancer's own key.
    xlb_vip_key vk{};
    std::memcpy(vk.addr, key.dst, 16);
    vk.port = key.dport;
    vk.proto = key.proto;
    vk.family = key.family;
    xlb_service svc{};
    v.service = bpf_map_lookup_elem(services->fd->fd, &vk, &svc) == 0;
    auto cfg = std::make_unique<xlb_config>();
    uint32_t zero = 0;
    if (bpf_map_lookup_elem(config->fd->fd, &zero, cfg.get()) != 0) {
        v.error = fmt::format("cannot read xdp-lb's xlb_config: {}", errno_text(errno));
        return v;
    }
    v.hash = edge_flow_hash(&key, cfg->hash_k0, cfg->hash_k1);
    if (v.service && svc.ring_size) {
        v.ring_size = svc.ring_size;
        v.slot = edge_flow_slot(v.hash, svc.ring_size);  // the program's own mapping (edge/flow.h)
        uint32_t idx = svc.ring_base + v.slot, entry = XLB_NO_BACKEND;
        if (bpf_map_lookup_elem(ring->fd->fd, &idx, &entry) == 0) v.maglev_backend = backend(ring_backend(entry));
    }

    // The connection table, keyed as xdp_lb.bpf.c keys it.
    xlb_ct_value cv{};
    int rc;
    if (v4) {
        xlb_ct4_key k4{};
        std::memcpy(&k4.src, key.src, 4);
        std::memcpy(&k4.dst, key.dst, 4);
        k4.sport = key.sport;
        k4.dport = key.dport;
        k4.proto = key.proto;
        rc = bpf_map_lookup_elem(ct->fd->fd, &k4, &cv);
    } else {
        rc = bpf_map_lookup_elem(ct->fd->fd, &key, &cv);
    }
    if (rc == 0) {
        v.ct_entry = true;
        v.ct_backend = backend(cv.backend);
        uint32_t sid = cv.service;
        xlb_svc_info si{};
        v.ct_current = bpf_map_lookup_elem(svc_info->fd->fd, &sid, &si) == 0 && static_cast<uint16_t>(si.gen) == cv.gen &&
                       v.service && svc.id == cv.service;
    }
    return v;
}

}  // namespace edgectl::lab
