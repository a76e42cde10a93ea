/* SPDX-License-Identifier: MIT */
/*
 * xdp_decap: the backend half of xdp-lb. Strips the outer IPv4 or IPv6 header
 * that xdp_lb added (IPv4-in-IPv4, IPv6-in-IPv6, IPv4-in-IPv6, IPv6-in-IPv4) and
 * passes the inner packet to the local stack, where the VIP is bound on lo; the
 * reply goes straight to the client (direct server return). This kernel has no
 * ipip/sit/fou modules, so the decapsulation is done here.
 *
 * Only packets whose outer destination is one of this host's addresses
 * (xdec_addrs, filled by `xdp-lb decap`) are decapsulated, unless decap_any is set
 * at load time. Everything else passes untouched.
 */
#include "parse.bpf.h"

#include "edge/lb.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

const volatile __u8 decap_any = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct xlb_addr_key);
	__type(value, __u32);
} xdec_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDEC_R_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} xdec_reasons SEC(".maps");

static __always_inline int count(__u32 reason, int verdict)
{
	__u64 *c = bpf_map_lookup_elem(&xdec_reasons, &reason);
	if (c)
		*c += 1;
	return verdict;
}

static __always_inline int is_local(const void *addr, int len, __u8 family)
{
	struct xlb_addr_key k;
	if (decap_any)
		return 1;
	__builtin_memset(&k, 0, sizeof(k));
	if (len == 4)
		__builtin_memcpy(k.addr, addr, 4);
	else
		__builtin_memcpy(k.addr, addr, 16);
	k.family = family;
	return bpf_map_lookup_elem(&xdec_addrs, &k) != 0;
}

SEC("xdp")
int xdp_decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 l3_off = sizeof(*eth), olen;
	__u16 proto;
	__u8 inner, l2[22];
	int i, v4;

	if ((void *)(eth + 1) > data_end)
		return count(XDEC_R_PASS_NOT_ENCAP, XDP_PASS);
	proto = bpf_ntohs(eth->h_proto);
#pragma unroll
	for (i = 0; i < 2; i++) {
		if (proto != EDGE_ETH_P_8021Q && proto != EDGE_ETH_P_8021AD)
			break;
		struct edge_vlan_hdr *vh = data + l3_off;
		if ((void *)(vh + 1) > data_end)
			return count(XDEC_R_PASS_NOT_ENCAP, XDP_PASS);
		proto = bpf_ntohs(vh->proto);
		l3_off += sizeof(*vh);
	}
	if (proto == ETH_P_IP) {
		struct iphdr *ip = data + l3_off;
		if ((void *)(ip + 1) > data_end)
			return count(XDEC_R_PASS_NOT_ENCAP, XDP_PASS);
		inner = ip->protocol;
		if (inner != XLB_IPPROTO_IPIP && inner != XLB_IPPROTO_IPV6)
			return count(XDEC_R_PASS_NOT_ENCAP, XDP_PASS);
		if (ip->frag_off & bpf_htons(0x3fff))
			return count(XDEC_R_PASS_NOT_ENCAP, XDP_PASS); /* a fragment: the stack reassembles */
		if (!is_local(&ip->daddr, 4, EDGE_FAMILY_V4))
			return count(XDEC_R_PASS_NOT_LOCAL, XDP_PASS);
		olen = ip->ihl * 4;
		v4 = 1;
	} else if (proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = data + l3_off;
		if ((void *)(ip6 + 1) > data_end)
			return count(XDEC_R_PASS_NOT_ENCAP, XDP_PASS);
		inner = ip6->nexthdr;
		if (inner != XLB_IPPROTO_IPIP && inner != XLB_IPPROTO_IPV6)
			return count(XDEC_R_PASS_NOT_ENCAP, XDP_PASS);
		if (!is_local(&ip6->daddr, 16, EDGE_FAMILY_V6))
			return count(XDEC_R_PASS_NOT_LOCAL, XDP_PASS);
		olen = 40;
		v4 = 0;
	} else {
		return count(XDEC_R_PASS_NOT_ENCAP, XDP_PASS);
	}
	if (olen < 20 || olen > 60)
		return count(XDEC_R_DROP_MALFORMED, XDP_DROP);

	/* The inner header must be there and be what the outer one says. */
	{
		__u8 *in = data + l3_off + olen;
		if ((void *)(in + 20) > data_end)
			return count(XDEC_R_DROP_MALFORMED, XDP_DROP);
		if ((in[0] >> 4) != (inner == XLB_IPPROTO_IPIP ? 4 : 6))
			return count(XDEC_R_DROP_MALFORMED, XDP_DROP);
		if (inner == XLB_IPPROTO_IPV6 && (void *)(in + 40) > data_end)
			return count(XDEC_R_DROP_MALFORMED, XDP_DROP);
	}

	/* Keep the L2 header (and VLAN tags), with the inner EtherType. */
	if (data + 22 > data_end)
		return count(XDEC_R_DROP_MALFORMED, XDP_DROP);
	__builtin_memcpy(l2, data, 22);
	if (bpf_xdp_adjust_head(ctx, (int)olen))
		return count(XDEC_R_DROP_MALFORMED, XDP_DROP);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + 22 > data_end)
		return count(XDEC_R_DROP_MALFORMED, XDP_DROP);
	__be16 etype = inner == XLB_IPPROTO_IPIP ? bpf_htons(ETH_P_IP) : bpf_htons(ETH_P_IPV6);
	__u8 *e = data;
	if (l3_off == 14) {
		__builtin_memcpy(e, l2, 12);
		__builtin_memcpy(e + 12, &etype, 2);
	} else if (l3_off == 18) {
		__builtin_memcpy(e, l2, 16);
		__builtin_memcpy(e + 16, &etype, 2);
	} else {
		__builtin_memcpy(e, l2, 20);
		__builtin_memcpy(e + 20, &etype, 2);
	}
	return count(v4 ? XDEC_R_DECAP_V4 : XDEC_R_DECAP_V6, XDP_PASS);
}
