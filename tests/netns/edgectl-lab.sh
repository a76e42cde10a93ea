#!/usr/bin/env bash
# edgectl lab: the whole edge in network namespaces with real BIRD and nginx.
#   up -> status (every process running, BGP established, XDP native) -> down leaves nothing
#   demo: its own assertions (hit after miss, failover within interval x fall + BGP
#   propagation, no broken connection on drain, >= 99% legitimate success under a SYN flood)
#   demo interrupted with SIGINT midway: nothing left (no namespace, no process, no program)
# Root only (exit 77 otherwise; a failure under CI=true). State in a temp dir, never /run/edge-lab.
. "$(dirname "$0")/../cli/lib.sh"

if [ "$(id -u)" != 0 ]; then
    [ "${CI:-}" = true ] && { echo "FAIL: needs root (namespaces, XDP) and CI=true"; exit 1; }
    echo "SKIP: needs root (network namespaces, XDP)"
    exit 77
fi
for t in bird birdc nginx hping3 tcpdump curl ethtool nsenter ss jq bpftool; do
    if ! command -v $t >/dev/null; then
        [ "${CI:-}" = true ] && { echo "FAIL: $t missing and CI=true"; exit 1; }
        echo "SKIP: $t not installed"
        exit 77
    fi
done
if ls /run/netns 2>/dev/null | grep -q '^el-'; then
    [ "${CI:-}" = true ] && { echo "FAIL: el-* namespaces exist (a lab is up?)"; exit 1; }
    echo "SKIP: a lab is up (el-* namespaces exist): edgectl lab down first"
    exit 77
fi
ECTL=$(cd "$BIN" && pwd)/edgectl
export EDGE_LAB_DIR=$T/lab
export EDGE_BIN=$(cd "$BIN" && pwd)
DEMO=
cleanup() {
    [ -n "$DEMO" ] && kill -INT "$DEMO" 2>/dev/null && wait "$DEMO" 2>/dev/null
    timeout 60 "$ECTL" lab down >/dev/null 2>&1
    rm -rf "$T"
}
trap cleanup EXIT

# nothing_left PIDS_FILE PROG_IDS_FILE: no el-* namespace, no recorded process, no state
# directory, none of the lab's XDP programs.
nothing_left() {
    local left
    left=$(ls /run/netns 2>/dev/null | grep '^el-' | head -3 | tr '\n' ' ')
    [ -z "$left" ] || fail "namespaces left: $left"
    while read -r pid start; do
        [ -n "$pid" ] || continue
        # (a zombie waiting for its new parent to reap it has stopped: not counted)
        if [ -r /proc/$pid/stat ] && [ "$(awk '$3 != "Z" {print $22}' /proc/$pid/stat 2>/dev/null)" = "$start" ]; then
            fail "process $pid ($(cat /proc/$pid/comm 2>/dev/null)) still runs"
        fi
    done <"$1"
    [ ! -e "$EDGE_LAB_DIR/state" ] || fail "state left in $EDGE_LAB_DIR"
    if [ -n "${2:-}" ]; then
        while read -r id; do
            [ -n "$id" ] || continue
            bpftool prog show id "$id" >/dev/null 2>&1 && fail "XDP program $id still loaded"
        done <"$2"
    fi
}
pids_of_lab() { awk '$1 == "proc" { print $4, $5 }' "$EDGE_LAB_DIR/state" 2>/dev/null; }

case_ "lab up builds the edge and returns when a client reaches the VIP"
t0=$SECONDS
run "$ECTL" lab up
expect_rc 0
expect_out 'BGP sessions established; BIRD has 203.0.113.0/24 from 2 PoPs'
expect_out 'the client reaches http://203.0.113.10:80/ through the edge'
echo "  lab up took $((SECONDS - t0)) s"
pids_of_lab >"$T/pids"
[ "$(wc -l <"$T/pids")" -ge 30 ] || fail "expected >= 30 recorded processes: $(cat "$T/pids" | wc -l)"

case_ "lab status: every process running, both BGP sessions established, ISP routes, native XDP"
run "$ECTL" -j lab status
expect_rc 0
expect_jsonl
jq -s -e 'map(select(.type=="lab_status"))[0] | .up and .namespaces == 20 and .running == .processes' "$OUT" >/dev/null ||
    fail "lab_status: $(grep lab_status "$OUT")"
jq -s -e '[.[] | select(.type=="lab_bgp_session" and .state=="established")] | length == 2' "$OUT" >/dev/null || fail "BGP sessions"
jq -s -e '[.[] | select(.type=="lab_isp_route" and .prefix=="203.0.113.0/24")] | length == 2 and (map(select(.best)) | length == 1)' \
    "$OUT" >/dev/null || fail "ISP routes"
jq -s -e '[.[] | select(.type=="lab_xdp")] | length == 22 and all(.mode == "native")' "$OUT" >/dev/null || fail "XDP programs"
jq -r 'select(.type=="lab_xdp") | .prog_id' "$OUT" >"$T/progs"
run "$ECTL" lab status
expect_rc 0
expect_out 'pop-a/xdp-lb +pid [0-9]+ +el-a-lb +running'

case_ "edgectl status: every component running, from control sockets and pinned maps"
run "$ECTL" -j status
expect_rc 0
expect_jsonl
jq -s -e '[.[] | select(.type=="component_status" and .running)] | length == 32' "$OUT" >/dev/null || fail "32 running components"
jq -s -e 'map(select(.component=="bird"))[0].established == 2' "$OUT" >/dev/null || fail "BIRD sessions"
jq -s -e '[.[] | select(.component=="synflood-guard" and .mode=="pass")] | length == 6' "$OUT" >/dev/null || fail "guards in pass mode"
jq -s -e '[.[] | select(.component=="bgp-announce" and .session=="established" and .healthy)] | length == 2' "$OUT" >/dev/null ||
    fail "bgp-announce sessions"

case_ "edgectl trace on the live lab: BIRD's PoP, the backend that really gets the flow, then cached there"
flow=10.8.0.2:41000-203.0.113.10:80/tcp
run "$ECTL" -j trace --flow $flow --path /1k.bin
expect_rc 0
jq -s -e 'map(select(.type=="trace_bgp"))[0] | .source == "bird" and .pop == "pop-a"' "$OUT" >/dev/null || fail "BGP: $(head -1 "$OUT")"
be=$(jq -r 'select(.type=="trace_lb") | .backend' "$OUT")
jq -s -e 'map(select(.type=="trace_cache"))[0].cached == false' "$OUT" >/dev/null || fail "1k.bin cached before any request"
LBPID=$(awk '$1 == "proc" && $2 == "pop-a/xdp-lb" { print $4 }' "$EDGE_LAB_DIR/state")
be_flows() {
    nsenter -t "$LBPID" -m -n "$EDGE_BIN/xdp-lb" -j stats -i el-a-lb0 |
        jq -s --arg b "$1" 'map(select(.type=="lb_backend_stats" and .backend==$b))[0].new_flows'
}
before=$(be_flows "$be")
ip netns exec el-cli curl -sf -m 5 --local-port 41000 -o /dev/null http://203.0.113.10/1k.bin || fail "curl through the lab"
after=$(be_flows "$be")
[ "$after" = $((before + 1)) ] || fail "trace said $be; its new flows went $before -> $after"
run "$ECTL" -j trace --flow $flow --path /1k.bin
jq -s -e --arg b "$be" 'map(select(.type=="trace_cache"))[0] | .cached == true and .backend == $b' "$OUT" >/dev/null ||
    fail "not cached on $be after the request: $(tail -1 "$OUT")"

case_ "lab up refuses while a lab is up"
run "$ECTL" lab up
expect_rc 1
expect_err 'already up'

case_ "lab down stops every process and deletes every namespace; nothing is left"
run "$ECTL" lab down
expect_rc 0
expect_out 'stopped [0-9]+ processes'
expect_out 'deleted 20 namespaces'
nothing_left "$T/pids" "$T/progs"
run "$ECTL" lab status
expect_rc 1
expect_out 'no lab is up'

case_ "the demo: every step's assertion holds, then down leaves nothing"
t0=$SECONDS
timeout 240 "$ECTL" lab demo >"$OUT" 2>"$ERR" </dev/null
rc=$?
expect_rc 0
echo "  lab demo took $((SECONDS - t0)) s"
expect_out 'ok: the first request is a MISS'
expect_out 'ok: the second request is a HIT'
expect_out 'ok: the origin saw exactly one request'
expect_out 'ok: failover within interval x fall'
expect_out 'ok: all 3 went through pop-b'
expect_out 'ok: no established connection broke'
expect_out 'ok: no new connection went to the drained backend'
expect_out 'ok: legitimate success >= 99% under the flood'
expect_out 'ok: maglev-calc maps the flows of pop-a.s capture to its backends'
expect_out 'ok: no lab namespace and no lab process left'
grep -q 'FAILED' "$OUT" && fail "a demo assertion failed"
grep -E 'withdrawn and rerouted|legitimate client during' "$OUT" | sed 's/^ */  /'
ls /run/netns 2>/dev/null | grep -q '^el-' && fail "namespaces left after the demo"

case_ "SIGINT in the middle of the demo removes everything"
timeout 240 "$ECTL" lab demo >"$T/demo2.out" 2>"$T/demo2.err" </dev/null &
DEMO=$!
for _ in $(seq 600); do grep -q '^== 3\.' "$T/demo2.out" 2>/dev/null && break; sleep 0.1; done
grep -q '^== 3\.' "$T/demo2.out" || fail "the demo did not reach step 3 in 60 s: $(tail -3 "$T/demo2.err")"
pids_of_lab >"$T/pids2"
[ -s "$T/pids2" ] || fail "no recorded processes while the demo runs"
kill -INT "$DEMO"
for _ in $(seq 300); do kill -0 "$DEMO" 2>/dev/null || break; sleep 0.1; done
kill -0 "$DEMO" 2>/dev/null && fail "the demo still runs 30 s after SIGINT"
wait "$DEMO"
rc=$?
DEMO=
[ "$rc" = 1 ] || fail "interrupted demo exited $rc, expected 1"
grep -q 'interrupted' "$T/demo2.err" || fail "no 'interrupted' message: $(tail -2 "$T/demo2.err")"
nothing_left "$T/pids2"

finish
