/* SPDX-License-Identifier: MIT */
/*
 * Packet parsing for XDP programs: Ethernet, up to two VLAN tags, IPv4 (options
 * skipped), IPv6 (up to four extension headers), TCP/UDP ports. Fills the shared
 * edge_flow_key exactly as user space (common/net) does for the same bytes.
 */
#ifndef EDGE_PARSE_BPF_H
#define EDGE_PARSE_BPF_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "edge/flow.h"

#define EDGE_ETH_P_8021Q 0x8100
#define EDGE_ETH_P_8021AD 0x88A8

struct edge_vlan_hdr {
	__be16 tci;
	__be16 proto;
};

enum edge_parse_rc {
	EDGE_PARSE_OK = 0,
	EDGE_PARSE_NOT_IP = 1,
	EDGE_PARSE_TRUNCATED = 2,
};

struct edge_parsed {
	struct edge_flow_key key;
	__u32 l3_off;
	__u32 l4_off; /* 0 when no L4 header */
	__u8 fragment;
};

/*
 * The key is written in whole 64-bit words (address words, then ports, protocol,
 * family and pad as one word), the widths its readers load it with (the flow hash,
 * the balancer's caches and connection-table keys): a load that spans several
 * smaller stores cannot take its value from the store queue and waits for them to
 * reach the cache, a stall of a dozen cycles or more on each such read.
 */
typedef __u16 __attribute__((may_alias)) edge_u16a;
typedef __u32 __attribute__((may_alias)) edge_u32a;
typedef __u64 __attribute__((may_alias)) edge_u64a;

/* key.sport, dport, proto, family and pad, as one word (ports as on the wire). */
static __always_inline void edge_key_tail(struct edge_parsed *p, __u32 ports, __u8 proto, __u8 family)
{
	*(edge_u64a *)&p->key.sport = (__u64)ports | ((__u64)proto << 32) | ((__u64)family << 40);
}

static __always_inline int edge_parse_l4(void *data, void *data_end, __u32 off, __u8 proto, __u8 family,
					 struct edge_parsed *p)
{
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
		/* Ports are the first four bytes of both headers. */
		__be16 *ports = data + off;
		if ((void *)(ports + 2) > data_end) {
			edge_key_tail(p, 0, proto, family);
			return EDGE_PARSE_TRUNCATED;
		}
		edge_key_tail(p, *(const edge_u32a *)ports, proto, family);
		p->l4_off = off;
		return EDGE_PARSE_OK;
	}
	edge_key_tail(p, 0, proto, family);
	if (proto == IPPROTO_ICMP || proto == 58 /* ICMPv6 */)
		p->l4_off = off;
	return EDGE_PARSE_OK;
}

static __always_inline int edge_parse(void *data, void *data_end, struct edge_parsed *p)
{
	struct ethhdr *eth = data;
	__u32 off = sizeof(*eth);
	__u16 proto;
	int i;

	if ((void *)(eth + 1) > data_end)
		return EDGE_PARSE_TRUNCATED;
	proto = bpf_ntohs(eth->h_proto);
#pragma unroll
	for (i = 0; i < 2; i++) {
		if (proto != EDGE_ETH_P_8021Q && proto != EDGE_ETH_P_8021AD)
			break;
		struct edge_vlan_hdr *vh = data + off;
		if ((void *)(vh + 1) > data_end)
			return EDGE_PARSE_TRUNCATED;
		proto = bpf_ntohs(vh->proto);
		off += sizeof(*vh);
	}
	p->l3_off = off;

	if (proto == ETH_P_IP) {
		struct iphdr *ip = data + off;
		if ((void *)(ip + 1) > data_end)
			return EDGE_PARSE_TRUNCATED;
		if (ip->ihl < 5)
			return EDGE_PARSE_TRUNCATED;
		/* The address words: the 4 bytes, then the 12 zero bytes the caller cleared
		 * (written again as words, so that the 8-byte reads of them forward). */
		*(edge_u64a *)p->key.src = *(const edge_u32a *)&ip->saddr;
		*(edge_u64a *)(p->key.src + 8) = 0;
		*(edge_u64a *)p->key.dst = *(const edge_u32a *)&ip->daddr;
		*(edge_u64a *)(p->key.dst + 8) = 0;
		/* Non-first fragments carry no L4 header: hash on addresses only. */
		if (ip->frag_off & bpf_htons(0x1fff)) {
			edge_key_tail(p, 0, ip->protocol, EDGE_FAMILY_V4);
			p->fragment = 1;
			return EDGE_PARSE_OK;
		}
		if (ip->frag_off & bpf_htons(0x2000))
			p->fragment = 1;
		return edge_parse_l4(data, data_end, off + ip->ihl * 4, ip->protocol, EDGE_FAMILY_V4, p);
	}
	if (proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = data + off;
		__u8 nh;
		if ((void *)(ip6 + 1) > data_end)
			return EDGE_PARSE_TRUNCATED;
		{
			const __u8 *a = (const __u8 *)&ip6->saddr;
			*(edge_u64a *)p->key.src = *(const edge_u64a *)a;
			*(edge_u64a *)(p->key.src + 8) = *(const edge_u64a *)(a + 8);
			*(edge_u64a *)p->key.dst = *(const edge_u64a *)(a + 16);
			*(edge_u64a *)(p->key.dst + 8) = *(const edge_u64a *)(a + 24);
		}
		edge_key_tail(p, 0, 0, EDGE_FAMILY_V6); /* the family for a header cut short below */
		nh = ip6->nexthdr;
		off += sizeof(*ip6);
#pragma unroll
		for (i = 0; i < 4; i++) {
			__u8 *eh = data + off;
			if (nh != 0 && nh != 43 && nh != 44 && nh != 60 && nh != 51)
				break;
			if ((void *)(eh + 8) > data_end)
				return EDGE_PARSE_TRUNCATED;
			if (nh == 44) {
				/* Fragment header: offset in bytes 2-3 (upper 13 bits), M flag bit 0. */
				__u16 fo = ((__u16)eh[2] << 8 | eh[3]);
				p->fragment = 1;
				if (fo & 0xfff8) {
					edge_key_tail(p, 0, eh[0], EDGE_FAMILY_V6);
					return EDGE_PARSE_OK;
				}
				nh = eh[0];
				off += 8;
			} else if (nh == 51) {
				nh = eh[0];
				off += ((__u32)eh[1] + 2) * 4;
			} else {
				nh = eh[0];
				off += ((__u32)eh[1] + 1) * 8;
			}
		}
		return edge_parse_l4(data, data_end, off, nh, EDGE_FAMILY_V6, p);
	}
	return EDGE_PARSE_NOT_IP;
}

#endif
