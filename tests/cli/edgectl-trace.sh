#!/usr/bin/env bash
# edgectl trace without a lab: the PoP predicted from the stack (lowest router ID on equal
# paths), the backend Maglev picks there -- the same as maglev-calc with the rendered
# config -- the guard's and the cache's view; bad flows. Live tracing is tested in
# tests/netns/edgectl-lab.sh.
. "$(dirname "$0")/lib.sh"
export EDGE_LAB_DIR=$T/nolab

case_ "a flow to the VIP: PoP, Maglev backend (as maglev-calc computes it), guard, cache key"
run edgectl render --out "$T/r"
expect_rc 0
for port in 40000 40001 40002 40003 40004 40005; do
    flow=10.8.0.2:$port-203.0.113.10:80/tcp
    run edgectl -j trace --flow $flow --path /hello.txt
    expect_rc 0
    expect_jsonl
    jq -s -e 'map(select(.type=="trace_bgp"))[0] | .pop == "pop-a" and .source == "stack" and .as_path == "65001"' "$OUT" >/dev/null ||
        fail "BGP: $(head -1 "$OUT")"
    got=$(jq -r 'select(.type=="trace_lb") | .backend' "$OUT")
    want=$(maglev-calc -j -c "$T/r/pop-a/maglev-calc.toml" lookup $flow | jq -r .backend)
    [ -n "$got" ] && [ "$got" = "$want" ] || fail "$flow: trace says $got, maglev-calc says $want"
    jq -s -e 'map(select(.type=="trace_cache"))[0] | .key == "203.0.113.10/hello.txt" and .cached == null' "$OUT" >/dev/null || fail "cache"
done

case_ "the text view names each layer"
run edgectl trace --flow 192.0.2.7:5555-203.0.113.10:80/tcp --host WWW.Example.com --path /a
expect_rc 0
expect_out '^BGP: +203.0.113.0/24 -> pop-a'
expect_out '^xdp-lb: flow hash [0-9a-f]{16}, slot [0-9]+ of 65537: backend 10\.1\.1\.1[123]'
expect_out '^guard: +passed: the source is on the allow list'
expect_out '^cache: +key www.example.com/a'

case_ "UDP: the guard protects TCP only, no cache"
run edgectl trace --flow 10.8.0.2:40000-203.0.113.10:443/udp
expect_rc 0
expect_out 'guard: +passed: the guard protects TCP only'
expect_out 'cache: +port 443/udp is not the cache port 80/tcp'

case_ "a port without a service: the balancer passes it"
run edgectl trace --flow 10.8.0.2:40000-203.0.113.10:22/tcp
expect_rc 0
expect_out 'no service 203.0.113.10:22/tcp'

case_ "an address outside every anycast prefix: exit 1"
run edgectl trace --flow 10.8.0.2:40000-198.51.100.1:80/tcp
expect_rc 1
expect_out 'in no anycast prefix'

case_ "bad or missing flows are usage errors"
run edgectl trace --flow garbage
expect_usage_error edgectl
run edgectl trace --flow 10.8.0.2:1-203.0.113.10:80/sctp
expect_usage_error edgectl
run edgectl trace
expect_usage_error edgectl

case_ "status with no lab: exit 1"
run edgectl status
expect_rc 1
expect_out 'no lab is up'

finish
