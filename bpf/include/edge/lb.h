/* SPDX-License-Identifier: MIT */
/*
 * xdp-lb: the map layout shared by the XDP programs (bpf/xdp_lb.bpf.c,
 * bpf/xdp_decap.bpf.c) and the control plane (cmd/xdp-lb). Plain C, no libc.
 *
 * Map layout (documented in xdp-lb(8), MAP LAYOUT):
 *
 *   xlb_services  HASH      struct xlb_vip_key -> struct xlb_service
 *                           (VIP address, port, protocol) -> service id and the
 *                           active half of its Maglev table.
 *   xlb_vips      HASH      struct xlb_addr_key -> __u32 (number of services)
 *                           every VIP address, so fragments and truncated packets
 *                           to a VIP are recognised without ports.
 *   xlb_ring      ARRAY     __u32 index -> __u32 slot: the backend id (low 16 bits)
 *                           and, on daisy-chained services only, the slot's previous
 *                           backend id + 1 (high 16 bits, 0: none; XLB_RING_* below),
 *                           so other slots read as plain backend ids.
 *                           ONE big array: service s owns two halves of M entries,
 *                           at (2*s + half) * M. The control plane writes the
 *                           inactive half, then flips xlb_service.ring_base with one
 *                           map update: no packet ever sees a half-written table.
 *   xlb_backends  ARRAY     backend id -> struct xlb_backend (address, MAC, tx port)
 *   xlb_quic_ids  HASH      QUIC server id -> backend id
 *   xlb_conntrack LRU_HASH  struct edge_flow_key -> struct xlb_ct_value (IPv6 flows;
 *                           the value names the backend and, for a flow first seen
 *                           mid-connection on a daisy-chained service, the
 *                           previous backend the encapsulation carries)
 *   xlb_conntrack4 LRU_HASH struct xlb_ct4_key -> struct xlb_ct_value (IPv4 flows:
 *                           a 16-byte key hashes and compares faster than 40)
 *   xlb_quic_sid16 ARRAY    QUIC server id (< 65536) -> backend id + 1 (0: none),
 *                           used instead of xlb_quic_ids when server ids are 1-2 bytes
 *   xlb_svc_cache PERCPU_ARRAY slot -> struct xlb_svc_cache: a per-CPU, direct-mapped
 *                           copy of xlb_services entries by VIP filter bit, valid
 *                           while xlb_config.svc_gen is unchanged (not pinned)
 *   xlb_ct_cache  PERCPU_ARRAY slot -> struct xlb_ct_cache: a per-CPU, direct-mapped
 *                           copy of recently used xlb_conntrack4 entries, read again
 *                           from it after one tick (the data plane's own; not pinned)
 *   xlb_svc_info  ARRAY     service id -> struct xlb_svc_info (generation, flags):
 *                           a connection-table hit is valid while the generation
 *                           it recorded is the service's, so hits need no service
 *                           lookup (the generation changes when an id is freed).
 *   xlb_tx_ports  DEVMAP    tx port -> ifindex, for backends behind another
 *                           interface (bpf_redirect_map instead of XDP_TX)
 *   xlb_config    ARRAY[1]  struct xlb_config (hash key, encap sources, QUIC CID
 *                           format, the VIP filter bitmap)
 *   xlb_svc_stats PERCPU_ARRAY service id -> struct xlb_svc_stats
 *   xlb_be_stats  PERCPU_ARRAY backend id -> struct xlb_be_stats
 *   xlb_reasons   PERCPU_ARRAY enum xlb_reason -> __u64 packets
 */
#ifndef EDGE_LB_H
#define EDGE_LB_H

#include "edge/flow.h"

#define XLB_MAX_SERVICES_DEFAULT 64
#define XLB_MAX_BACKENDS 4096
#define XLB_NO_BACKEND 0xffffffffu

/* Outer headers added in front of the inner IP packet. */
#define XLB_IPPROTO_IPIP 4
#define XLB_IPPROTO_IPV6 41

/* struct xlb_service.flags */
#define XLB_SVC_QUIC 0x1
#define XLB_SVC_DAISY 0x2 /* daisy chaining (TCP): mid-flow packets carry the slot's previous backend */

/* xlb_ring slots: the backend id in the low 16 bits (XLB_RING_NONE: none), the slot's
 * previous backend id + 1 (the backend the slot named before the last table change
 * that moved it) in the high 16 bits, 0 when there is none: a slot without a
 * previous backend is the plain backend id. */
#define XLB_RING_NONE 0xffffu
#define XLB_RING_SLOT(cur, prev) \
	((((edge_u32)(prev) & 0xffffu) == XLB_RING_NONE ? 0u : (((edge_u32)(prev) + 1) << 16)) | ((edge_u32)(cur) & 0xffffu))
#define XLB_RING_CUR(slot) ((slot) & 0xffffu)
#define XLB_RING_PREV(slot) (((slot) >> 16) ? ((slot) >> 16) - 1 : XLB_RING_NONE)

/*
 * Daisy chaining (Unimog's second hop): a packet that carries a previous backend is
 * encapsulated in GUE (draft-ietf-intarea-gue, variant 0) over UDP instead of IP-in-IP:
 *
 *   outer IPv4/IPv6 (protocol 17) | UDP (source port per flow, destination
 *   XLB_GUE_PORT, checksum 0) | GUE header: 0x00|Hlen, proto (4 or 41), flags 0 |
 *   private data (Hlen words): struct xlb_gue_priv + the previous backend's
 *   address (4 or 16 bytes) | the inner IP packet.
 *
 * The backend's xdp_decap strips it; for a TCP packet without SYN for which the
 * host has no socket, it rewrites the outer destination to the previous backend,
 * sets XLB_GUE_F_SECOND_HOP and sends it on (a second-hop packet is never forwarded
 * again).
 */
#define XLB_GUE_PORT 9886
#define XLB_GUE_MAGIC 0xeb
#define XLB_GUE_F_SECOND_HOP 0x01

struct xlb_gue_hdr {
	edge_u8 hlen;  /* version (2 bits, 0), C (1 bit, 0), Hlen (5 bits): 32-bit words after this header */
	edge_u8 proto; /* the inner packet: 4 (IPv4) or 41 (IPv6) */
	edge_u16 flags; /* 0: no optional fields, the Hlen words are private data */
};

struct xlb_gue_priv {
	edge_u8 magic;  /* XLB_GUE_MAGIC */
	edge_u8 flags;  /* XLB_GUE_F_* */
	edge_u8 family; /* of the address that follows: EDGE_FAMILY_V4 (4 bytes) or _V6 (16) */
	edge_u8 reserved;
};

struct xlb_vip_key {
	edge_u8 addr[16]; /* IPv4 in the first 4 bytes, rest zero */
	edge_u16 port;    /* big-endian */
	edge_u8 proto;    /* 6 tcp, 17 udp */
	edge_u8 family;   /* EDGE_FAMILY_V4 / EDGE_FAMILY_V6 */
};

struct xlb_addr_key {
	edge_u8 addr[16];
	edge_u8 family;
	edge_u8 pad[3];
};

struct xlb_service {
	edge_u32 id;        /* index into xlb_svc_stats */
	edge_u32 flags;     /* XLB_SVC_* */
	edge_u32 ring_base; /* first entry of the active table in xlb_ring */
	edge_u32 ring_size; /* M, a prime */
};

/* struct xlb_backend.flags */
#define XLB_BE_MAC 0x1 /* use mac as the destination MAC */

#define XLB_BE_REDIRECT 0x2 /* out through xlb_tx_ports[tx_port] with source MAC smac */

struct xlb_backend {
	edge_u8 addr[16];
	edge_u8 family; /* 0: unused id */
	edge_u8 flags;
	edge_u8 mac[6];
	edge_u8 smac[6];
	edge_u16 tx_port;
};

struct xlb_ct_value {
	edge_u32 backend;
	edge_u16 service;
	edge_u16 gen; /* xlb_svc_info.gen of the service when the entry was made */
	edge_u32 prev; /* daisy chaining: the previous backend the encapsulation carries
			* (flow first seen mid-connection), XLB_NO_BACKEND: none */
};

struct xlb_ct4_key {
	edge_u32 src, dst; /* network order */
	edge_u16 sport, dport; /* big-endian */
	edge_u8 proto;
	edge_u8 pad[3];
};

/* xlb_svc_cache: XLB_SVC_CACHE_SLOTS per CPU, slot = VIP filter bit & (slots - 1). */
#define XLB_SVC_CACHE_SLOTS 1024
#define XLB_SVC_CACHE_VALID 0x10000u /* in gen, so that a zeroed slot never matches */

struct xlb_svc_cache {
	struct xlb_vip_key key;
	struct xlb_service svc;
	edge_u32 gen; /* xlb_config.svc_gen | XLB_SVC_CACHE_VALID when copied */
};

/* xlb_ct_cache: XLB_CT_CACHE_SLOTS per CPU, slot = xlb_flow_hint & (slots - 1). */
#define XLB_CT_CACHE_SLOTS 1024

struct xlb_ct_cache {
	edge_u64 k0; /* source address | destination address << 32 (as on the wire); */
	edge_u64 k1; /* ports (as on the wire) | protocol << 32; 0: empty */
	struct xlb_ct_value v;
	edge_u32 stamp; /* low 32 bits of jiffies when v was last read from or written to xlb_conntrack4 */
};

struct xlb_svc_info {
	edge_u32 gen;
	edge_u32 flags; /* XLB_SVC_* */
};

/* The VIP filter: one bit per (VIP, port, protocol) hash in xlb_config.vip_filter,
 * tested before any hash-map lookup so traffic to no service costs no lookup. */
#define XLB_VIP_FILTER_BITS 4096

/* struct xlb_config.flags */
#define XLB_CFG_NEXT_HOP_MAC 0x1

struct xlb_config {
	edge_u64 hash_k0, hash_k1;
	/* Outer IPv4 source: src4 | (per-flow bits & ~mask4), all network order. */
	edge_u32 src4, mask4;
	/* Outer IPv6 source: src6 with its last 4 bytes OR-ed with per-flow bits & ~mask6_low. */
	edge_u8 src6[16];
	edge_u32 mask6_low; /* network order mask of the last 32 bits */
	edge_u8 flags;
	edge_u8 next_hop_mac[6];
	/* QUIC short header CIDs (QUIC-LB plaintext): first octet = config id (3 bits)
	 * | length self-description (5 bits); server id in the next quic_sid_len octets. */
	edge_u8 quic_sid_len; /* 1..4, 0 disables CID routing */
	edge_u8 quic_config_id; /* 0..6 */
	edge_u8 pad;
	/* Incremented by the control plane after every change of xlb_services: the data
	 * plane's per-CPU copies of services (xlb_svc_cache) made under another value
	 * are not used. */
	edge_u16 svc_gen;
	edge_u64 vip_filter[XLB_VIP_FILTER_BITS / 64];
	edge_u64 quic_filter[XLB_VIP_FILTER_BITS / 64]; /* the bits of QUIC services */
};

enum xlb_reason {
	XLB_R_TX = 0,          /* encapsulated and sent (XDP_TX) */
	XLB_R_PASS_NOT_IP,     /* not IPv4/IPv6: XDP_PASS */
	XLB_R_PASS_NOT_VIP,    /* IP but no service: XDP_PASS */
	XLB_R_PASS_TRUNCATED,  /* cut inside a header, not to a VIP: XDP_PASS */
	XLB_R_DROP_TRUNCATED,  /* to a VIP but cut inside a header: XDP_DROP */
	XLB_R_DROP_FRAGMENT,   /* IP fragment to a VIP: XDP_DROP */
	XLB_R_IP_OPTIONS,      /* IPv4 options to a VIP: forwarded, counted */
	XLB_R_DROP_NO_BACKEND, /* the service has no backend (all drained): XDP_DROP */
	XLB_R_DROP_ENCAP,      /* no room to add the outer header: XDP_DROP */
	XLB_R_ICMP_TOO_BIG,    /* ICMP frag-needed / ICMPv6 too-big sent to the flow's backend */
	XLB_R_PASS_ICMP,       /* other ICMP to a VIP, or quoting no VIP flow: XDP_PASS */
	XLB_R_QUIC_CID,        /* QUIC short header routed by the server id */
	XLB_R_QUIC_CID_UNKNOWN,/* QUIC short header, unknown/unroutable id: Maglev */
	XLB_R_REDIRECT,        /* encapsulated and redirected to another interface (devmap) */
	XLB_R_DAISY,           /* sent in GUE carrying the previous backend (daisy chaining) */
	XLB_R_COUNT
};

struct xlb_svc_stats {
	edge_u64 packets, bytes; /* bytes of the inner packet (as received, L3 and up) */
	edge_u64 new_flows;      /* conntrack misses that took the Maglev choice */
	edge_u64 ct_hits;
	edge_u64 ct_misses;
	edge_u64 quic_cid;       /* short-header packets routed by server id */
	edge_u64 drops;
	edge_u64 pad;
};

struct xlb_be_stats {
	edge_u64 packets, bytes, new_flows, pad;
};

/* xdp_decap */
enum xdec_reason {
	XDEC_R_DECAP_V4 = 0, /* outer IPv4 removed */
	XDEC_R_DECAP_V6,     /* outer IPv6 removed */
	XDEC_R_PASS_NOT_ENCAP,
	XDEC_R_PASS_NOT_LOCAL, /* encapsulated, but the outer destination is not ours */
	XDEC_R_DROP_MALFORMED, /* encapsulated to us, inner header missing or wrong */
	XDEC_R_DECAP_GUE,      /* GUE removed (the inner packet is for this host) */
	XDEC_R_FORWARD,        /* GUE, TCP without SYN, no socket here: sent on to the previous backend */
	XDEC_R_FORWARD_STACK,  /* the same, handed to the stack to route (no neighbour entry yet) */
	XDEC_R_SYNCOOKIE,      /* no socket, but a valid SYN cookie for a listener here: kept */
	XDEC_R_COUNT
};

/* The mixes behind xlb_vip_bit and xlb_flow_hint, applied to the XOR of the key's words:
 * the BPF program computes that XOR its own ways (from a key, or from packet words). */
EDGE_INLINE edge_u32 xlb_vip_mix(edge_u32 x)
{
	x ^= x >> 16;
	x *= 0x9e3779b1U;
	return x >> 20; /* the top 12 bits: XLB_VIP_FILTER_BITS = 4096 */
}

EDGE_INLINE edge_u32 xlb_hint_mix(edge_u32 x)
{
	x ^= x >> 16;
	x *= 0x7feb352dU;
	x ^= x >> 15;
	x *= 0x846ca68bU;
	x ^= x >> 16;
	return x;
}

/* The VIP filter bit of a destination (address words as on the wire, port
 * big-endian, protocol). Any mix works as long as BPF and the control plane agree. */
EDGE_INLINE edge_u32 xlb_vip_bit(const edge_u8 *dst16, edge_u16 dport, edge_u8 proto)
{
	edge_u32 a, b, c, d, x;
	__builtin_memcpy(&a, dst16, 4);
	__builtin_memcpy(&b, dst16 + 4, 4);
	__builtin_memcpy(&c, dst16 + 8, 4);
	__builtin_memcpy(&d, dst16 + 12, 4);
	x = a ^ b ^ c ^ d ^ (((edge_u32)dport << 16) | proto);
	return xlb_vip_mix(x);
}

/*
 * Per-flow bits for the outer source address (so backends' RSS spreads flows
 * over receive queues) and the outer IPv6 flow label: a mix of the client
 * address and the ports. Cheap, and the same in BPF and in user space (tests).
 */
EDGE_INLINE edge_u32 xlb_flow_hint(const struct edge_flow_key *k)
{
	edge_u32 a, b, c, d, x;
	__builtin_memcpy(&a, &k->src[0], 4);
	__builtin_memcpy(&b, &k->src[4], 4);
	__builtin_memcpy(&c, &k->src[8], 4);
	__builtin_memcpy(&d, &k->src[12], 4);
	x = a ^ b ^ c ^ d ^ (((edge_u32)k->sport << 16) | k->dport) ^ k->proto;
	return xlb_hint_mix(x);
}

#endif /* EDGE_LB_H */
