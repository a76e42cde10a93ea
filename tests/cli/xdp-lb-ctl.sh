#!/usr/bin/env bash
# xdp-lb load / unload / service / backend: a balancer without a foreground process,
# edited in place through its pinned maps. Runs on a veth in a namespace of its own
# (xlb-ctl); the pins live in the host's /sys/fs/bpf (nsenter keeps the mount namespace).
# The table shares read back by `status` must be the ones maglev-calc computes.
. "$(dirname "$0")/lib.sh"

case_ "without a loaded balancer: usage errors, exit 2"
run xdp-lb service list -i xlb-nosuch0
expect_usage_error xdp-lb
expect_err 'xlb-nosuch0'
run xdp-lb backend drain -i xlb-nosuch0 --vip 203.0.113.10 --port 80 --address 10.0.1.11
expect_usage_error xdp-lb
run xdp-lb unload -i xlb-nosuch0
expect_usage_error xdp-lb
run xdp-lb load -i xlb-nosuch0
expect_usage_error xdp-lb
expect_err 'no configuration'
run xdp-lb service
expect_usage_error xdp-lb
run xdp-lb backend add -i lo --vip 203.0.113.10 --port 80
expect_usage_error xdp-lb
expect_err 'address'

if [ "$(id -u)" != 0 ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: needs root (XDP, bpffs) and CI=true"; exit 1; fi
    finish >/dev/null
    echo "SKIP: load/unload need root (XDP, bpffs); usage checks passed"
    exit 77
fi

NS=xlb-ctl
XLB=$(cd "$BIN" && pwd)/xdp-lb
cleanup() {
    nsenter --net=/run/netns/$NS "$XLB" -q unload -i xlb-ctl0 >/dev/null 2>&1
    ip netns del $NS 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
ip netns del $NS 2>/dev/null
ip netns add $NS
ip -n $NS link add xlb-ctl0 type veth peer name xlb-ctl1
ip -n $NS link set xlb-ctl0 up
ip -n $NS link set xlb-ctl1 up
inns() { run nsenter --net=/run/netns/$NS "$XLB" "$@"; }

cat >"$T/lb.toml" <<'TOML'
[lb]
table_size = 251
[[service]]
vip = "203.0.113.10"
port = 80
proto = "tcp"
backends = ["10.0.1.11", "10.0.1.12", "10.0.1.13"]
TOML

# The shares `status` shows for a service, as "ADDR SLOTS" lines, sorted.
shares() {
    inns -j status -i xlb-ctl0
    jq -r --arg s "$1" 'select(.type=="lb_service" and .service==$s) | .backends[] | "\(.backend) \(.slots)"' "$OUT" | sort
}
# What maglev-calc builds for the same backends (names and weights as given).
want() {
    maglev-calc -j table -m 251 -b "$1" | jq -r 'select(.type=="maglev_backend") | "\(.backend) \(.entries)"' | sort
}

case_ "load attaches and returns; status reads the pinned maps"
inns -c "$T/lb.toml" load -i xlb-ctl0 --mode generic
expect_rc 0
expect_err 'loaded on xlb-ctl0 \(generic XDP\), 1 services'
ip -n $NS link show xlb-ctl0 | grep -q xdpgeneric || fail "no generic XDP program on xlb-ctl0"
[ -e /sys/fs/bpf/edge/xdp-lb/xlb-ctl0/xlb_state ] || fail "no state map pinned"
[ "$(shares 203.0.113.10:80/tcp)" = "$(want 10.0.1.11,10.0.1.12,10.0.1.13)" ] || fail "shares differ from maglev-calc: $(shares 203.0.113.10:80/tcp)"
inns -c "$T/lb.toml" load -i xlb-ctl0
expect_usage_error xdp-lb
expect_err 'already runs on xlb-ctl0'

case_ "service add / list / del"
inns service add -i xlb-ctl0 --vip 2001:db8::10 --port 443 --proto udp --quic --backend 10.0.1.21 --backend 10.0.1.22=2
expect_rc 0
expect_err 'added service \[2001:db8::10\]:443/udp'
inns -j service list -i xlb-ctl0
expect_rc 0
expect_jsonl
[ "$(jq -s 'map(select(.type=="lb_service_config")) | length' "$OUT")" = 2 ] || fail "expected 2 services"
jq -s -e 'map(select(.service=="[2001:db8::10]:443/udp"))[0] | .quic and (.backends | map(.weight) == [1,2])' "$OUT" >/dev/null || fail "service not listed as added"
[ "$(shares '[2001:db8::10]:443/udp')" = "$(want 10.0.1.21,10.0.1.22=2)" ] || fail "weighted shares differ from maglev-calc"
inns service add -i xlb-ctl0 --vip 2001:db8::10 --port 443 --proto udp --backend 10.0.1.21
expect_usage_error xdp-lb
expect_err 'exists'
inns service add -i xlb-ctl0 --vip 203.0.113.11 --port 80 --quic --backend 10.0.1.21
expect_usage_error xdp-lb
inns service add -i xlb-ctl0 --vip 203.0.113.11 --port 80
expect_usage_error xdp-lb
expect_err 'at least one --backend'
inns service add -i xlb-ctl0 --vip 203.0.113.999 --port 80 --backend 10.0.1.21
expect_usage_error xdp-lb
inns service del -i xlb-ctl0 --vip 2001:db8::10 --port 443 --proto udp
expect_rc 0
inns -j status -i xlb-ctl0
expect_out '"services":1'
inns service del -i xlb-ctl0 --vip 2001:db8::10 --port 443 --proto udp
expect_usage_error xdp-lb
expect_err 'no service'

case_ "backend add / drain / set / del recompute the table (same as maglev-calc)"
inns backend add -i xlb-ctl0 --vip 203.0.113.10 --port 80 --address 10.0.1.14 --weight 2
expect_rc 0
[ "$(shares 203.0.113.10:80/tcp)" = "$(want 10.0.1.11,10.0.1.12,10.0.1.13,10.0.1.14=2)" ] || fail "after add: $(shares 203.0.113.10:80/tcp)"
inns backend drain -i xlb-ctl0 --vip 203.0.113.10 --port 80 --address 10.0.1.12
expect_rc 0
[ "$(shares 203.0.113.10:80/tcp)" = "$(want 10.0.1.11,10.0.1.13,10.0.1.14=2)" ] || fail "after drain: $(shares 203.0.113.10:80/tcp)"
inns -j backend list -i xlb-ctl0 --vip 203.0.113.10 --port 80
jq -s -e 'map(select(.backend=="10.0.1.12"))[0].weight == 0' "$OUT" >/dev/null || fail "drained backend not listed with weight 0"
inns backend set -i xlb-ctl0 --vip 203.0.113.10 --port 80 --address 10.0.1.12 --weight 3
expect_rc 0
[ "$(shares 203.0.113.10:80/tcp)" = "$(want 10.0.1.11,10.0.1.12=3,10.0.1.13,10.0.1.14=2)" ] || fail "after set"
inns backend del -i xlb-ctl0 --vip 203.0.113.10 --port 80 --address 10.0.1.11
expect_rc 0
[ "$(shares 203.0.113.10:80/tcp)" = "$(want 10.0.1.12=3,10.0.1.13,10.0.1.14=2)" ] || fail "after del"
inns backend del -i xlb-ctl0 --vip 203.0.113.10 --port 80 --address 10.0.1.11
expect_usage_error xdp-lb
expect_err 'not a backend'
inns backend add -i xlb-ctl0 --vip 203.0.113.10 --port 80 --address 10.0.1.13
expect_usage_error xdp-lb
expect_err 'already a backend'
inns backend set -i xlb-ctl0 --vip 203.0.113.10 --port 80 --address 10.0.1.13
expect_usage_error xdp-lb
inns backend add -i xlb-ctl0 --vip 203.0.113.10 --port 81 --address 10.0.1.15
expect_usage_error xdp-lb
expect_err 'no service 203.0.113.10:81/tcp'

case_ "service add --daisy-chain: listed, slots that move keep their previous backend, UDP refused"
inns service add -i xlb-ctl0 --vip 203.0.113.12 --port 443 --daisy-chain --backend 10.0.1.21 --backend 10.0.1.22
expect_rc 0
inns -j service list -i xlb-ctl0
jq -s -e 'map(select(.service=="203.0.113.12:443/tcp"))[0].daisy_chain == true' "$OUT" >/dev/null || fail "daisy_chain not listed"
jq -s -e 'map(select(.service=="203.0.113.10:80/tcp"))[0].daisy_chain == false' "$OUT" >/dev/null || fail "daisy_chain on a plain service"
inns -j status -i xlb-ctl0
jq -s -e 'map(select(.service=="203.0.113.12:443/tcp"))[0] | .daisy_chain and ([.backends[].previous_slots] | add) == 0' "$OUT" >/dev/null ||
    fail "a fresh daisy-chained table has previous backends: $(grep 203.0.113.12 "$OUT")"
inns backend add -i xlb-ctl0 --vip 203.0.113.12 --port 443 --address 10.0.1.23
expect_rc 0
inns -j status -i xlb-ctl0
# Every slot 10.0.1.23 took names its previous backend (Maglev may move a few more);
# the new backend is nobody's previous backend.
jq -s -e 'map(select(.service=="203.0.113.12:443/tcp"))[0].backends | (map(.previous_slots) | add) >= (map(select(.backend=="10.0.1.23"))[0].slots) and (map(select(.backend=="10.0.1.23"))[0] | .slots > 0 and .previous_slots == 0)' "$OUT" >/dev/null ||
    fail "previous backends after backend add: $(grep 203.0.113.12 "$OUT")"
jq -s -e 'map(select(.service=="203.0.113.10:80/tcp"))[0].backends | map(.previous_slots) | add == 0' "$OUT" >/dev/null ||
    fail "a service without daisy_chain records previous backends"
inns service add -i xlb-ctl0 --vip 203.0.113.12 --port 53 --proto udp --daisy-chain --backend 10.0.1.21
expect_usage_error xdp-lb
expect_err 'daisy-chain needs --proto tcp'

case_ "unload detaches and removes the pins"
inns unload -i xlb-ctl0
expect_rc 0
expect_err 'unloaded from xlb-ctl0'
ip -n $NS link show xlb-ctl0 | grep -q xdp && fail "XDP program still attached"
[ -e /sys/fs/bpf/edge/xdp-lb/xlb-ctl0 ] && fail "pins left behind"
# ... nor an empty directory above them (another test's balancer may hold pins there).
[ -d /sys/fs/bpf/edge/xdp-lb ] && [ -z "$(ls -A /sys/fs/bpf/edge/xdp-lb)" ] && fail "empty /sys/fs/bpf/edge/xdp-lb left behind"
inns unload -i xlb-ctl0
expect_usage_error xdp-lb

finish
