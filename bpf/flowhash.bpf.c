/* SPDX-License-Identifier: MIT */
/*
 * flowhash: parse a packet, compute the shared flow hash and record it.
 * It proves the BPF build pipeline (object -> skeleton -> embedded) and that BPF and
 * user space hash the same packet to the same value. Always XDP_PASS.
 */
#include "parse.bpf.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

const volatile __u64 hash_k0 = EDGE_HASH_KEY0;
const volatile __u64 hash_k1 = EDGE_HASH_KEY1;

struct flowhash_result {
	struct edge_flow_key key;
	__u64 hash;
	__u32 status; /* enum edge_parse_rc */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct flowhash_result);
} last SEC(".maps");

SEC("xdp")
int flowhash(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct edge_parsed p;
	__u32 zero = 0;
	struct flowhash_result *res = bpf_map_lookup_elem(&last, &zero);

	if (!res)
		return XDP_PASS;
	__builtin_memset(&p, 0, sizeof(p));
	res->status = edge_parse(data, data_end, &p);
	res->key = p.key;
	res->hash = res->status == EDGE_PARSE_OK ? edge_flow_hash(&p.key, hash_k0, hash_k1) : 0;
	return XDP_PASS;
}
