/* SPDX-License-Identifier: MIT */
/*
 * The floor of tests/bench/xdp-lb-pps, compiled by that script (not part of the build):
 *   -DREDIRECT_IFINDEX=N: redirect every frame to interface N untouched (the same path
 *                         as xdp-lb redirecting to a backend behind N, without the work);
 *   no define:            drop every frame (the receiving end, so that veth delivers
 *                         redirected frames and the backend's cost is the same for both).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

SEC("xdp")
int xdp_null(struct xdp_md *ctx)
{
	(void)ctx;
#ifdef REDIRECT_IFINDEX
	return bpf_redirect(REDIRECT_IFINDEX, 0);
#else
	return XDP_DROP;
#endif
}
