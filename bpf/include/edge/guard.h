/* SPDX-License-Identifier: MIT */
/*
 * synflood-guard: the map layout shared by the XDP program (bpf/synflood.bpf.c)
 * and the control plane (cmd/synflood-guard). Plain C, no libc.
 *
 *   sfg_protect   LPM_TRIE  struct sfg_dst_key -> struct sfg_dest
 *                           protected destinations: (family, port, prefix); port 0
 *                           matches any port (looked up after the exact port).
 *   sfg_allow     LPM_TRIE  struct sfg_src_key -> __u32   sources never limited
 *   sfg_deny      LPM_TRIE  struct sfg_src_key -> __u32   sources always dropped
 *   sfg_config    ARRAY[1]  struct sfg_config (per-source limits, uRPF mode)
 *   sfg_src_bkt   LRU_HASH  struct sfg_addr_key -> struct sfg_bucket (per source)
 *   sfg_dst_bkt   ARRAY     protected entry id -> struct sfg_bucket (its SYNs)
 *   sfg_dst_stats PERCPU_ARRAY protected entry id -> struct sfg_dst_stats
 *   sfg_reasons   PERCPU_ARRAY enum sfg_reason -> __u64 packets
 *   sfg_prefilter ARRAY     bitmaps in front of the three LPM tries (below), and
 *                           the generation of sfg_protect
 *   sfg_dcache    PERCPU_ARRAY cache of sfg_protect lookups (below)
 */
#ifndef EDGE_GUARD_H
#define EDGE_GUARD_H

#include "edge/flow.h"

#define SFG_MAX_PROTECTED 1024
#define SFG_MAX_LIST 65536
#define SFG_MAX_SOURCES 262144
#define SFG_NSEC 1000000000ULL

/* The prefilter: for each LPM list (allow, deny, protect) and family, one bit per
 * value of the first 16 bits of an address, set when an entry of the list covers at
 * least one address starting with those bits. A clear bit means the address is not
 * on the list, and the LPM lookup is skipped (an empty list costs nothing more than
 * the one array load every packet makes for its source); a set bit only sends the
 * packet to the LPM trie, so verdicts are those of the tries.
 * Element: (family == v6) * SFG_PF_WORDS + (hi16 >> 6), holding the three lists' words
 * side by side (one load serves the source's allow and deny bits); bit hi16 & 63.
 * Element SFG_PF_GEN holds the generation of sfg_protect in w[0] (see sfg_dcache).
 * The control plane recomputes the bits after every change to a list
 * (sfg::sync_prefilter): an LPM entry written without it is not seen. */
#define SFG_PF_ALLOW 0
#define SFG_PF_DENY 1
#define SFG_PF_PROTECT 2
#define SFG_PF_WORDS 1024 /* 65536 bits per list and family */
#define SFG_PF_ENTRIES (2 * SFG_PF_WORDS)
#define SFG_PF_GEN SFG_PF_ENTRIES

struct sfg_pf {
	edge_u64 w[4]; /* [SFG_PF_ALLOW], [SFG_PF_DENY], [SFG_PF_PROTECT], unused */
};

/* sfg_dcache: a per-CPU direct-mapped cache of sfg_protect lookups (both hits and
 * misses), SFG_DC_SLOTS per CPU, slot by a hash of (destination, port). A flood on
 * one victim then costs no LPM lookup per packet. An entry is valid while its gen
 * equals sfg_prefilter[SFG_PF_GEN].w[0], which the control plane increments after
 * every write to sfg_protect (keys or values: sfg::bump_protect_gen); the program
 * reads the generation before the trie, so an entry never outlives a change. The
 * program uses the slot's copy of the entry for the rest of the packet (XDP runs do
 * not nest on a CPU).
 * short_now/short_len: a bucket found short at clock value T for a SYN of L bytes
 * stays short for SYNs of >= L bytes while the clock reads T (tokens only come back
 * as the clock advances; other CPUs can only spend them), so until the clock ticks
 * the next such SYN is dropped without reading the bucket. The control plane bumps
 * the generation after writing a bucket (a refill), which forgets this too. */
#define SFG_DC_SLOTS 64

struct sfg_dcache {
	edge_u64 gen;
	edge_u8 addr[16];
	edge_u16 port;   /* big-endian, the packet's destination port */
	edge_u8 family;  /* 0: empty slot */
	edge_u8 found;   /* 1: d is the entry; 0: the destination is not protected */
	edge_u32 short_len; /* the entry's SYN bucket could not take a SYN of this many */
	edge_u64 short_now; /* bytes at this bucket clock value (see below); ~0: unknown */
	edge_u64 d[4];      /* struct sfg_dest (defined below) */
};

/* LPM keys: prefixlen counts from `family`, so it is 32 + the address prefix length. */
struct sfg_dst_key {
	edge_u32 prefixlen;
	edge_u8 family; /* EDGE_FAMILY_V4 / EDGE_FAMILY_V6 */
	edge_u8 pad;
	edge_u16 port;  /* big-endian; 0 = any port */
	edge_u8 addr[16];
};

struct sfg_src_key {
	edge_u32 prefixlen;
	edge_u8 family;
	edge_u8 pad[3];
	edge_u8 addr[16];
};

struct sfg_addr_key {
	edge_u8 addr[16];
	edge_u8 family;
	edge_u8 pad[3];
};

/* struct sfg_dest.flags */
#define SFG_D_COOKIE 0x1 /* answer SYNs with SYN cookies in XDP */

struct sfg_dest { /* 32 bytes: mirrored in struct sfg_dcache */
	edge_u32 id;    /* index into sfg_dst_stats / sfg_dst_bkt */
	edge_u32 flags; /* SFG_D_* */
	edge_u64 syn_pps;  /* SYN budget of the entry, packets/s (0: none) */
	edge_u64 syn_Bps;  /* SYN budget, bytes/s (0: none) */
	edge_u64 threshold_pps; /* informational: the control plane's current flood threshold */
};

#define SFG_URPF_OFF 0
#define SFG_URPF_LOOSE 1
#define SFG_URPF_STRICT 2

struct sfg_config {
	edge_u64 src_pps; /* per source address, packets/s to protected destinations (0: none) */
	edge_u64 src_Bps; /* per source address, bytes/s (0: none) */
	edge_u8 urpf;     /* SFG_URPF_* */
	edge_u8 cookie_opts; /* SFG_O_*: TCP options the cookie SYN-ACK may carry besides MSS */
	edge_u8 wscale;   /* our window scale in the SYN-ACK (what the kernel will use, see below) */
	edge_u8 pad[5];
};

/* struct sfg_config.cookie_opts. The SYN-ACK echoes these only when the SYN carries
 * them. SACK and window scaling need the timestamp: as in the kernel's own cookies,
 * the low 6 bits of our TSval encode the client's wscale (4 bits, 0xf = none) and
 * SACK-permitted (bit 4); the kernel decodes them from the TSecr of the cookie ACK
 * (cookie_timestamp_decode), which works only when its timestamp offset is 0
 * (net.ipv4.tcp_timestamps=2). `wscale` must be the kernel's rcv_wscale for the
 * listener: clamp(ilog2(max(tcp_rmem[2], rmem_max)) - 15, 0, 14). */
#define SFG_O_TS 0x1
#define SFG_O_SACK 0x2
#define SFG_O_WS 0x4

/* Token bucket: tokens are scaled by SFG_NSEC (one packet costs SFG_NSEC, one byte
 * SFG_NSEC); a bucket holds at most one second of its rate and starts full. */
struct sfg_bucket {
	edge_u64 ts_ns;
	edge_u64 pkt_tokens;
	edge_u64 byte_tokens;
};

struct sfg_dst_stats {
	edge_u64 packets, bytes; /* every packet to the entry (before limits) */
	edge_u64 syn, syn_bytes;
	edge_u64 cookies;        /* SYN-ACKs with a cookie sent */
	edge_u64 cookie_ok;      /* ACKs with a valid cookie passed */
	edge_u64 cookie_bad;     /* ACKs with a forged cookie dropped */
	edge_u64 drops;          /* every drop of a packet to the entry */
};

enum sfg_reason {
	SFG_R_PASS_NOT_IP = 0,     /* not IPv4/IPv6 */
	SFG_R_PASS_UNPROTECTED,    /* no protected destination matches */
	SFG_R_PASS_ALLOWED,        /* source on the allow list */
	SFG_R_PASS,                /* protected, passed every check */
	SFG_R_DROP_DENY,           /* source on the deny list */
	SFG_R_DROP_URPF,           /* no route back to the source (through the ingress, for strict) */
	SFG_R_URPF_UNCHECKED,      /* bpf_fib_lookup could not answer (forwarding off): passed */
	SFG_R_DROP_SRC_RATE,       /* over the per-source budget */
	SFG_R_DROP_DST_RATE,       /* SYN over the destination's budget */
	SFG_R_DROP_MALFORMED,      /* to a protected destination, cut inside a header */
	SFG_R_COOKIE_SENT,         /* SYN answered with a SYN-ACK cookie (XDP_TX) */
	SFG_R_COOKIE_ACK_OK,       /* ACK with a valid cookie: passed to the kernel */
	SFG_R_DROP_COOKIE_ACK,     /* ACK with a forged cookie */
	SFG_R_PASS_NO_LISTENER,    /* SYN in cookie mode, nobody listens: the kernel answers */
	SFG_R_PASS_COOKIE_ERROR,   /* the kernel refused a cookie (tcp_syncookies=0, IP options) */
	SFG_R_COUNT
};

#endif /* EDGE_GUARD_H */
