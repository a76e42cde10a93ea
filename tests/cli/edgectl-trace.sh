#!/usr/bin/env bash
# edgectl trace without a lab: the PoP predicted from the stack (shortest AS path with
# prepends, then lowest MED, then lowest router ID), the backend Maglev picks there -- the same as maglev-calc with the rendered
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
    jq -s -e 'map(select(.type=="trace_bgp"))[0] | .pop == "pop-b" and .source == "stack" and .as_path == "65002"' "$OUT" >/dev/null ||
        fail "BGP: $(head -1 "$OUT")"
    jq -s -e 'map(select(.type=="trace_lb"))[0] | .source == "stack" and .picked_by == "maglev" and .conntrack == null' "$OUT" >/dev/null ||
        fail "LB without a lab: $(grep trace_lb "$OUT")"
    got=$(jq -r 'select(.type=="trace_lb") | .backend' "$OUT")
    want=$(maglev-calc -j -c "$T/r/pop-b/maglev-calc.toml" lookup $flow | jq -r .backend)
    [ -n "$got" ] && [ "$got" = "$want" ] || fail "$flow: trace says $got, maglev-calc says $want"
    jq -s -e 'map(select(.type=="trace_cache"))[0] | .key == "203.0.113.10/hello.txt" and .cached == null' "$OUT" >/dev/null || fail "cache"
done

case_ "an IPv6 flow: the IPv6 prefix, Maglev as maglev-calc computes it, the bracketed Host in the cache key"
flow6='[fd00:8::2]:40000-[2001:db8::10]:80/tcp'
run edgectl -j trace --flow "$flow6" --path /hello.txt
expect_rc 0
jq -s -e 'map(select(.type=="trace_bgp"))[0] | .prefix == "2001:db8::/48" and .pop == "pop-b" and .source == "stack"' "$OUT" >/dev/null ||
    fail "IPv6 BGP: $(head -1 "$OUT")"
got=$(jq -r 'select(.type=="trace_lb") | .backend' "$OUT")
want=$(maglev-calc -j -c "$T/r/pop-b/maglev-calc.toml" lookup "$flow6" | jq -r .backend)
[ -n "$got" ] && [ "$got" = "$want" ] || fail "$flow6: trace says $got, maglev-calc says $want"
jq -s -e 'map(select(.type=="trace_cache"))[0].key == "[2001:db8::10]/hello.txt"' "$OUT" >/dev/null || fail "IPv6 cache key: $(tail -1 "$OUT")"

case_ "the text view names each layer"
run edgectl trace --flow 192.0.2.7:5555-203.0.113.10:80/tcp --host WWW.Example.com --path /a
expect_rc 0
expect_out '^BGP: +203.0.113.0/24 -> pop-b \(AS path 65002, MED 10\): predicted from the stack: equal AS path lengths, the lowest MED'
expect_out '^ +\* pop-b +AS path 65002 +MED 10 +<- best'
expect_out '^ +pop-a +AS path 65001 +MED 20 *$'
expect_out '^xdp-lb: flow hash [0-9a-f]{16}, slot [0-9]+ of 65537: backend 10\.2\.1\.1[123]'
expect_out '^guard: +passed: the source is on the allow list'
expect_out '^cache: +key www.example.com/a'

case_ "BGP's choice from the stack: AS path length (prepend), then MED, then router ID"
# stack_with MED_A MED_B PREPEND_A PREPEND_B: examples/edge.toml with those per-PoP settings ("" = none)
stack_with() {
    sed -e '/^med = /d' -e '/^# prepend/d' "$SRC/examples/edge.toml" |
        awk -v ma="$1" -v mb="$2" -v pa="$3" -v pb="$4" '
            /^name = "pop-a"/ { print; if (ma != "") print "med = " ma; if (pa != "") print "prepend = " pa; next }
            /^name = "pop-b"/ { print; if (mb != "") print "med = " mb; if (pb != "") print "prepend = " pb; next }
            { print }'
}
trace_pop() {  # trace_pop FILE -> "POP|AS_PATH|REASON"
    run edgectl -j trace "$1" --flow 10.8.0.2:40000-203.0.113.10:80/tcp
    expect_rc 0
    jq -r 'select(.type=="trace_bgp") | "\(.pop)|\(.as_path)|\(.reason)|\(.routes | map("\(.pop)=\(.med)/\(.as_path_length)/\(.best)") | join(","))"' "$OUT"
}
stack_with "" "" "" "" >"$T/plain.toml"
got=$(trace_pop "$T/plain.toml")
[[ "$got" == "pop-a|65001|predicted from the stack: equal AS path lengths and MEDs, the lowest router ID (10.255.0.1 vs pop-b 10.255.0.2)|"* ]] ||
    fail "no MED: $got"
[[ "$got" == *"|pop-a=null/1/true,pop-b=null/1/false" ]] || fail "no MED, routes: $got"
stack_with 5 "" "" "" >"$T/med-a.toml"
got=$(trace_pop "$T/med-a.toml")
[[ "$got" == "pop-b|65002|predicted from the stack: equal AS path lengths, the lowest MED"* ]] ||
    fail "a missing MED counts as 0, so pop-b (none) beats pop-a (5): $got"
stack_with 30 40 "" "" >"$T/med-ab.toml"
got=$(trace_pop "$T/med-ab.toml")
[[ "$got" == "pop-a|65001|"*"the lowest MED (30 vs pop-b 40)|pop-a=30/1/true,pop-b=40/1/false" ]] || fail "MED 30 < 40: $got"
stack_with 10 20 2 "" >"$T/prepend.toml"
got=$(trace_pop "$T/prepend.toml")
[[ "$got" == "pop-b|65002|predicted from the stack: the shortest AS path (1 AS vs pop-a 3 AS)|pop-a=10/3/false,pop-b=20/1/true" ]] ||
    fail "prepend 2 loses despite the lower MED: $got"
[ "$(jq -r 'select(.type=="trace_bgp") | .routes[0].as_path' "$OUT")" = "65001 65001 65001" ] || fail "prepended path"

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
