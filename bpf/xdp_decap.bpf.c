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
 *
 * GUE (UDP port XLB_GUE_PORT, daisy chaining, format in edge/lb.h): the packet carries
 * the previous backend of its Maglev slot. A TCP packet without SYN for which this
 * host has no socket (bpf_skc_lookup_tcp; a listener only counts when the packet is
 * the ACK of a valid SYN cookie) belonged to a connection of the previous backend:
 * its outer destination becomes that backend, it is marked second hop (never
 * forwarded again) and sent out with XDP_TX (or a redirect) to the next hop from the
 * FIB; without a neighbour entry yet it goes to the stack, which routes it (needs IP
 * forwarding on). Everything else is decapsulated for the local stack.
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

/* IPv4 header checksum of a 20-byte header. */
static __always_inline __u16 ip4_csum(const __u16 *w)
{
	__u32 s = 0;
	int i;
#pragma unroll
	for (i = 0; i < 10; i++)
		s += w[i];
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
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

/* Removes `strip` bytes after the L2 header (l3_off: 14, 18 or 22) and sets the inner EtherType. */
static __always_inline int strip_outer(struct xdp_md *ctx, __u32 l3_off, __u32 strip, int inner_v4)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 l2[22];

	if (data + 22 > data_end)
		return -1;
	__builtin_memcpy(l2, data, 22);
	if (bpf_xdp_adjust_head(ctx, (int)strip))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + 22 > data_end)
		return -1;
	__be16 etype = inner_v4 ? bpf_htons(ETH_P_IP) : bpf_htons(ETH_P_IPV6);
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
	return 0;
}

#define XDEC_TCP_SYN 0x02
#define XDEC_TCP_ACK 0x10
#define XDEC_TCP_RST 0x04

/*
 * Whether a TCP packet (inner headers at `iph`, IPv4 or IPv6 without extension
 * headers) belongs to this host: a socket other than a listener, or the ACK of a
 * valid SYN cookie of a listener. 1: ours, 0: not ours.
 */
static __always_inline int tcp_is_ours(struct xdp_md *ctx, void *iph, void *data_end, int v4)
{
	struct bpf_sock_tuple t;
	struct bpf_sock *sk;
	struct tcphdr *th;
	__u32 iph_len, tl;
	int ours = 0;

	__builtin_memset(&t, 0, sizeof(t));
	if (v4) {
		struct iphdr *ip = iph;
		if ((void *)(ip + 1) > data_end)
			return 1;
		th = (void *)(ip + 1);
		if ((void *)(th + 1) > data_end)
			return 1;
		t.ipv4.saddr = ip->saddr;
		t.ipv4.daddr = ip->daddr;
		t.ipv4.sport = th->source;
		t.ipv4.dport = th->dest;
		iph_len = sizeof(*ip);
		tl = sizeof(t.ipv4);
	} else {
		struct ipv6hdr *ip6 = iph;
		if ((void *)(ip6 + 1) > data_end)
			return 1;
		th = (void *)(ip6 + 1);
		if ((void *)(th + 1) > data_end)
			return 1;
		__builtin_memcpy(t.ipv6.saddr, &ip6->saddr, 16);
		__builtin_memcpy(t.ipv6.daddr, &ip6->daddr, 16);
		t.ipv6.sport = th->source;
		t.ipv6.dport = th->dest;
		iph_len = sizeof(*ip6);
		tl = sizeof(t.ipv6);
	}
	sk = bpf_skc_lookup_tcp(ctx, &t, tl, BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 0;
	if (sk->state != BPF_TCP_LISTEN) {
		ours = 1;
	} else if ((((__u8 *)th)[13] & (XDEC_TCP_SYN | XDEC_TCP_ACK | XDEC_TCP_RST)) == XDEC_TCP_ACK) {
		/* A listener only: the connection may have been made with a SYN cookie. */
		if (bpf_tcp_check_syncookie(sk, iph, iph_len, th, sizeof(*th)) == 0) {
			count(XDEC_R_SYNCOOKIE, 0);
			ours = 1;
		}
	}
	bpf_sk_release(sk);
	return ours;
}

/* Sends a rewritten frame (outer IP at offset 14) to the next hop of its outer destination. */
static __always_inline int forward(struct xdp_md *ctx, int v4)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct bpf_fib_lookup fib;
	struct ethhdr *eth = data;
	long rc;

	__builtin_memset(&fib, 0, sizeof(fib));
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (v4) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > data_end)
			return XDP_DROP;
		fib.family = 2; /* AF_INET */
		fib.tos = ip->tos;
		fib.l4_protocol = ip->protocol;
		fib.tot_len = bpf_ntohs(ip->tot_len);
		fib.ipv4_src = ip->saddr;
		fib.ipv4_dst = ip->daddr;
	} else {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > data_end)
			return XDP_DROP;
		fib.family = 10; /* AF_INET6 */
		fib.l4_protocol = ip6->nexthdr;
		fib.tot_len = bpf_ntohs(ip6->payload_len) + 40;
		__builtin_memcpy(fib.ipv6_src, &ip6->saddr, 16);
		__builtin_memcpy(fib.ipv6_dst, &ip6->daddr, 16);
	}
	fib.ifindex = ctx->ingress_ifindex;
	/* As an output route: this host sends it (forwarding need not be on for the fast path). */
	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), BPF_FIB_LOOKUP_OUTPUT);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return count(XDEC_R_FORWARD_STACK, XDP_PASS);
	__builtin_memcpy(eth->h_dest, fib.dmac, 6);
	__builtin_memcpy(eth->h_source, fib.smac, 6);
	count(XDEC_R_FORWARD, 0);
	if (fib.ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(fib.ifindex, 0);
}

/* GUE over UDP from xdp_lb (daisy chaining); outer IP at l3_off. */
static __always_inline int gue(struct xdp_md *ctx, __u32 l3_off, int v4)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct udphdr *udp;
	struct xlb_gue_hdr *g;
	struct xlb_gue_priv *pv;
	__u32 olen, hlen, strip;
	__u64 in_off;
	__u8 *in, *addr;
	int inner_v4;

	if (l3_off > 22)
		return count(XDEC_R_PASS_NOT_ENCAP, XDP_PASS);
	if (v4) {
		struct iphdr *ip = data + l3_off;
		if ((void *)(ip + 1) > data_end)
			return count(XDEC_R_PASS_NOT_ENCAP, XDP_PASS);
		if (ip->ihl != 5 || (ip->frag_off & bpf_htons(0x3fff)))
			return count(XDEC_R_PASS_NOT_ENCAP, XDP_PASS); /* we send neither options nor fragments */
		udp = (void *)(ip + 1);
		if ((void *)(udp + 1) > data_end || udp->dest != bpf_htons(XLB_GUE_PORT))
			return count(XDEC_R_PASS_NOT_ENCAP, XDP_PASS);
		if (!is_local(&ip->daddr, 4, EDGE_FAMILY_V4))
			return count(XDEC_R_PASS_NOT_LOCAL, XDP_PASS);
		olen = 20;
	} else {
		struct ipv6hdr *ip6 = data + l3_off;
		if ((void *)(ip6 + 1) > data_end)
			return count(XDEC_R_PASS_NOT_ENCAP, XDP_PASS);
		udp = (void *)(ip6 + 1);
		if ((void *)(udp + 1) > data_end || udp->dest != bpf_htons(XLB_GUE_PORT))
			return count(XDEC_R_PASS_NOT_ENCAP, XDP_PASS);
		if (!is_local(&ip6->daddr, 16, EDGE_FAMILY_V6))
			return count(XDEC_R_PASS_NOT_LOCAL, XDP_PASS);
		olen = 40;
	}
	g = (void *)(udp + 1);
	if ((void *)(g + 1) > data_end)
		return count(XDEC_R_DROP_MALFORMED, XDP_DROP);
	/* Version 0, data message, no optional fields: Hlen words of private data. */
	if ((g->hlen & 0xe0) || g->flags || (g->proto != XLB_IPPROTO_IPIP && g->proto != XLB_IPPROTO_IPV6))
		return count(XDEC_R_DROP_MALFORMED, XDP_DROP);
	hlen = g->hlen & 0x1f;
	if (hlen > 5)
		return count(XDEC_R_DROP_MALFORMED, XDP_DROP);
	inner_v4 = g->proto == XLB_IPPROTO_IPIP;
	strip = olen + 8 + 4 + hlen * 4;
	in_off = l3_off + strip;
	asm volatile("%[o] &= 0x7f" : [o] "+r"(in_off)); /* <= 22 + 40 + 12 + 20: bounded for the verifier */
	in = data + in_off;
	if ((void *)(in + 20) > data_end)
		return count(XDEC_R_DROP_MALFORMED, XDP_DROP);
	if ((in[0] >> 4) != (inner_v4 ? 4 : 6))
		return count(XDEC_R_DROP_MALFORMED, XDP_DROP);
	if (!inner_v4 && (void *)(in + 40) > data_end)
		return count(XDEC_R_DROP_MALFORMED, XDP_DROP);

	/* Second hop? Only with our private data and a previous backend of the outer
	 * family, for a TCP packet without SYN (inner headers without options or
	 * extension headers), outer header right after an untagged Ethernet header. */
	pv = (void *)(g + 1);
	addr = (void *)(pv + 1);
	if (hlen >= 2 && l3_off == 14 && (void *)(addr + 16) <= data_end && pv->magic == XLB_GUE_MAGIC &&
	    !(pv->flags & XLB_GUE_F_SECOND_HOP) && pv->family == (v4 ? EDGE_FAMILY_V4 : EDGE_FAMILY_V6) &&
	    hlen == (v4 ? 2 : 5)) {
		int tcp = inner_v4 ? (in[0] == 0x45 && in[9] == IPPROTO_TCP) : in[6] == IPPROTO_TCP;
		__u8 *th = in + (inner_v4 ? 20 : 40);
		if (tcp && (void *)(th + 20) <= data_end && !(th[13] & XDEC_TCP_SYN) &&
		    !tcp_is_ours(ctx, in, data_end, inner_v4)) {
			/* Not ours: to the previous backend, marked so that it stops there. */
			data = (void *)(long)ctx->data;
			data_end = (void *)(long)ctx->data_end;
			if (v4) {
				struct iphdr *ip = data + 14;
				struct xlb_gue_priv *p2 = data + 14 + 20 + 8 + 4;
				if ((void *)(p2 + 1) + 4 > data_end)
					return count(XDEC_R_DROP_MALFORMED, XDP_DROP);
				__builtin_memcpy(&ip->daddr, p2 + 1, 4);
				p2->flags |= XLB_GUE_F_SECOND_HOP;
				ip->check = 0;
				ip->check = ip4_csum((__u16 *)ip);
			} else {
				struct ipv6hdr *ip6 = data + 14;
				struct xlb_gue_priv *p2 = data + 14 + 40 + 8 + 4;
				if ((void *)(p2 + 1) + 16 > data_end)
					return count(XDEC_R_DROP_MALFORMED, XDP_DROP);
				__builtin_memcpy(&ip6->daddr, p2 + 1, 16);
				p2->flags |= XLB_GUE_F_SECOND_HOP;
			}
			return forward(ctx, v4);
		}
	}
	if (strip_outer(ctx, l3_off, strip, inner_v4))
		return count(XDEC_R_DROP_MALFORMED, XDP_DROP);
	return count(XDEC_R_DECAP_GUE, XDP_PASS);
}

SEC("xdp")
int xdp_decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 l3_off = sizeof(*eth), olen;
	__u16 proto;
	__u8 inner;
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
		if (inner == IPPROTO_UDP)
			return gue(ctx, l3_off, 1);
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
		if (inner == IPPROTO_UDP)
			return gue(ctx, l3_off, 0);
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
	if (strip_outer(ctx, l3_off, olen, inner == XLB_IPPROTO_IPIP))
		return count(XDEC_R_DROP_MALFORMED, XDP_DROP);
	return count(v4 ? XDEC_R_DECAP_V4 : XDEC_R_DECAP_V6, XDP_PASS);
}
