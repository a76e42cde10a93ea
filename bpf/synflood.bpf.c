/* SPDX-License-Identifier: MIT */
/*
 * synflood: XDP SYN-flood defence (synflood-guard).
 *
 * For every packet:
 *   0. the lists' prefilter bits (edge/guard.h): an address whose bit is clear is on
 *      no entry of that list, and its LPM lookup is skipped
 *   1. source on the deny list (LPM)            -> XDP_DROP
 *   2. destination not protected (LPM, port; the answer cached per CPU, see
 *      sfg_dcache in edge/guard.h) -> XDP_PASS
 *   3. source on the allow list                 -> XDP_PASS
 *   4. uRPF (loose or strict, bpf_fib_lookup towards the source) -> XDP_DROP when no route
 *   5. TCP SYN the destination's SYN bucket cannot take -> XDP_DROP (checked before
 *      the per-source lookup: the cheap drop path under a flood; nothing is spent)
 *   6. per-source token bucket (packets/s, bytes/s; LRU)         -> XDP_DROP over budget
 *   7. TCP SYN: the destination's SYN bucket -> XDP_DROP over budget; in cookie mode
 *      the SYN is answered here with a SYN-ACK whose ISN is a kernel SYN cookie
 *      (bpf_tcp_gen_syncookie on the listening socket) and sent back (XDP_TX): the
 *      server's SYN queue never sees the flood.
 *   8. TCP ACK in cookie mode to a listener (no connection yet): the cookie is
 *      checked statelessly (bpf_tcp_check_syncookie); valid -> XDP_PASS (the kernel
 *      builds the connection from it), forged -> XDP_DROP.
 *
 * Why the kernel's cookies (socket-bound helpers) and not our own SipHash cookie:
 * a cookie ACK must turn into a real socket, and only the kernel can build one from
 * an ACK (cookie_v4_check) without state; it accepts its own cookies only. The raw
 * helpers (bpf_tcp_raw_*) need conntrack + an iptables SYNPROXY rule. The price: the
 * helper issues a cookie only when net.ipv4.tcp_syncookies=2 (with 1, only once the
 * listener's queue is full); `run` sets 2 while a destination is in cookie mode.
 *
 * Map layout: edge/guard.h.
 */
#include "parse.bpf.h"

#include "edge/guard.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define AF_INET 2
#define AF_INET6 10

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SFG_MAX_PROTECTED);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sfg_dst_key);
	__type(value, struct sfg_dest);
} sfg_protect SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SFG_MAX_LIST);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sfg_src_key);
	__type(value, __u32);
} sfg_allow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SFG_MAX_LIST);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sfg_src_key);
	__type(value, __u32);
} sfg_deny SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sfg_config);
} sfg_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SFG_MAX_SOURCES);
	__type(key, struct sfg_addr_key);
	__type(value, struct sfg_bucket);
} sfg_src_bkt SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SFG_MAX_PROTECTED);
	__type(key, __u32);
	__type(value, struct sfg_bucket);
} sfg_dst_bkt SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SFG_MAX_PROTECTED);
	__type(key, __u32);
	__type(value, struct sfg_dst_stats);
} sfg_dst_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SFG_R_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} sfg_reasons SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SFG_PF_ENTRIES + 1); /* + the generation of sfg_protect */
	__type(key, __u32);
	__type(value, struct sfg_pf);
} sfg_prefilter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SFG_DC_SLOTS);
	__type(key, __u32);
	__type(value, struct sfg_dcache);
} sfg_dcache SEC(".maps");

_Static_assert(sizeof(struct sfg_dest) == sizeof(((struct sfg_dcache *)0)->d), "sfg_dcache.d mirrors sfg_dest");

/* The prefilter bits of addr, one per list (1 << SFG_PF_*): a clear bit means no
 * entry of that list covers addr and its LPM lookup can be skipped. An array lookup
 * is inlined by the verifier (a few loads). */
static __always_inline __u32 pf_bits(__u8 family, const __u8 *addr, const __u32 lists)
{
	__u32 hi = (__u32)addr[0] << 8 | addr[1];
	__u32 idx = (family == EDGE_FAMILY_V6 ? SFG_PF_WORDS : 0) + (hi >> 6);
	struct sfg_pf *e = bpf_map_lookup_elem(&sfg_prefilter, &idx);
	__u32 b = hi & 63, r = 0;

	if (!e)
		return 0;
	if (lists & (1 << SFG_PF_ALLOW))
		r |= ((e->w[SFG_PF_ALLOW] >> b) & 1) << SFG_PF_ALLOW;
	if (lists & (1 << SFG_PF_DENY))
		r |= ((e->w[SFG_PF_DENY] >> b) & 1) << SFG_PF_DENY;
	if (lists & (1 << SFG_PF_PROTECT))
		r |= ((e->w[SFG_PF_PROTECT] >> b) & 1) << SFG_PF_PROTECT;
	return r;
}

/* The cache slot holding the protected entry for the packet's (destination, port):
 * exact port first, then port 0 (any), through the per-CPU cache and the prefilter
 * (edge/guard.h). NULL when the destination is not protected. */
static __always_inline struct sfg_dcache *protected_slot(const struct edge_flow_key *fk)
{
	__u32 gkey = SFG_PF_GEN, slot, a[4], x[4];
	struct sfg_dcache *c;
	struct sfg_dst_key dk;
	struct sfg_dest *d;
	struct sfg_pf *gp;
	__u64 gen;

	gp = bpf_map_lookup_elem(&sfg_prefilter, &gkey);
	if (!gp)
		return 0;
	gen = *(volatile __u64 *)&gp->w[0]; /* before the trie: see sfg_dcache */
	/* 4-byte loads: the parser stored the address in 4-byte words (an 8-byte load
	 * across two stores would stall store forwarding). */
	__builtin_memcpy(a, fk->dst, 16);
	slot = a[0] ^ a[1] ^ a[2] ^ a[3] ^ fk->dport;
	slot = (slot ^ (slot >> 16) ^ (slot >> 8)) & (SFG_DC_SLOTS - 1);
	c = bpf_map_lookup_elem(&sfg_dcache, &slot);
	if (!c)
		return 0;
	__builtin_memcpy(x, c->addr, 16);
	if (c->gen == gen && c->family == fk->family && c->port == fk->dport &&
	    ((x[0] ^ a[0]) | (x[1] ^ a[1]) | (x[2] ^ a[2]) | (x[3] ^ a[3])) == 0)
		return c->found ? c : 0;
	/* A destination outside every protected prefix is not cached (it would only
	 * evict the victims of a flood). */
	if (!(pf_bits(fk->family, fk->dst, 1 << SFG_PF_PROTECT) & (1 << SFG_PF_PROTECT)))
		return 0;

	__builtin_memset(&dk, 0, sizeof(dk));
	dk.prefixlen = 32 + (fk->family == EDGE_FAMILY_V4 ? 32 : 128);
	dk.family = fk->family;
	dk.port = fk->dport;
	__builtin_memcpy(dk.addr, fk->dst, 16);
	d = bpf_map_lookup_elem(&sfg_protect, &dk);
	if (!d) {
		dk.port = 0;
		d = bpf_map_lookup_elem(&sfg_protect, &dk);
	}
	c->gen = gen;
	__builtin_memcpy(c->addr, fk->dst, 16);
	c->port = fk->dport;
	c->family = fk->family;
	c->found = d != 0;
	c->short_now = ~0ULL;
	c->short_len = ~0U;
	if (!d)
		return 0;
	__builtin_memcpy(c->d, d, sizeof(c->d));
	return c;
}

/* The clock of the token buckets. bpf_ktime_get_ns costs ~40 ns per call on the
 * benchmark VM (more than the rest of the drop path); jiffies are a plain load, at
 * the tick's resolution (4 ms at HZ=250): fine for buckets that hold up to a second.
 * CONFIG_HZ comes from the kernel config (libbpf reads /proc/config.gz); without it,
 * or with an unusual HZ, the precise clock is used. */
extern unsigned int CONFIG_HZ __kconfig __weak;

static __always_inline __u64 bucket_clock(void)
{
	switch (CONFIG_HZ) {
	case 100:
		return bpf_jiffies64() * (SFG_NSEC / 100);
	case 250:
		return bpf_jiffies64() * (SFG_NSEC / 250);
	case 1000:
		return bpf_jiffies64() * (SFG_NSEC / 1000);
	default:
		return bpf_ktime_get_ns();
	}
}

#define TCPF_FIN 0x01
#define TCPF_SYN 0x02
#define TCPF_RST 0x04
#define TCPF_ACK 0x10

static __always_inline int count(__u32 reason, int verdict)
{
	__u64 *c = bpf_map_lookup_elem(&sfg_reasons, &reason);
	if (c)
		*c += 1;
	return verdict;
}

static __always_inline int drop(struct sfg_dst_stats *st, __u32 reason)
{
	if (st)
		st->drops++;
	return count(reason, XDP_DROP);
}

static __always_inline void fill_src_key(struct sfg_src_key *k, const struct edge_flow_key *fk)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->prefixlen = 32 + (fk->family == EDGE_FAMILY_V4 ? 32 : 128);
	k->family = fk->family;
	__builtin_memcpy(k->addr, fk->src, 16);
}

/* Refill and take: 1 when the packet fits the budget (and the tokens are spent). */
static __always_inline int bucket_take(struct sfg_bucket *b, __u64 now, __u64 pps, __u64 Bps, __u32 len)
{
	__u64 el = now > b->ts_ns ? now - b->ts_ns : 0;
	__u64 p = b->pkt_tokens, y = b->byte_tokens, cost = (__u64)len * SFG_NSEC;

	if (el > SFG_NSEC)
		el = SFG_NSEC;
	b->ts_ns = now;
	if (pps) {
		p += el * pps;
		if (p > pps * SFG_NSEC)
			p = pps * SFG_NSEC;
	}
	if (Bps) {
		y += el * Bps;
		if (y > Bps * SFG_NSEC)
			y = Bps * SFG_NSEC;
	}
	if ((pps && p < SFG_NSEC) || (Bps && y < cost)) {
		b->pkt_tokens = p;
		b->byte_tokens = y;
		return 0;
	}
	b->pkt_tokens = pps ? p - SFG_NSEC : 0;
	b->byte_tokens = Bps ? y - cost : 0;
	return 1;
}

/* 1 when the packet would not fit the bucket now (nothing is spent or written). */
static __always_inline int bucket_short(const struct sfg_bucket *b, __u64 now, __u64 pps, __u64 Bps, __u32 len)
{
	__u64 el = now > b->ts_ns ? now - b->ts_ns : 0;

	if (el > SFG_NSEC)
		el = SFG_NSEC;
	if (pps && b->pkt_tokens + el * pps < SFG_NSEC)
		return 1;
	if (Bps && b->byte_tokens + el * Bps < (__u64)len * SFG_NSEC)
		return 1;
	return 0;
}

static __always_inline int src_budget(const struct edge_flow_key *fk, const struct sfg_config *cfg, __u64 now,
				      __u32 len)
{
	struct sfg_addr_key k;
	struct sfg_bucket *b;

	if (!cfg->src_pps && !cfg->src_Bps)
		return 1;
	__builtin_memset(&k, 0, sizeof(k));
	__builtin_memcpy(k.addr, fk->src, 16);
	k.family = fk->family;
	b = bpf_map_lookup_elem(&sfg_src_bkt, &k);
	if (!b) {
		struct sfg_bucket nb = {
			.ts_ns = now,
			.pkt_tokens = cfg->src_pps * SFG_NSEC,
			.byte_tokens = cfg->src_Bps * SFG_NSEC,
		};
		bpf_map_update_elem(&sfg_src_bkt, &k, &nb, BPF_NOEXIST);
		b = bpf_map_lookup_elem(&sfg_src_bkt, &k);
		if (!b)
			return 1;
	}
	return bucket_take(b, now, cfg->src_pps, cfg->src_Bps, len);
}

/* 1: a route back to the source exists (through the ingress for strict), 0: none,
 * -1: cannot tell (forwarding disabled on the interface). */
static __always_inline int urpf_ok(struct xdp_md *ctx, const struct edge_flow_key *fk, __u8 mode)
{
	struct bpf_fib_lookup fib;
	int rc;

	__builtin_memset(&fib, 0, sizeof(fib));
	fib.ifindex = ctx->ingress_ifindex;
	fib.l4_protocol = fk->proto;
	fib.sport = fk->dport;
	fib.dport = fk->sport;
	if (fk->family == EDGE_FAMILY_V4) {
		fib.family = AF_INET;
		__builtin_memcpy(&fib.ipv4_dst, fk->src, 4);
		__builtin_memcpy(&fib.ipv4_src, fk->dst, 4);
	} else {
		fib.family = AF_INET6;
		__builtin_memcpy(fib.ipv6_dst, fk->src, 16);
		__builtin_memcpy(fib.ipv6_src, fk->dst, 16);
	}
	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), BPF_FIB_LOOKUP_SKIP_NEIGH);
	if (rc == BPF_FIB_LKUP_RET_FWD_DISABLED || rc < 0)
		return -1;
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return 0;
	if (mode == SFG_URPF_STRICT && fib.ifindex != ctx->ingress_ifindex)
		return 0;
	return 1;
}

static __always_inline __u16 fold(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

struct synack_in {
	__u8 src[16], dst[16];
	__be16 sport, dport;
	__be32 seq;
	__u32 cookie;
	__u16 mss;
	__u8 family;
	__u8 ts, sack, ws;  /* options to send (the SYN had them and the config allows) */
	__u8 wscale;        /* ours */
	__u32 tsval, tsecr; /* tsval: the timestamp cookie; tsecr: the SYN's TSval (host order) */
};

/* The SYN-ACK's TCP header (20 bytes + options, checksum filled) in tcp[]; returns
 * its length: 24 (MSS), 36 (MSS, [SACK-permitted,] timestamps) or 40 (+ window scale).
 * Option layout as Linux writes it (tcp_options_write). */
static __always_inline __u32 build_tcp(__u32 *tcp, const struct synack_in *in)
{
	struct tcphdr *th = (struct tcphdr *)tcp;
	struct {
		__u8 src[16], dst[16];
		__be32 len;
		__u8 zero[3];
		__u8 nh;
	} ph6;
	struct {
		__be32 src, dst;
		__u8 zero, proto;
		__be16 len;
	} ph4;
	__u32 len = 24;
	__s64 sum;

	__builtin_memset(tcp, 0, 40);
	th->source = in->dport;
	th->dest = in->sport;
	th->seq = bpf_htonl(in->cookie);
	th->ack_seq = bpf_htonl(bpf_ntohl(in->seq) + 1);
	th->syn = 1;
	th->ack = 1;
	th->window = bpf_htons(65535);
	tcp[5] = bpf_htonl(0x02040000 | in->mss); /* MSS */
	if (in->ts) {
		tcp[6] = bpf_htonl(in->sack ? 0x0402080a : 0x0101080a); /* [SACK-permitted] or NOP NOP, TS */
		tcp[7] = bpf_htonl(in->tsval);
		tcp[8] = bpf_htonl(in->tsecr);
		len = 36;
		if (in->ws) {
			tcp[9] = bpf_htonl(0x01030300 | in->wscale); /* NOP, window scale */
			len = 40;
		}
	}
	th->doff = len / 4;
	if (in->family == EDGE_FAMILY_V4) {
		__builtin_memcpy(&ph4.src, in->dst, 4);
		__builtin_memcpy(&ph4.dst, in->src, 4);
		ph4.zero = 0;
		ph4.proto = IPPROTO_TCP;
		ph4.len = bpf_htons(len);
		sum = bpf_csum_diff(0, 0, (__be32 *)&ph4, sizeof(ph4), 0);
	} else {
		__builtin_memcpy(ph6.src, in->dst, 16);
		__builtin_memcpy(ph6.dst, in->src, 16);
		ph6.len = bpf_htonl(len);
		ph6.zero[0] = ph6.zero[1] = ph6.zero[2] = 0;
		ph6.nh = IPPROTO_TCP;
		sum = bpf_csum_diff(0, 0, (__be32 *)&ph6, sizeof(ph6), 0);
	}
	if (sum < 0)
		sum = 0;
	if (len == 40)
		sum = bpf_csum_diff(0, 0, tcp, 40, (__u32)sum);
	else if (len == 36)
		sum = bpf_csum_diff(0, 0, tcp, 36, (__u32)sum);
	else
		sum = bpf_csum_diff(0, 0, tcp, 24, (__u32)sum);
	if (sum < 0)
		sum = 0;
	th->check = fold((__u64)sum);
	return len;
}

/* b[i & 63], with the mask kept where the verifier sees it (the compiler would
 * otherwise drop it after a range check the verifier does not carry over). */
static __always_inline __u8 byte_at(const __u8 *b, __u32 i)
{
	__u64 x = i;

	asm volatile("%0 &= 63" : "+r"(x));
	return b[x];
}

/* The SYN's options the cookie can carry: timestamp (TSval), SACK-permitted, window
 * scale, walked with bpf_loop (one option per step) so the verifier checks one step,
 * not every path through 40 of them. */
struct opt_walk {
	__u8 buf[64]; /* the whole TCP header of the SYN (thlen bytes) */
	__u32 thlen, off, tsval;
	__u8 ts, sack, ws, ws_val;
};

static long opt_step(__u64 i, void *c)
{
	struct opt_walk *w = c;
	__u32 off = w->off;
	__u8 kind, len;

	if (off >= w->thlen || off >= 60)
		return 1;
	kind = byte_at(w->buf, off);
	if (kind == 0)
		return 1;
	if (kind == 1) {
		w->off = off + 1;
		return 0;
	}
	if (off + 1 >= w->thlen)
		return 1;
	len = byte_at(w->buf, off + 1);
	if (len < 2 || off + len > w->thlen)
		return 1;
	if (kind == 3 && len == 3) {
		w->ws = 1;
		w->ws_val = byte_at(w->buf, off + 2);
	} else if (kind == 4 && len == 2) {
		w->sack = 1;
	} else if (kind == 8 && len == 10) {
		w->ts = 1;
		w->tsval = (__u32)byte_at(w->buf, off + 2) << 24 | (__u32)byte_at(w->buf, off + 3) << 16 |
			   (__u32)byte_at(w->buf, off + 4) << 8 | byte_at(w->buf, off + 5);
	}
	w->off = off + len;
	return 0;
}

/* The kernel's timestamp cookie (cookie_init_timestamp): the time in ms with its low
 * 6 bits replaced by the options, never ahead of the clock. */
static __always_inline __u32 ts_cookie(__u32 opts)
{
	__u32 now = (__u32)(bpf_ktime_get_ns() / 1000000);
	__u32 ts = (now & ~63U) | opts;

	if (ts > now)
		ts -= 64;
	return ts;
}

/* Answers the SYN at l3/l4 with a cookie SYN-ACK. Returns the XDP verdict. */
static __always_inline int answer_syn(struct xdp_md *ctx, const struct edge_parsed *p, struct sfg_dst_stats *st,
				      const struct sfg_config *cfg)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	__u32 l3 = p->l3_off & 0x3f, l4 = p->l4_off & 0xff;
	struct opt_walk w;
	__u8 *thbuf = w.buf;
	struct bpf_sock_tuple tup;
	struct synack_in in;
	struct bpf_sock *sk;
	struct tcphdr *th;
	__u32 thlen, iphlen, newlen, tcplen, tcp[10];
	__s64 ret;

	__builtin_memset(&tup, 0, sizeof(tup));
	__builtin_memset(&in, 0, sizeof(in));
	__builtin_memset(&w, 0, sizeof(w));
	th = data + l4;
	if ((void *)(th + 1) > data_end)
		return drop(st, SFG_R_DROP_MALFORMED);
	thlen = th->doff * 4;
	if (thlen < 20 || thlen > 60)
		return drop(st, SFG_R_DROP_MALFORMED);
	if (thlen == 20) {
		if (bpf_xdp_load_bytes(ctx, l4, thbuf, 20) != 0)
			return drop(st, SFG_R_DROP_MALFORMED);
	} else if (bpf_xdp_load_bytes(ctx, l4, thbuf, thlen & 63) != 0) {
		return drop(st, SFG_R_DROP_MALFORMED);
	}
	in.family = p->key.family;
	__builtin_memcpy(in.src, p->key.src, 16);
	__builtin_memcpy(in.dst, p->key.dst, 16);
	in.sport = th->source;
	in.dport = th->dest;
	in.seq = th->seq;

	if (p->key.family == EDGE_FAMILY_V4) {
		struct iphdr *ip = data + l3;
		if ((void *)(ip + 1) > data_end)
			return drop(st, SFG_R_DROP_MALFORMED);
		if (ip->ihl != 5)
			return count(SFG_R_PASS_COOKIE_ERROR, XDP_PASS);
		tup.ipv4.saddr = ip->saddr;
		tup.ipv4.daddr = ip->daddr;
		tup.ipv4.sport = th->source;
		tup.ipv4.dport = th->dest;
		sk = bpf_skc_lookup_tcp(ctx, &tup, sizeof(tup.ipv4), BPF_F_CURRENT_NETNS, 0);
		if (!sk)
			return count(SFG_R_PASS_NO_LISTENER, XDP_PASS);
		if (sk->state != BPF_TCP_LISTEN) {
			bpf_sk_release(sk);
			return count(SFG_R_PASS, XDP_PASS);
		}
		ret = bpf_tcp_gen_syncookie(sk, ip, sizeof(*ip), (struct tcphdr *)thbuf, thlen);
		bpf_sk_release(sk);
		iphlen = 20;
	} else {
		struct ipv6hdr *ip6 = data + l3;
		if ((void *)(ip6 + 1) > data_end)
			return drop(st, SFG_R_DROP_MALFORMED);
		if (l4 != l3 + 40 || ip6->nexthdr != IPPROTO_TCP)
			return count(SFG_R_PASS_COOKIE_ERROR, XDP_PASS);
		__builtin_memcpy(tup.ipv6.saddr, &ip6->saddr, 16);
		__builtin_memcpy(tup.ipv6.daddr, &ip6->daddr, 16);
		tup.ipv6.sport = th->source;
		tup.ipv6.dport = th->dest;
		sk = bpf_skc_lookup_tcp(ctx, &tup, sizeof(tup.ipv6), BPF_F_CURRENT_NETNS, 0);
		if (!sk)
			return count(SFG_R_PASS_NO_LISTENER, XDP_PASS);
		if (sk->state != BPF_TCP_LISTEN) {
			bpf_sk_release(sk);
			return count(SFG_R_PASS, XDP_PASS);
		}
		ret = bpf_tcp_gen_syncookie(sk, ip6, sizeof(*ip6), (struct tcphdr *)thbuf, thlen);
		bpf_sk_release(sk);
		iphlen = 40;
	}
	if (ret < 0) /* -ENOENT: tcp_syncookies is not 2 (and the queue is not full) */
		return count(SFG_R_PASS_COOKIE_ERROR, XDP_PASS);
	in.cookie = (__u32)ret;
	in.mss = (__u16)(ret >> 32);
	if (cfg && (cfg->cookie_opts & SFG_O_TS) && thlen > 20) {
		w.thlen = thlen;
		w.off = 20;
		bpf_loop(40, opt_step, &w, 0);
		if (w.ts) {
			__u32 opts = 0xf; /* no window scaling */
			in.ts = 1;
			in.tsecr = w.tsval;
			in.sack = w.sack && (cfg->cookie_opts & SFG_O_SACK);
			in.ws = w.ws && (cfg->cookie_opts & SFG_O_WS);
			if (in.ws) {
				opts = w.ws_val > 14 ? 14 : w.ws_val;
				in.wscale = cfg->wscale > 14 ? 14 : cfg->wscale;
			}
			if (in.sack)
				opts |= 0x10;
			in.tsval = ts_cookie(opts);
		}
	}
	tcplen = build_tcp(tcp, &in);

	/* Trim (or grow) the frame to L2 + IP + the SYN-ACK's TCP header. */
	newlen = l3 + iphlen + tcplen;
	if (bpf_xdp_adjust_tail(ctx, (int)newlen - (int)bpf_xdp_get_buff_len(ctx)))
		return drop(st, SFG_R_DROP_MALFORMED);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;

	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return drop(st, SFG_R_DROP_MALFORMED);
	__u8 mac[ETH_ALEN];
	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);

	if (in.family == EDGE_FAMILY_V4) {
		struct iphdr *ip = data + l3;
		if ((void *)(ip + 1) > data_end)
			return drop(st, SFG_R_DROP_MALFORMED);
		ip->version = 4;
		ip->ihl = 5;
		ip->tos = 0;
		ip->tot_len = bpf_htons(20 + tcplen);
		ip->id = 0;
		ip->frag_off = bpf_htons(0x4000);
		ip->ttl = 64;
		ip->protocol = IPPROTO_TCP;
		ip->check = 0;
		__builtin_memcpy(&ip->saddr, in.dst, 4);
		__builtin_memcpy(&ip->daddr, in.src, 4);
		__s64 s = bpf_csum_diff(0, 0, (__be32 *)ip, 20, 0);
		ip->check = fold(s < 0 ? 0 : (__u64)s);
	} else {
		struct ipv6hdr *ip6 = data + l3;
		if ((void *)(ip6 + 1) > data_end)
			return drop(st, SFG_R_DROP_MALFORMED);
		ip6->priority = 0;
		ip6->flow_lbl[0] = ip6->flow_lbl[1] = ip6->flow_lbl[2] = 0;
		ip6->payload_len = bpf_htons(tcplen);
		ip6->nexthdr = IPPROTO_TCP;
		ip6->hop_limit = 64;
		__builtin_memcpy(&ip6->saddr, in.dst, 16);
		__builtin_memcpy(&ip6->daddr, in.src, 16);
	}
	if (tcplen == 40) {
		if (bpf_xdp_store_bytes(ctx, l3 + iphlen, tcp, 40) != 0)
			return drop(st, SFG_R_DROP_MALFORMED);
	} else if (tcplen == 36) {
		if (bpf_xdp_store_bytes(ctx, l3 + iphlen, tcp, 36) != 0)
			return drop(st, SFG_R_DROP_MALFORMED);
	} else if (bpf_xdp_store_bytes(ctx, l3 + iphlen, tcp, 24) != 0) {
		return drop(st, SFG_R_DROP_MALFORMED);
	}
	if (st)
		st->cookies++;
	return count(SFG_R_COOKIE_SENT, XDP_TX);
}

/* An ACK in cookie mode: pass unless it is for a listener and its cookie is forged. */
static __always_inline int check_ack(struct xdp_md *ctx, const struct edge_parsed *p, struct sfg_dst_stats *st)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	__u32 l3 = p->l3_off & 0x3f, l4 = p->l4_off & 0xff;
	struct bpf_sock_tuple tup;
	struct bpf_sock *sk;
	struct tcphdr *th = data + l4;
	long rc;

	__builtin_memset(&tup, 0, sizeof(tup));
	if ((void *)(th + 1) > data_end)
		return drop(st, SFG_R_DROP_MALFORMED);
	if (p->key.family == EDGE_FAMILY_V4) {
		struct iphdr *ip = data + l3;
		if ((void *)(ip + 1) > data_end)
			return drop(st, SFG_R_DROP_MALFORMED);
		tup.ipv4.saddr = ip->saddr;
		tup.ipv4.daddr = ip->daddr;
		tup.ipv4.sport = th->source;
		tup.ipv4.dport = th->dest;
		sk = bpf_skc_lookup_tcp(ctx, &tup, sizeof(tup.ipv4), BPF_F_CURRENT_NETNS, 0);
		if (!sk)
			return count(SFG_R_PASS, XDP_PASS);
		if (sk->state != BPF_TCP_LISTEN) {
			bpf_sk_release(sk);
			return count(SFG_R_PASS, XDP_PASS);
		}
		rc = bpf_tcp_check_syncookie(sk, ip, sizeof(*ip), th, sizeof(*th));
	} else {
		struct ipv6hdr *ip6 = data + l3;
		if ((void *)(ip6 + 1) > data_end)
			return drop(st, SFG_R_DROP_MALFORMED);
		__builtin_memcpy(tup.ipv6.saddr, &ip6->saddr, 16);
		__builtin_memcpy(tup.ipv6.daddr, &ip6->daddr, 16);
		tup.ipv6.sport = th->source;
		tup.ipv6.dport = th->dest;
		sk = bpf_skc_lookup_tcp(ctx, &tup, sizeof(tup.ipv6), BPF_F_CURRENT_NETNS, 0);
		if (!sk)
			return count(SFG_R_PASS, XDP_PASS);
		if (sk->state != BPF_TCP_LISTEN) {
			bpf_sk_release(sk);
			return count(SFG_R_PASS, XDP_PASS);
		}
		rc = bpf_tcp_check_syncookie(sk, ip6, sizeof(*ip6), th, sizeof(*th));
	}
	bpf_sk_release(sk);
	if (rc == 0) {
		if (st)
			st->cookie_ok++;
		return count(SFG_R_COOKIE_ACK_OK, XDP_PASS);
	}
	/* An ACK that reaches a listener (no connection, no request) without a valid
	 * cookie would only earn a RST from the kernel: drop it here. */
	if (st)
		st->cookie_bad++;
	return drop(st, SFG_R_DROP_COOKIE_ACK);
}

SEC("xdp")
int synflood(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct edge_parsed p;
	struct sfg_src_key sk;
	struct sfg_dcache *slot;
	struct sfg_dest *d;
	struct sfg_dst_stats *st;
	struct sfg_config *cfg;
	/* A linear buffer (the program is not loaded with frags): the same as
	 * bpf_xdp_get_buff_len without the helper call. */
	__u32 zero = 0, len = (__u32)(data_end - data);
	struct sfg_bucket *db = 0;
	__u8 flags = 0, syn = 0;
	__u32 src_pf;
	__u64 now;
	int rc;

	__builtin_memset(&p, 0, sizeof(p));
	rc = edge_parse(data, data_end, &p);
	if (rc == EDGE_PARSE_NOT_IP)
		return count(SFG_R_PASS_NOT_IP, XDP_PASS);
	if (!p.key.family)
		return count(SFG_R_PASS_NOT_IP, XDP_PASS);

	src_pf = pf_bits(p.key.family, p.key.src, 1 << SFG_PF_ALLOW | 1 << SFG_PF_DENY);
	if (src_pf & (1 << SFG_PF_DENY)) {
		fill_src_key(&sk, &p.key);
		if (bpf_map_lookup_elem(&sfg_deny, &sk))
			return count(SFG_R_DROP_DENY, XDP_DROP);
	}

	slot = protected_slot(&p.key);
	if (!slot)
		return count(SFG_R_PASS_UNPROTECTED, XDP_PASS);
	d = (struct sfg_dest *)slot->d;
	__u32 id = d->id;
	st = bpf_map_lookup_elem(&sfg_dst_stats, &id);
	if (st) {
		st->packets++;
		st->bytes += len;
	}
	if (rc != EDGE_PARSE_OK)
		return drop(st, SFG_R_DROP_MALFORMED);
	if (src_pf & (1 << SFG_PF_ALLOW)) {
		fill_src_key(&sk, &p.key);
		if (bpf_map_lookup_elem(&sfg_allow, &sk))
			return count(SFG_R_PASS_ALLOWED, XDP_PASS);
	}

	cfg = bpf_map_lookup_elem(&sfg_config, &zero);
	if (!cfg)
		return count(SFG_R_PASS, XDP_PASS);
	if (cfg->urpf) {
		int u = urpf_ok(ctx, &p.key, cfg->urpf);
		if (u == 0)
			return drop(st, SFG_R_DROP_URPF);
		if (u < 0)
			count(SFG_R_URPF_UNCHECKED, 0);
	}
	now = bucket_clock();
	if (p.key.proto == IPPROTO_TCP && !p.fragment && p.l4_off) {
		struct tcphdr *th = data + (p.l4_off & 0xff);
		if ((void *)(th + 1) > data_end) {
			/* cut inside the TCP header: the source budget still counts it */
			if (!src_budget(&p.key, cfg, now, len))
				return drop(st, SFG_R_DROP_SRC_RATE);
			return drop(st, SFG_R_DROP_MALFORMED);
		}
		flags = ((__u8 *)th)[13];
		syn = (flags & (TCPF_SYN | TCPF_ACK | TCPF_RST)) == TCPF_SYN;
	}
	/* A SYN the destination's bucket cannot take is dropped whatever the source's
	 * budget says: drop it before the per-source lookup (the cheap drop path under
	 * a flood; the source is not charged for it). */
	if (syn && (d->syn_pps || d->syn_Bps)) {
		/* still short since the last SYN found it so (sfg_dcache in edge/guard.h) */
		if (slot->short_now == now && len >= slot->short_len) {
			if (st) {
				st->syn++;
				st->syn_bytes += len;
			}
			return drop(st, SFG_R_DROP_DST_RATE);
		}
		db = bpf_map_lookup_elem(&sfg_dst_bkt, &id);
		if (db && bucket_short(db, now, d->syn_pps, d->syn_Bps, len)) {
			if (slot->short_now != now || len < slot->short_len)
				slot->short_len = len;
			slot->short_now = now;
			if (st) {
				st->syn++;
				st->syn_bytes += len;
			}
			return drop(st, SFG_R_DROP_DST_RATE);
		}
	}
	if (!src_budget(&p.key, cfg, now, len))
		return drop(st, SFG_R_DROP_SRC_RATE);

	if (p.key.proto != IPPROTO_TCP || p.fragment || !p.l4_off)
		return count(SFG_R_PASS, XDP_PASS);
	if (syn) {
		if (st) {
			st->syn++;
			st->syn_bytes += len;
		}
		if (db && !bucket_take(db, now, d->syn_pps, d->syn_Bps, len))
			return drop(st, SFG_R_DROP_DST_RATE);
		if (d->flags & SFG_D_COOKIE)
			return answer_syn(ctx, &p, st, cfg);
		return count(SFG_R_PASS, XDP_PASS);
	}
	if ((d->flags & SFG_D_COOKIE) && (flags & (TCPF_SYN | TCPF_ACK | TCPF_RST)) == TCPF_ACK)
		return check_ack(ctx, &p, st);
	return count(SFG_R_PASS, XDP_PASS);
}
