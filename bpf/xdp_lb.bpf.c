/* SPDX-License-Identifier: MIT */
/*
 * xdp_lb: an XDP layer-4 load balancer (Unimog/Katran class).
 *
 * For a packet to a service (VIP, port, protocol):
 *   1. QUIC short header on a QUIC service: the server id in the destination
 *      connection id picks the backend (xlb_quic_ids); unknown ids go on to 2.
 *   2. Connection table (LRU): an established flow keeps its backend.
 *      A TCP SYN (without ACK) always takes step 3: it starts a new connection.
 *   3. Maglev: slot = edge_flow_slot(flow_hash(key), M) in the service's active table; the
 *      choice is written to the connection table.
 * then the packet is encapsulated (IPv4-in-IPv4, IPv6-in-IPv6, IPv4-in-IPv6 or
 * IPv6-in-IPv4) to the backend and sent back out with XDP_TX, or redirected
 * through the devmap when the backend is behind another interface.
 *
 * Daisy chaining (services with XLB_SVC_DAISY, TCP): every ring slot also names the
 * backend it had before the last table change that moved it. A non-SYN packet that
 * misses the connection table (this balancer never saw the connection start) takes
 * the slot's backend and carries the previous one in a GUE encapsulation; the
 * backend's xdp_decap sends it on to the previous backend when it has no socket for
 * it. The connection table keeps the previous backend with the flow.
 *
 * Fast path: a VIP filter bitmap in xlb_config rejects traffic to no service
 * without a hash lookup; a non-SYN packet then looks up the connection table
 * first, and a hit whose service generation is current (xlb_svc_info, an array)
 * goes out without the service lookup. The order of the steps above is kept:
 * QUIC services skip the fast path (the server id wins over the table). IPv4 hits
 * are served from a per-CPU copy of the entry (xlb_ct_cache, at most one tick old)
 * and new flows find their service in a per-CPU copy by VIP filter bit
 * (xlb_svc_cache, valid while xlb_config.svc_gen is unchanged). The commonest of
 * these, untagged IPv4 TCP hits from that copy, take fast_hit4(): the same
 * decisions in straight-line code from the packet bytes, before any parsing.
 *
 * ICMP "fragmentation needed" / ICMPv6 "packet too big" quoting a VIP flow go to
 * the backend that owns the quoted flow (connection table, else Maglev).
 * IP fragments to a VIP are dropped (no L4 ports to balance on), counted.
 * IPv4 options are forwarded untouched inside the tunnel, counted.
 * Everything that is not for a VIP passes untouched (XDP_PASS).
 *
 * The map layout is in edge/lb.h.
 */
#include "parse.bpf.h"

#include "edge/lb.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XLB_MAX_SERVICES_DEFAULT);
	__type(key, struct xlb_vip_key);
	__type(value, struct xlb_service);
} xlb_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XLB_MAX_SERVICES_DEFAULT);
	__type(key, struct xlb_addr_key);
	__type(value, __u32);
} xlb_vips SEC(".maps");

/* Sized by the control plane before load: 2 * max_services * M. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * 7);
	__type(key, __u32);
	__type(value, __u32);
} xlb_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XLB_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct xlb_backend);
} xlb_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XLB_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, __u32);
} xlb_quic_ids SEC(".maps");

/* One shared LRU (measured here: BPF_F_NO_COMMON_LRU made inserts slower, ~200 ns
 * against ~150 ns, and splits the capacity per CPU); IPv4 hits are served from the
 * per-CPU copies in xlb_ct_cache in front of it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct edge_flow_key);
	__type(value, struct xlb_ct_value);
} xlb_conntrack SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct xlb_ct4_key);
	__type(value, struct xlb_ct_value);
} xlb_conntrack4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u32);
} xlb_quic_sid16 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XLB_SVC_CACHE_SLOTS);
	__type(key, __u32);
	__type(value, struct xlb_svc_cache);
} xlb_svc_cache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XLB_CT_CACHE_SLOTS);
	__type(key, __u32);
	__type(value, struct xlb_ct_cache);
} xlb_ct_cache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XLB_MAX_SERVICES_DEFAULT);
	__type(key, __u32);
	__type(value, struct xlb_svc_info);
} xlb_svc_info SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xlb_tx_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xlb_config);
} xlb_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XLB_MAX_SERVICES_DEFAULT);
	__type(key, __u32);
	__type(value, struct xlb_svc_stats);
} xlb_svc_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XLB_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct xlb_be_stats);
} xlb_be_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XLB_R_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} xlb_reasons SEC(".maps");

#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_ACK 0x10

/* Word-sized packet and map-value accesses. clang's BPF backend turns a memcpy or a
 * packed-struct field it cannot prove aligned into single-byte loads and stores
 * joined by shifts (22 of each for an Ethernet header with two tags); the verifier
 * accepts unaligned access on this architecture and the JIT makes these one move each. */
typedef __u16 __attribute__((may_alias)) xlb_u16a;
typedef __u32 __attribute__((may_alias)) xlb_u32a;
typedef __u64 __attribute__((may_alias)) xlb_u64a;
#define LD16(p) (*(const xlb_u16a *)(p))
#define LD32(p) (*(const xlb_u32a *)(p))
#define LD64(p) (*(const xlb_u64a *)(p))
#define ST16(p, v) (*(xlb_u16a *)(p) = (v))
#define ST32(p, v) (*(xlb_u32a *)(p) = (v))
#define ST64(p, v) (*(xlb_u64a *)(p) = (v))

/* xlb_flow_hint and xlb_vip_bit (edge/lb.h) on a struct edge_flow_key, whose 8-byte
 * alignment makes the address words plain loads: the same values. */
static __always_inline __u32 flow_hint(const struct edge_flow_key *k)
{
	/* An IPv4 key's other 12 address bytes are zero: the same value without them. */
	__u32 x = LD32(k->src) ^ (((__u32)k->sport << 16) | k->dport) ^ k->proto;
	if (k->family != EDGE_FAMILY_V4)
		x ^= LD32(k->src + 4) ^ LD32(k->src + 8) ^ LD32(k->src + 12);
	return xlb_hint_mix(x);
}

static __always_inline __u32 vip_bit(const struct edge_flow_key *k)
{
	__u32 x = LD32(k->dst) ^ (((__u32)k->dport << 16) | k->proto);
	if (k->family != EDGE_FAMILY_V4)
		x ^= LD32(k->dst + 4) ^ LD32(k->dst + 8) ^ LD32(k->dst + 12);
	return xlb_vip_mix(x);
}

static __always_inline int count(__u32 reason, int verdict)
{
	__u64 *c = bpf_map_lookup_elem(&xlb_reasons, &reason);
	if (c)
		*c += 1;
	return verdict;
}

static __always_inline int is_vip_addr(const struct edge_flow_key *k)
{
	struct xlb_addr_key a;
	__builtin_memset(&a, 0, sizeof(a));
	__builtin_memcpy(a.addr, k->dst, 16);
	a.family = k->family;
	return bpf_map_lookup_elem(&xlb_vips, &a) != 0;
}

static __always_inline struct xlb_service *find_service(const __u8 *addr, __be16 port, __u8 proto, __u8 family)
{
	struct xlb_vip_key vk;
	__builtin_memset(&vk, 0, sizeof(vk));
	__builtin_memcpy(vk.addr, addr, 16);
	vk.port = port;
	vk.proto = proto;
	vk.family = family;
	return bpf_map_lookup_elem(&xlb_services, &vk);
}

/*
 * find_service through this CPU's copy of the service for the packet's VIP filter bit
 * (xlb_svc_cache): a plain array slot and a 20-byte compare instead of hashing the key.
 * A copy is used only while xlb_config.svc_gen is the one it was made under: the
 * control plane increments it after changing xlb_services, so a copy never outlives
 * the apply that made its table half the inactive one.
 * Inlined: as a global (BPF-to-BPF) function its call and return cost a new flow
 * about 5 ns on this kernel (returns go through the SRSO return thunk), and with
 * the service copied out to the stack in both outcomes the verifier's work stays
 * the same (load time unchanged).
 */
static __always_inline int xlb_find_service(const struct edge_flow_key *k, __u32 bit, __u32 svc_gen,
					    struct xlb_service *out)
{
	__u32 idx = bit & (XLB_SVC_CACHE_SLOTS - 1);
	__u32 gen = (svc_gen & 0xffff) | XLB_SVC_CACHE_VALID;
	struct xlb_svc_cache *c;
	struct xlb_service *svc;
	__u64 a0, a1;
	__u32 tail;

	a0 = LD64(k->dst);
	a1 = LD64(k->dst + 8);
	tail = (__u32)k->dport | ((__u32)k->proto << 16) | ((__u32)k->family << 24);
	c = bpf_map_lookup_elem(&xlb_svc_cache, &idx);
	if (!c)
		return 0;
	/* The service is copied out in both cases (two words): the rest of the program
	 * then sees one kind of pointer, which keeps the verifier's states few. */
	if (c->gen == gen && LD64(c->key.addr) == a0 && LD64(c->key.addr + 8) == a1 && LD32(&c->key.port) == tail) {
		ST64(out, LD64(&c->svc));
		ST64((__u8 *)out + 8, LD64((__u8 *)&c->svc + 8));
		return 1;
	}
	svc = find_service(k->dst, k->dport, k->proto, k->family);
	if (!svc)
		return 0;
	ST64(out, LD64(svc));
	ST64((__u8 *)out + 8, LD64((__u8 *)svc + 8));
	ST64(c->key.addr, a0);
	ST64(c->key.addr + 8, a1);
	ST32(&c->key.port, tail);
	ST64(&c->svc, LD64(out));
	ST64((__u8 *)&c->svc + 8, LD64((__u8 *)out + 8));
	c->gen = gen;
	return 1;
}

static __always_inline struct xlb_backend *backend_by_id(__u32 id)
{
	struct xlb_backend *be = bpf_map_lookup_elem(&xlb_backends, &id);
	if (!be || !be->family)
		return 0;
	return be;
}

/* Maglev: the slot of the service's active table for this flow (XLB_RING_CUR: the
 * backend id, XLB_RING_PREV: the slot's previous backend), or XLB_RING_NONE. */
static __always_inline __u32 maglev_pick(const struct edge_flow_key *key, const struct xlb_service *svc,
					 const struct xlb_config *cfg)
{
	__u64 h;
	__u32 idx, *bid;

	if (!svc->ring_size)
		return XLB_RING_NONE;
	h = edge_flow_hash(key, cfg->hash_k0, cfg->hash_k1);
	idx = svc->ring_base + edge_flow_slot(h, svc->ring_size);
	bid = bpf_map_lookup_elem(&xlb_ring, &idx);
	return bid ? *bid : XLB_RING_NONE;
}

/* QUIC-LB plaintext CID: octet 0 = config id (3 bits) | length (5 bits), then the server id. */
static __always_inline __u32 quic_route(__u8 *udp, void *data_end, const struct xlb_config *cfg)
{
	__u8 *q = udp + 8; /* after the UDP header */
	__u32 sid = 0, *bid;
	__u8 n = cfg->quic_sid_len;

	if (!n || n > 4)
		return XLB_NO_BACKEND;
	if ((void *)(q + 2) > data_end)
		return XLB_NO_BACKEND;
	if (q[0] & 0x80) /* long header: Maglev */
		return XLB_NO_BACKEND;
	if ((q[1] >> 5) != cfg->quic_config_id)
		return XLB_NO_BACKEND - 1; /* unroutable / other configuration */
	if ((void *)(q + 6) > data_end)
		return XLB_NO_BACKEND - 1; /* shorter than any CID we issue */
	sid = q[2];
	if (n > 1)
		sid = (sid << 8) | q[3];
	if (n > 2)
		sid = (sid << 8) | q[4];
	if (n > 3)
		sid = (sid << 8) | q[5];
	if (n <= 2) {
		/* Short server ids: a direct array (inlined by the verifier), no hashing. */
		__u32 idx = sid & 0xffff;
		bid = bpf_map_lookup_elem(&xlb_quic_sid16, &idx);
		if (!bid || !*bid)
			return XLB_NO_BACKEND - 1;
		return *bid - 1;
	}
	bid = bpf_map_lookup_elem(&xlb_quic_ids, &sid);
	if (!bid)
		return XLB_NO_BACKEND - 1;
	return *bid;
}

struct inner_info {
	__u32 len;  /* inner IP packet length from its header */
	__u8 tos;
	__u8 df;
	__u8 family;
};

/* The outer Ethernet addresses of an encapsulated packet, as 48-bit values of the
 * little-endian words (l2a, l2b: the frame's first two 64-bit words): to the backend's
 * MAC, the next hop's, or back to the sender; from the egress port's MAC for a
 * redirect, else from the MAC we were sent to. */
static __always_inline void outer_macs(const struct xlb_backend *be, const struct xlb_config *cfg, __u64 l2a,
				       __u64 l2b, __u64 *dmac, __u64 *smac)
{
	if (be->flags & XLB_BE_MAC)
		*dmac = LD32(be->mac) | ((__u64)LD16(be->mac + 4) << 32);
	else if (cfg->flags & XLB_CFG_NEXT_HOP_MAC)
		*dmac = LD32(cfg->next_hop_mac) | ((__u64)LD16(cfg->next_hop_mac + 4) << 32);
	else
		*dmac = (l2a >> 48) | ((l2b & 0xffffffffULL) << 16);
	if (be->flags & XLB_BE_REDIRECT)
		*smac = LD32(be->smac) | ((__u64)LD16(be->smac + 4) << 32);
	else
		*smac = l2a & 0xffffffffffffULL;
}

/* The outer IPv4 header's first three words as stored (network order): version/IHL/
 * TOS/length, id 0/flags, TTL/protocol/checksum; the checksum summed from the values in
 * registers with the source and destination that follow them. One's-complement sums do
 * not depend on byte order (RFC 1071): the sum of the words as loaded, folded to 16 bits
 * and stored in host order, is the checksum in network order. */
static __always_inline void outer4_words(__u8 tos, __u32 total_len, int df, __u8 proto, __u32 src, __u32 dst,
					 __u32 *w0, __u32 *w1, __u32 *w2)
{
	__u64 s;

	*w0 = bpf_htonl(0x45000000u | ((__u32)tos << 16) | total_len);
	*w1 = df ? bpf_htonl(0x4000) : 0;
	*w2 = bpf_htonl(0x40000000u | ((__u32)proto << 16));
	s = (__u64)*w0 + *w1 + *w2 + src + dst;
	s = (s & 0xffffffffULL) + (s >> 32);
	s = (s & 0xffffffffULL) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	*w2 |= ((__u32)~s & 0xffff) << 16; /* bytes 10-11 */
}

/* Prepends the outer header for `be`; the L2 header (with VLAN tags) moves to the front.
 * With `prev` (daisy chaining), the outer header is IP + UDP + GUE carrying prev's
 * address (edge/lb.h); else IP-in-IP. One bpf_xdp_adjust_head for the whole outer
 * header; Ethernet and the outer IPv4 header are written in words, the IPv4
 * checksum summed from the values in registers. Returns the bytes added, or -1. */
static __always_inline int encap(struct xdp_md *ctx, __u32 l3_off, const struct inner_info *in,
				 const struct xlb_backend *be, const struct xlb_backend *prev,
				 const struct xlb_config *cfg, __u32 hint)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 l2a, l2b, dmac, smac, l3;
	__u32 l2c;
	int iplen = be->family == EDGE_FAMILY_V4 ? 20 : 40;
	int alen = prev ? (prev->family == EDGE_FAMILY_V4 ? 4 : 16) : 0;
	int glen = prev ? 8 + 4 + 4 + alen : 0; /* UDP + GUE + private data */
	int olen = iplen + glen;
	__u8 inner_proto = in->family == EDGE_FAMILY_V4 ? XLB_IPPROTO_IPIP : XLB_IPPROTO_IPV6;
	__u8 outer_proto = prev ? IPPROTO_UDP : inner_proto;
	__u8 *eth;

	if (l3_off != 14 && l3_off != 18 && l3_off != 22)
		return -1;
	if (data + 22 > data_end)
		return -1;
	/* The old L2 header: bytes 0-7, 8-15, 16-19 (the tags end at 22 at most, and
	 * bytes 20-21 are only ever the EtherType, which is rewritten). */
	l2a = LD64(data);
	l2b = LD64(data + 8);
	l2c = LD32(data + 16);
	if (in->len + olen > 0xffff)
		return -1;
	/* Ethernet padding after the inner packet is not carried into the tunnel. */
	{
		/* Linear frames only (no xdp.frags): the frame is data_end - data. */
		__u64 frame = data_end - data;
		__u64 want = l3_off + in->len;
		if (frame > want && frame - want < 64 && bpf_xdp_adjust_tail(ctx, -(int)(frame - want)))
			return -1;
	}
	if (bpf_xdp_adjust_head(ctx, -olen))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + 22 + 40 > data_end)
		return -1;
	/* l3_off is 14, 18 or 22: a bound clang cannot drop, so that the verifier
	 * knows the outer IP header lies inside the 62 bytes just checked. */
	l3 = l3_off;
	asm volatile("" : "+r"(l3));
	if (l3 > 22)
		return -1;
	eth = data;
	outer_macs(be, cfg, l2a, l2b, &dmac, &smac);
	ST64(eth, dmac | (smac << 48));
	ST32(eth + 8, (__u32)(smac >> 16));
	__be16 etype = be->family == EDGE_FAMILY_V4 ? bpf_htons(ETH_P_IP) : bpf_htons(ETH_P_IPV6);
	if (l3_off == 14) {
		ST16(eth + 12, etype);
	} else if (l3_off == 18) {
		ST32(eth + 12, (__u32)(l2b >> 32));
		ST16(eth + 16, etype);
	} else {
		ST64(eth + 12, (l2b >> 32) | ((__u64)l2c << 32));
		ST16(eth + 20, etype);
	}

	if (be->family == EDGE_FAMILY_V4) {
		__u8 *ip = data + l3;
		__u32 src, dst, w0, w1, w2;
		if ((void *)(ip + 20) > data_end)
			return -1;
		src = cfg->src4 | (bpf_htonl(hint) & ~cfg->mask4);
		dst = LD32(be->addr);
		outer4_words(in->tos, in->len + olen, in->df, outer_proto, src, dst, &w0, &w1, &w2);
		ST32(ip, w0);
		ST32(ip + 4, w1);
		ST32(ip + 8, w2);
		ST32(ip + 12, src);
		ST32(ip + 16, dst);
	} else {
		struct ipv6hdr *ip6 = data + l3;
		__u32 low;
		if ((void *)(ip6 + 1) > data_end)
			return -1;
		ip6->version = 6;
		ip6->priority = in->tos >> 4;
		ip6->flow_lbl[0] = ((in->tos & 0xf) << 4) | ((hint >> 16) & 0xf);
		ip6->flow_lbl[1] = (hint >> 8) & 0xff;
		ip6->flow_lbl[2] = hint & 0xff;
		ip6->payload_len = bpf_htons(in->len + glen);
		ip6->nexthdr = outer_proto;
		ip6->hop_limit = 64;
		__builtin_memcpy(&ip6->saddr, cfg->src6, 12);
		__builtin_memcpy(&low, cfg->src6 + 12, 4);
		low |= bpf_htonl(hint) & ~cfg->mask6_low;
		__builtin_memcpy((__u8 *)&ip6->saddr + 12, &low, 4);
		__builtin_memcpy(&ip6->daddr, be->addr, 16);
	}
	if (prev) {
		/* UDP at a constant offset after the outer IP header of each family. */
		struct udphdr *udp = data + l3 + (be->family == EDGE_FAMILY_V4 ? 20 : 40);
		struct xlb_gue_hdr *gue = (void *)(udp + 1);
		struct xlb_gue_priv *pv = (void *)(gue + 1);
		__u8 *addr = (void *)(pv + 1);
		if ((void *)(addr + 16) > data_end)
			return -1;
		udp->source = bpf_htons(0xc000 | ((hint ^ (hint >> 16)) & 0x3fff));
		udp->dest = bpf_htons(XLB_GUE_PORT);
		udp->len = bpf_htons(in->len + glen);
		udp->check = 0; /* IPv4: none; IPv6: RFC 6935 zero checksum for a tunnel, checked by our decap only */
		gue->hlen = (4 + alen) / 4;
		gue->proto = inner_proto;
		gue->flags = 0;
		pv->magic = XLB_GUE_MAGIC;
		pv->flags = 0;
		pv->family = prev->family;
		pv->reserved = 0;
		if (alen == 4)
			__builtin_memcpy(addr, prev->addr, 4);
		else
			__builtin_memcpy(addr, prev->addr, 16);
	}
	return olen;
}

/* send() to a backend already looked up (be: backend_by_id(bid), not null). */
static __always_inline int send_be(struct xdp_md *ctx, struct edge_parsed *p, const struct inner_info *in,
				   const struct xlb_backend *be, __u32 bid, __u32 prev_id, struct xlb_svc_stats *ss,
				   const struct xlb_config *cfg, int new_flow, __u32 hint, int *grown)
{
	struct xlb_backend *prev = 0;
	struct xlb_be_stats *bs;
	int olen;

	if (prev_id != XLB_NO_BACKEND && prev_id != bid)
		prev = backend_by_id(prev_id);
	olen = encap(ctx, p->l3_off, in, be, prev, cfg, hint);
	if (olen < 0) {
		if (ss)
			ss->drops++;
		return count(XLB_R_DROP_ENCAP, XDP_DROP);
	}
	if (prev)
		count(XLB_R_DAISY, 0);
	*grown = olen;
	if (ss) {
		ss->packets++;
		ss->bytes += in->len;
	}
	bs = bpf_map_lookup_elem(&xlb_be_stats, &bid);
	if (bs) {
		bs->packets++;
		bs->bytes += in->len;
		bs->new_flows += new_flow;
	}
	if (be->flags & XLB_BE_REDIRECT)
		return count(XLB_R_REDIRECT, bpf_redirect_map(&xlb_tx_ports, be->tx_port, XDP_DROP));
	return count(XLB_R_TX, XDP_TX);
}

static __always_inline int send(struct xdp_md *ctx, struct edge_parsed *p, const struct inner_info *in,
				__u32 bid, __u32 prev_id, struct xlb_svc_stats *ss, const struct xlb_config *cfg,
				int new_flow, __u32 hint, int *grown)
{
	struct xlb_backend *be = backend_by_id(bid);

	if (!be) {
		if (ss)
			ss->drops++;
		return count(XLB_R_DROP_NO_BACKEND, XDP_DROP);
	}
	return send_be(ctx, p, in, be, bid, prev_id, ss, cfg, new_flow, hint, grown);
}

/* send() for a connection-table entry. The common case (no previous backend) gets its
 * own copy of send() with the GUE code compiled out: the hit path stays as short as
 * it was before daisy chaining. */
static __always_inline int send_ct(struct xdp_md *ctx, struct edge_parsed *p, const struct inner_info *in,
				   const struct xlb_ct_value *ct, struct xlb_svc_stats *ss,
				   const struct xlb_config *cfg, __u32 hint, int *grown)
{
	__u32 prev = ct->prev;
	if (__builtin_expect(prev != XLB_NO_BACKEND, 0))
		return send(ctx, p, in, ct->backend, prev, ss, cfg, 0, hint, grown);
	return send(ctx, p, in, ct->backend, XLB_NO_BACKEND, ss, cfg, 0, hint, grown);
}

/* send_ct() with the entry's backend already looked up (be, not null). */
static __always_inline int send_ct_be(struct xdp_md *ctx, struct edge_parsed *p, const struct inner_info *in,
				      const struct xlb_ct_value *ct, const struct xlb_backend *be,
				      struct xlb_svc_stats *ss, const struct xlb_config *cfg, __u32 hint, int *grown)
{
	__u32 prev = ct->prev;
	if (__builtin_expect(prev != XLB_NO_BACKEND, 0))
		return send_be(ctx, p, in, be, ct->backend, prev, ss, cfg, 0, hint, grown);
	return send_be(ctx, p, in, be, ct->backend, XLB_NO_BACKEND, ss, cfg, 0, hint, grown);
}

/* Reads the inner length, TOS and DF of the packet at l3_off; -1 when the header lies. */
static __always_inline int inner_info(void *data, void *data_end, __u32 l3_off, __u8 family, struct inner_info *in)
{
	if (l3_off > 22)
		return -1;
	in->family = family;
	if (family == EDGE_FAMILY_V4) {
		struct iphdr *ip = data + l3_off;
		if ((void *)(ip + 1) > data_end)
			return -1;
		in->len = bpf_ntohs(ip->tot_len);
		in->tos = ip->tos;
		in->df = (ip->frag_off & bpf_htons(0x4000)) != 0;
		if (in->len < ip->ihl * 4)
			return -1;
	} else {
		struct ipv6hdr *ip6 = data + l3_off;
		if ((void *)(ip6 + 1) > data_end)
			return -1;
		in->len = bpf_ntohs(ip6->payload_len) + 40;
		in->tos = (ip6->priority << 4) | (ip6->flow_lbl[0] >> 4);
		in->df = 1;
	}
	if (in->len > 0xfff0 || data + l3_off + in->len > data_end)
		return -1;
	return 0;
}

/* The connection table: IPv4 flows in xlb_conntrack4 (16-byte key), IPv6 in xlb_conntrack. */
/* Written as two words: the kernel hashes and compares the key in words (see the
 * note on store forwarding in parse.bpf.h). */
static __always_inline void ct4_key(const struct edge_flow_key *k, struct xlb_ct4_key *k4)
{
	ST64(&k4->src, (__u64)LD32(k->src) | ((__u64)LD32(k->dst) << 32));
	ST64(&k4->sport, (__u64)LD32(&k->sport) | ((__u64)k->proto << 32)); /* sport, dport, proto, pad 0 */
}

static __always_inline struct xlb_ct_value *ct_lookup(const struct edge_flow_key *k)
{
	struct xlb_ct_value *v;
	if (k->family == EDGE_FAMILY_V4) {
		struct xlb_ct4_key k4;
		ct4_key(k, &k4);
		v = bpf_map_lookup_elem(&xlb_conntrack4, &k4);
		/* Keeps clang from merging the two lookups into one call with a selected
		 * map: the verifier inlines a lookup only when its map is known. */
		asm volatile("" : "+r"(v));
		return v;
	}
	return bpf_map_lookup_elem(&xlb_conntrack, k);
}

static __always_inline long ct_insert(const struct edge_flow_key *k, const struct xlb_ct_value *v)
{
	if (k->family == EDGE_FAMILY_V4) {
		struct xlb_ct4_key k4;
		ct4_key(k, &k4);
		long rc = bpf_map_update_elem(&xlb_conntrack4, &k4, v, BPF_ANY);
		asm volatile("" : "+r"(rc)); /* as in ct_lookup */
		return rc;
	}
	return bpf_map_update_elem(&xlb_conntrack, k, v, BPF_ANY);
}

/*
 * The per-CPU flow cache in front of xlb_conntrack4 (Katran keeps per-CPU connection
 * tables): XLB_CT_CACHE_SLOTS direct-mapped slots per CPU, indexed by the flow's outer
 * source hint, each a copy of one IPv4 entry and the jiffy it was last read from (or
 * written to) the shared table. A hit uses the copy while it is at most one tick old;
 * then the shared table is read again, which also keeps the flow recent in its LRU.
 * This CPU's writes go to both; an entry another CPU rewrote is seen here within a
 * tick. A copy is validated like an entry (service generation, backend alive).
 */
static __always_inline void cache_key(const struct edge_flow_key *k, __u64 *k0, __u64 *k1)
{
	*k0 = (__u64)LD32(k->src) | ((__u64)LD32(k->dst) << 32);
	*k1 = (__u64)LD32(&k->sport) | ((__u64)k->proto << 32); /* sport, dport as on the wire */
}

static __always_inline void cache_fill(struct xlb_ct_cache *c, __u64 k0, __u64 k1, const struct xlb_ct_value *v,
				       __u32 now)
{
	c->k0 = k0;
	c->k1 = k1;
	ST64(&c->v, LD64(v));
	c->v.prev = v->prev;
	c->stamp = now;
}

/* The new entry of an IPv4 flow into this CPU's cache too (looked up again here: a
 * pointer kept alive from the fast path would split the verifier's states). */
static __always_inline void cache_put(const struct edge_flow_key *k, __u32 hint, const struct xlb_ct_value *v)
{
	__u32 idx = hint & (XLB_CT_CACHE_SLOTS - 1);
	struct xlb_ct_cache *c;
	__u64 k0, k1;

	if (k->family != EDGE_FAMILY_V4)
		return;
	c = bpf_map_lookup_elem(&xlb_ct_cache, &idx);
	if (!c)
		return;
	cache_key(k, &k0, &k1);
	cache_fill(c, k0, k1, v, (__u32)bpf_jiffies64());
}

/* ICMP frag-needed / ICMPv6 too-big quoting a packet a VIP sent: to the flow's backend. */
static __always_inline int handle_icmp(struct xdp_md *ctx, struct edge_parsed *p, const struct xlb_config *cfg,
				       int *grown)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct edge_flow_key flow;
	struct xlb_service *svc;
	struct xlb_svc_stats *ss;
	struct xlb_ct_value *ct;
	struct inner_info in;
	__u32 off = p->l4_off, bid, sid;
	__u8 *icmp;

	if (off == 0 || off > 22 + 60 + 40)
		return count(XLB_R_PASS_ICMP, XDP_PASS);
	icmp = data + off;
	if ((void *)(icmp + 8) > data_end)
		return count(XLB_R_PASS_ICMP, XDP_PASS);
	__builtin_memset(&flow, 0, sizeof(flow));
	if (p->key.family == EDGE_FAMILY_V4) {
		struct iphdr *q = (void *)(icmp + 8);
		__u16 *ports;
		if (icmp[0] != 3 || icmp[1] != 4)
			return count(XLB_R_PASS_ICMP, XDP_PASS);
		if ((void *)(q + 1) > data_end || q->version != 4 || q->ihl < 5)
			return count(XLB_R_PASS_ICMP, XDP_PASS);
		ports = (void *)q + q->ihl * 4;
		if ((void *)(ports + 2) > data_end)
			return count(XLB_R_PASS_ICMP, XDP_PASS);
		/* The quoted packet went VIP -> client: the flow is its reverse. */
		__builtin_memcpy(flow.src, &q->daddr, 4);
		__builtin_memcpy(flow.dst, &q->saddr, 4);
		flow.sport = ports[1];
		flow.dport = ports[0];
		flow.proto = q->protocol;
		flow.family = EDGE_FAMILY_V4;
	} else {
		struct ipv6hdr *q = (void *)(icmp + 8);
		__u16 *ports;
		if (icmp[0] != 2)
			return count(XLB_R_PASS_ICMP, XDP_PASS);
		if ((void *)(q + 1) > data_end)
			return count(XLB_R_PASS_ICMP, XDP_PASS);
		ports = (void *)(q + 1);
		if ((void *)(ports + 2) > data_end)
			return count(XLB_R_PASS_ICMP, XDP_PASS);
		__builtin_memcpy(flow.src, &q->daddr, 16);
		__builtin_memcpy(flow.dst, &q->saddr, 16);
		flow.sport = ports[1];
		flow.dport = ports[0];
		flow.proto = q->nexthdr;
		flow.family = EDGE_FAMILY_V6;
	}
	if (flow.proto != IPPROTO_TCP && flow.proto != IPPROTO_UDP)
		return count(XLB_R_PASS_ICMP, XDP_PASS);
	svc = find_service(flow.dst, flow.dport, flow.proto, flow.family);
	if (!svc)
		return count(XLB_R_PASS_ICMP, XDP_PASS);
	if (inner_info(data, data_end, p->l3_off, p->key.family, &in))
		return count(XLB_R_DROP_TRUNCATED, XDP_DROP);
	sid = svc->id;
	ss = bpf_map_lookup_elem(&xlb_svc_stats, &sid);
	ct = ct_lookup(&flow);
	if (ct && backend_by_id(ct->backend))
		bid = ct->backend;
	else
		bid = maglev_pick(&flow, svc, cfg);
	count(XLB_R_ICMP_TOO_BIG, 0);
	return send(ctx, p, &in, XLB_RING_CUR(bid) == XLB_RING_NONE ? XLB_NO_BACKEND : XLB_RING_CUR(bid),
		    XLB_NO_BACKEND, ss, cfg, 0, flow_hint(&flow), grown);
}

static __always_inline int vip_filter_hit(const struct xlb_config *cfg, __u32 bit)
{
	return (cfg->vip_filter[(bit >> 6) & (XLB_VIP_FILTER_BITS / 64 - 1)] >> (bit & 63)) & 1;
}

/* The same filter for QUIC services only (their short headers skip the fast path). */
static __always_inline int quic_filter_hit(const struct xlb_config *cfg, __u32 bit)
{
	return (cfg->quic_filter[(bit >> 6) & (XLB_VIP_FILTER_BITS / 64 - 1)] >> (bit & 63)) & 1;
}

/*
 * The common packet of a busy balancer in straight-line code from the packet bytes:
 * IPv4 TCP without tags, IP options or fragmentation, not a SYN, whose flow is in this
 * CPU's copy of the connection table (xlb_ct_cache, fresh) with a current service
 * generation, to a live IPv4 backend and without a previous backend. No edge_parse,
 * no flow key on the stack, the outer header words made before the one
 * bpf_xdp_adjust_head. It decides exactly as xlb_process's general path does for such
 * a packet (same checks, same counters in the same order). Returns 1 with *verdict
 * for a packet it took; 0, before anything was changed, for every packet it is not
 * sure of, which the general path then takes.
 * The values are those of flow_hint, vip_bit and cache_key on the parsed key:
 * ports = the TCP header's first word as loaded (sport | dport << 16, as on the wire).
 */
static __always_inline int fast_hit4(struct xdp_md *ctx, int *grown, int *verdict)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct xlb_config *cfg;
	struct xlb_ct_cache *cc;
	struct xlb_svc_info *info;
	struct xlb_backend *be;
	struct xlb_svc_stats *ss;
	struct xlb_be_stats *bs;
	__u32 zero = 0, idx, sid, bid, saddr, daddr, ports, len, x, now, src, dst, w0, w1, w2;
	__u64 l2a, l2b, dmac, smac, frame, v, e0, h0, h1;
	__u8 *ip, *tcp;

	if (data + 14 + 20 + 20 > data_end)
		return 0;
	ip = data + 14;
	tcp = ip + 20;
	if (LD16(data + 12) != bpf_htons(ETH_P_IP) || ip[0] != 0x45 || ip[9] != IPPROTO_TCP)
		return 0;
	if (LD16(ip + 6) & bpf_htons(0x3fff)) /* MF or an offset: a fragment */
		return 0;
	if ((tcp[13] & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN)
		return 0;
	/* inner_info's checks; at least IP + TCP headers, so that the general path's
	 * room check after adjust_head (62 bytes) always holds too. */
	len = bpf_ntohs(LD16(ip + 2));
	frame = data_end - data;
	if (len < 40 || len > 0xfff0 || 14 + len > frame)
		return 0;
	cfg = bpf_map_lookup_elem(&xlb_config, &zero);
	if (!cfg)
		return 0;
	saddr = LD32(ip + 12);
	daddr = LD32(ip + 16);
	ports = LD32(tcp);
	/* vip_bit(): no service hashes to this bit, as the general path would find. */
	if (!vip_filter_hit(cfg, xlb_vip_mix(daddr ^ ((ports & 0xffff0000u) | IPPROTO_TCP)))) {
		*verdict = count(XLB_R_PASS_NOT_VIP, XDP_PASS);
		return 1;
	}
	/* flow_hint() */
	x = xlb_hint_mix(saddr ^ ((ports << 16) | (ports >> 16)) ^ IPPROTO_TCP);
	idx = x & (XLB_CT_CACHE_SLOTS - 1);
	cc = bpf_map_lookup_elem(&xlb_ct_cache, &idx);
	if (!cc)
		return 0;
	now = (__u32)bpf_jiffies64();
	if (cc->k0 != ((__u64)saddr | ((__u64)daddr << 32)) || cc->k1 != ((__u64)ports | ((__u64)IPPROTO_TCP << 32)) ||
	    now - cc->stamp > 1 || cc->v.prev != XLB_NO_BACKEND)
		return 0;
	v = LD64(&cc->v); /* backend | service << 32 | gen << 48 */
	bid = (__u32)v;
	sid = (__u16)(v >> 32);
	info = bpf_map_lookup_elem(&xlb_svc_info, &sid);
	if (!info || (__u16)info->gen != (__u16)(v >> 48) || (info->flags & XLB_SVC_QUIC))
		return 0;
	be = bpf_map_lookup_elem(&xlb_backends, &bid);
	if (!be || be->family != EDGE_FAMILY_V4)
		return 0;

	/* Taken: the counters and the encapsulation of send_ct_be() -> send_be(). */
	ss = bpf_map_lookup_elem(&xlb_svc_stats, &sid);
	if (ss)
		ss->ct_hits++;
	/* Ethernet, as in encap() */
	l2a = LD64(data);
	l2b = LD64(data + 8);
	outer_macs(be, cfg, l2a, l2b, &dmac, &smac);
	e0 = dmac | (smac << 48);
	/* The outer IPv4 header, as in encap(). */
	src = cfg->src4 | (bpf_htonl(x) & ~cfg->mask4);
	dst = LD32(be->addr);
	outer4_words(ip[1], len + 20, LD16(ip + 6) & bpf_htons(0x4000), XLB_IPPROTO_IPIP, src, dst, &w0, &w1, &w2);
	h0 = (__u64)w0 | ((__u64)w1 << 32);
	h1 = (__u64)w2 | ((__u64)src << 32);
	/* Ethernet padding after the inner packet is not carried into the tunnel. */
	if (frame > 14 + len && frame - (14 + len) < 64 && bpf_xdp_adjust_tail(ctx, -(int)(frame - (14 + len))))
		goto drop;
	if (bpf_xdp_adjust_head(ctx, -20))
		goto drop;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + 22 + 40 > data_end)
		goto drop;
	ST64(data, e0);
	ST32(data + 8, (__u32)(smac >> 16));
	ST16(data + 12, bpf_htons(ETH_P_IP));
	ST64(data + 14, h0);
	ST64(data + 22, h1);
	ST32(data + 30, dst);
	*grown = 20;
	if (ss) {
		ss->packets++;
		ss->bytes += len;
	}
	bs = bpf_map_lookup_elem(&xlb_be_stats, &bid);
	if (bs) {
		bs->packets++;
		bs->bytes += len;
	}
	if (be->flags & XLB_BE_REDIRECT)
		*verdict = count(XLB_R_REDIRECT, bpf_redirect_map(&xlb_tx_ports, be->tx_port, XDP_DROP));
	else
		*verdict = count(XLB_R_TX, XDP_TX);
	return 1;

drop:
	if (ss)
		ss->drops++;
	*verdict = count(XLB_R_DROP_ENCAP, XDP_DROP);
	return 1;
}

static __always_inline int xlb_process(struct xdp_md *ctx, int *grown)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct edge_parsed p;
	struct xlb_service *svc;
	struct xlb_svc_stats *ss;
	struct xlb_svc_info *info;
	struct xlb_ct_value *ct = 0, nct;
	struct xlb_config *cfg;
	struct inner_info in;
	struct xlb_service svcv;
	__u32 zero = 0, bid, sid, slot, prev = XLB_NO_BACKEND, hint, vbit;
	int rc, new_flow = 0, complete = 0, syn = 0, looked = 0, quic_short = 0;
	__u8 *l4 = 0;

	if (fast_hit4(ctx, grown, &rc))
		return rc;
	__builtin_memset(&p, 0, sizeof(p));
	rc = edge_parse(data, data_end, &p);
	if (rc == EDGE_PARSE_NOT_IP)
		return count(XLB_R_PASS_NOT_IP, XDP_PASS);
	if (rc != EDGE_PARSE_OK) {
		if (p.key.family && is_vip_addr(&p.key))
			return count(XLB_R_DROP_TRUNCATED, XDP_DROP);
		return count(XLB_R_PASS_TRUNCATED, XDP_PASS);
	}
	if (p.fragment) {
		if (is_vip_addr(&p.key))
			return count(XLB_R_DROP_FRAGMENT, XDP_DROP);
		return count(XLB_R_PASS_NOT_VIP, XDP_PASS);
	}
	cfg = bpf_map_lookup_elem(&xlb_config, &zero);
	if (!cfg)
		return XDP_PASS;
	if (p.key.proto == IPPROTO_ICMP || p.key.proto == 58)
		return handle_icmp(ctx, &p, cfg, grown);
	/* No service hashes to this bit: not for a VIP, no lookup needed. */
	vbit = vip_bit(&p.key);
	if (!vip_filter_hit(cfg, vbit))
		return count(XLB_R_PASS_NOT_VIP, XDP_PASS);

	/* A whole L4 header, and an inner length that matches the bytes we have. */
	if (p.l4_off != 0 && p.l4_off <= 22 + 60 + 64) {
		__u64 l4o = p.l4_off;
		/* An opaque mask: clang cannot drop it, and it bounds the offset for the verifier. */
		asm volatile("%[o] &= 0xff" : [o] "+r"(l4o));
		l4 = data + l4o;
		if (p.key.proto == IPPROTO_TCP) {
			if ((void *)(l4 + 20) <= data_end) {
				complete = 1;
				syn = (l4[13] & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
			}
		} else if ((void *)(l4 + 8) <= data_end) {
			complete = 1;
		}
		if (complete && inner_info(data, data_end, p.l3_off, p.key.family, &in))
			complete = 0;
	}

	/* Fast path: an established flow of a live, non-QUIC service. QUIC short
	 * headers to a QUIC service skip it (the server id decides, not the table). */
	if (complete && l4 && p.key.proto == IPPROTO_UDP && quic_filter_hit(cfg, vbit) &&
	    (void *)(l4 + 9) <= data_end && !(l4[8] & 0x80))
		quic_short = 1;
	hint = flow_hint(&p.key);
	if (complete && !quic_short) {
		/* The entry: this CPU's copy when it is fresh (IPv4), else the table's. One
		 * copy on the stack, so that one send path serves both. */
		struct xlb_ct_cache *cc = 0;
		struct xlb_ct_value cv;
		__u64 ck0 = 0, ck1 = 0;
		__u32 now = 0;
		int have = 0;
		if (p.key.family == EDGE_FAMILY_V4 && !syn) { /* a SYN never uses an entry */
			__u32 idx = hint & (XLB_CT_CACHE_SLOTS - 1);
			cc = bpf_map_lookup_elem(&xlb_ct_cache, &idx);
			now = (__u32)bpf_jiffies64();
			cache_key(&p.key, &ck0, &ck1);
			if (cc && cc->k0 == ck0 && cc->k1 == ck1 && now - cc->stamp <= 1) {
				ST64(&cv, LD64(&cc->v));
				cv.prev = cc->v.prev;
				have = 1;
			}
		}
		if (!have) {
			ct = ct_lookup(&p.key);
			looked = 1;
			if (ct && !syn) {
				ST64(&cv, LD64(ct));
				cv.prev = ct->prev;
				have = 2;
			}
		}
		if (have) {
			struct xlb_backend *be;
			sid = cv.service;
			info = bpf_map_lookup_elem(&xlb_svc_info, &sid);
			if (info && (__u16)info->gen == cv.gen && !(info->flags & XLB_SVC_QUIC) &&
			    (be = backend_by_id(cv.backend))) {
				ss = bpf_map_lookup_elem(&xlb_svc_stats, &sid);
				if (p.key.family == EDGE_FAMILY_V4 && p.l4_off - p.l3_off > 20)
					count(XLB_R_IP_OPTIONS, 0);
				if (ss)
					ss->ct_hits++;
				if (have == 2 && cc)
					cache_fill(cc, ck0, ck1, &cv, now);
				return send_ct_be(ctx, &p, &in, &cv, be, ss, cfg, hint, grown);
			}
		}
	}

	if (!xlb_find_service(&p.key, vbit, cfg->svc_gen, &svcv))
		return count(XLB_R_PASS_NOT_VIP, XDP_PASS);
	svc = &svcv;
	sid = svc->id;
	ss = bpf_map_lookup_elem(&xlb_svc_stats, &sid);
	if (!complete || !l4)
		goto truncated;
	if (p.key.family == EDGE_FAMILY_V4 && p.l4_off - p.l3_off > 20)
		count(XLB_R_IP_OPTIONS, 0);

	/* 1. QUIC short header: the server id in the DCID. */
	if ((svc->flags & XLB_SVC_QUIC) && p.key.proto == IPPROTO_UDP) {
		bid = quic_route(l4, data_end, cfg);
		if (bid < XLB_NO_BACKEND - 1 && backend_by_id(bid)) {
			if (ss)
				ss->quic_cid++;
			count(XLB_R_QUIC_CID, 0);
			return send(ctx, &p, &in, bid, XLB_NO_BACKEND, ss, cfg, 0, hint, grown);
		}
		if (bid != XLB_NO_BACKEND)
			count(XLB_R_QUIC_CID_UNKNOWN, 0);
	}
	/* 2. Connection table; a SYN starts a new connection. */
	if (!syn) {
		if (!looked) {
			ct = ct_lookup(&p.key);
			looked = 1;
		}
		if (ct && backend_by_id(ct->backend)) {
			if (ss)
				ss->ct_hits++;
			return send_ct(ctx, &p, &in, ct, ss, cfg, hint, grown);
		}
	}
	/* 3. Maglev. */
	if (ss)
		ss->ct_misses++;
	slot = maglev_pick(&p.key, svc, cfg);
	bid = XLB_RING_CUR(slot) == XLB_RING_NONE ? XLB_NO_BACKEND : XLB_RING_CUR(slot);
	/* Daisy chaining: a TCP packet in the middle of a connection this balancer has not
	 * seen carries the slot's previous backend, which may own the connection. */
	if ((svc->flags & XLB_SVC_DAISY) && p.key.proto == IPPROTO_TCP && !syn &&
	    XLB_RING_PREV(slot) != XLB_RING_NONE && XLB_RING_PREV(slot) != XLB_RING_CUR(slot))
		prev = XLB_RING_PREV(slot);
	if (bid != XLB_NO_BACKEND) {
		__u64 nv;
		info = bpf_map_lookup_elem(&xlb_svc_info, &sid);
		/* backend, service, gen: the first word of the entry, made in a register and
		 * stored whole (read back as a word below, it then forwards from the store). */
		nv = (__u64)bid | ((__u64)(__u16)sid << 32) | ((__u64)(info ? (__u16)info->gen : 0) << 48);
		ST64(&nct, nv);
		nct.prev = prev;
		if (!looked)
			ct = ct_lookup(&p.key);
		if (ct) {
			/* The tuple is in the table (a SYN retransmitted, or a port reused):
			 * rewrite its entry in place with one 8-byte store, as the update
			 * would, without taking a new LRU node. */
			ST64(ct, nv);
			ct->prev = prev;
			cache_put(&p.key, hint, &nct);
		} else if (ct_insert(&p.key, &nct) == 0) {
			cache_put(&p.key, hint, &nct);
		}
		if (ss)
			ss->new_flows++;
		new_flow = 1;
	}
	if (prev != XLB_NO_BACKEND)
		return send(ctx, &p, &in, bid, prev, ss, cfg, new_flow, hint, grown);
	return send(ctx, &p, &in, bid, XLB_NO_BACKEND, ss, cfg, new_flow, hint, grown);

truncated:
	if (ss)
		ss->drops++;
	return count(XLB_R_DROP_TRUNCATED, XDP_DROP);
}

SEC("xdp")
int xdp_lb(struct xdp_md *ctx)
{
	int grown = 0;
	return xlb_process(ctx, &grown);
}

/*
 * The same program for benchmarks with BPF_PROG_TEST_RUN repeat: the kernel runs
 * the program again on the same buffer, so after an encapsulation the frame is put
 * back as it came (head restored, L2 header rewritten) for the next round.
 */
SEC("xdp")
int xdp_lb_bench(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 l2a, l2b;
	__u32 l2c;
	__u16 l2d;
	int verdict, grown = 0;

	if (data + 22 > data_end)
		return xlb_process(ctx, &grown);
	l2a = LD64(data);
	l2b = LD64(data + 8);
	l2c = LD32(data + 16);
	l2d = LD16(data + 20);
	verdict = xlb_process(ctx, &grown);
	if (grown > 0 && grown <= 80) {
		if (bpf_xdp_adjust_head(ctx, grown))
			return XDP_ABORTED;
		data = (void *)(long)ctx->data;
		data_end = (void *)(long)ctx->data_end;
		if (data + 22 > data_end)
			return XDP_ABORTED;
		ST64(data, l2a);
		ST64(data + 8, l2b);
		ST32(data + 16, l2c);
		ST16(data + 20, l2d);
	}
	return verdict;
}
