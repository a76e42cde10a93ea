/* SPDX-License-Identifier: MIT */
/*
 * The flow key and flow hash shared by BPF programs and user space.
 *
 * This one header is compiled into the XDP programs (clang -target bpf) and
 * into libedge (g++), so maglev-calc and xdp-lb pick the same backend for the
 * same packet. Keep it plain C, no libc, no loops the verifier cannot bound.
 *
 * The hash is SipHash-1-3 (keyed, so an attacker cannot aim flows at one
 * table slot without the key) over the key below (16 bytes of it for IPv4,
 * all 40 for IPv6; see edge_flow_hash). A unit test checks it against a
 * byte-wise SipHash-c-d reference that is itself checked against BoringSSL's
 * SIPHASH_24. A flow's table slot is floor(hash * M / 2^64) (edge_flow_slot).
 */
#ifndef EDGE_FLOW_H
#define EDGE_FLOW_H

#if defined(__bpf__) || defined(__BPF__)
#include <linux/types.h>
typedef __u8 edge_u8;
typedef __u16 edge_u16;
typedef __u32 edge_u32;
typedef __u64 edge_u64;
#define EDGE_INLINE static __always_inline
#else
#include <stdint.h>
#include <string.h>
typedef uint8_t edge_u8;
typedef uint16_t edge_u16;
typedef uint32_t edge_u32;
typedef uint64_t edge_u64;
#define EDGE_INLINE static inline __attribute__((always_inline))
#endif

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "edge flow hash: words are read in host order; only little-endian hosts are supported"
#endif

#define EDGE_FAMILY_V4 4
#define EDGE_FAMILY_V6 6

/*
 * Addresses are stored as on the wire (network byte order). An IPv4 address
 * fills the first 4 bytes and the other 12 are zero. Ports are the wire bytes
 * too (big-endian). Protocol is the IP protocol number (6 TCP, 17 UDP, ...).
 * For ICMP, ports are zero. Every byte of the struct is hashed, so callers
 * must zero it first (pad included).
 */
struct edge_flow_key {
	edge_u8 src[16];
	edge_u8 dst[16];
	edge_u16 sport; /* big-endian */
	edge_u16 dport; /* big-endian */
	edge_u8 proto;
	edge_u8 family; /* EDGE_FAMILY_V4 or EDGE_FAMILY_V6 */
	edge_u8 pad[2];
} __attribute__((aligned(8)));

#define EDGE_FLOW_KEY_WORDS 5

/* The default key; deployments set their own (xdp-lb --hash-key, maglev-calc --hash-key). */
#define EDGE_HASH_KEY0 0x0706050403020100ULL
#define EDGE_HASH_KEY1 0x0f0e0d0c0b0a0908ULL

#define EDGE_ROTL64(x, b) (edge_u64)(((x) << (b)) | ((x) >> (64 - (b))))

#define EDGE_SIPROUND(v0, v1, v2, v3)                                                  \
	do {                                                                               \
		v0 += v1; v1 = EDGE_ROTL64(v1, 13); v1 ^= v0; v0 = EDGE_ROTL64(v0, 32);       \
		v2 += v3; v3 = EDGE_ROTL64(v3, 16); v3 ^= v2;                                  \
		v0 += v3; v3 = EDGE_ROTL64(v3, 21); v3 ^= v0;                                  \
		v2 += v1; v1 = EDGE_ROTL64(v1, 17); v1 ^= v2; v2 = EDGE_ROTL64(v2, 32);       \
	} while (0)

/* SipHash-1-3 over whole 64-bit words: the same construction with one compression
 * round per word and three finalization rounds. */
EDGE_INLINE edge_u64 edge_siphash13_words(edge_u64 k0, edge_u64 k1, const edge_u64 *w, int nwords)
{
	edge_u64 v0 = k0 ^ 0x736f6d6570736575ULL;
	edge_u64 v1 = k1 ^ 0x646f72616e646f6dULL;
	edge_u64 v2 = k0 ^ 0x6c7967656e657261ULL;
	edge_u64 v3 = k1 ^ 0x7465646279746573ULL;
	edge_u64 m, b = ((edge_u64)(nwords * 8)) << 56;
	int i;

#if defined(__bpf__) || defined(__BPF__) || defined(__clang__)
#pragma unroll
#else
#pragma GCC unroll 5
#endif
	for (i = 0; i < EDGE_FLOW_KEY_WORDS; i++) {
		if (i >= nwords)
			break;
		m = w[i];
		v3 ^= m;
		EDGE_SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	v3 ^= b;
	EDGE_SIPROUND(v0, v1, v2, v3);
	v0 ^= b;
	v2 ^= 0xff;
	EDGE_SIPROUND(v0, v1, v2, v3);
	EDGE_SIPROUND(v0, v1, v2, v3);
	EDGE_SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

/*
 * The flow hash: SipHash-1-3 of the key without the unused address bytes. IPv6
 * hashes all 40 bytes; IPv4 hashes 16: src[0..3], dst[0..3], sport, dport, proto,
 * family, pad (two words instead of five: the hash is most of a capture reader's
 * per-packet cost, and IPv4 is most packets).
 *
 * Why 1-3 and not 2-4: the hash only has to keep an attacker without the key from
 * aiming flows at chosen table slots (hash flooding), the use SipHash-1-3 is made
 * for (Linux's hsiphash on 64-bit, Rust's and CPython's string hashing). 2-4 cost
 * the XDP balancer a quarter of its new-flow time: BPF has no rotate instruction,
 * so each of SipHash's 14 rotations per round is three instructions.
 */
EDGE_INLINE edge_u64 edge_flow_hash(const struct edge_flow_key *key, edge_u64 k0, edge_u64 k1)
{
	edge_u64 w[EDGE_FLOW_KEY_WORDS];
	if (key->family == EDGE_FAMILY_V4) {
		edge_u32 s, d;
		__builtin_memcpy(&s, key->src, 4);
		__builtin_memcpy(&d, key->dst, 4);
		w[0] = (edge_u64)s | ((edge_u64)d << 32); /* the words as little-endian loads of the 16 bytes */
		__builtin_memcpy(&w[1], &key->sport, 8); /* sport, dport, proto, family, pad[2] */
		return edge_siphash13_words(k0, k1, w, 2);
	}
	__builtin_memcpy(w, key, sizeof(w));
	return edge_siphash13_words(k0, k1, w, EDGE_FLOW_KEY_WORDS);
}

/*
 * Table slot for a flow: the hash scaled to the table, floor(hash * M / 2^64)
 * (Lemire's multiply-shift range reduction, exact over all 64 bits), computed from
 * the two 32-bit halves so that it needs no 128-bit arithmetic (BPF has none):
 * hash * M = hi * M * 2^32 + lo * M, and the fraction lost by dropping the low 32
 * bits of lo * M never carries into the result. No division: a 64-bit modulo is
 * a real divide on x86, the slowest instruction of a new flow's path.
 * M < 2^32 (Maglev tables stay below 2^24), so no intermediate overflows.
 */
EDGE_INLINE edge_u32 edge_flow_slot(edge_u64 hash, edge_u32 table_size)
{
	edge_u64 hi = hash >> 32, lo = hash & 0xffffffffULL;
	return (edge_u32)((hi * table_size + ((lo * table_size) >> 32)) >> 32);
}

#endif /* EDGE_FLOW_H */
