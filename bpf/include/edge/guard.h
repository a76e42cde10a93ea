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
 */
#ifndef EDGE_GUARD_H
#define EDGE_GUARD_H

#include "edge/flow.h"

#define SFG_MAX_PROTECTED 1024
#define SFG_MAX_LIST 65536
#define SFG_MAX_SOURCES 262144
#define SFG_NSEC 1000000000ULL

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

struct sfg_dest {
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
