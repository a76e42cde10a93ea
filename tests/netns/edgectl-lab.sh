#!/usr/bin/env bash
# edgectl lab: the whole edge in network namespaces with real BIRD and nginx.
#   up -> status (every process running, BGP established, XDP native) -> down leaves nothing
#   trace on the live lab: BIRD's routes with AS path and MED (the stack's MEDs pick pop-b),
#   the balancer's own Maglev and connection tables (a keep-alive connection whose backend
#   is drained: trace names the conntrack backend, which really serves the next request),
#   IPv6 from the client to the IPv6 VIP and its trace
#   demo: its own assertions (hit after miss, failover within interval x fall + BGP
#   propagation, no broken connection on drain, >= 99% legitimate success under a SYN flood
#   by a binomial test)
#   demo interrupted with SIGINT midway: nothing left (no namespace, no process, no program)
# Root only (exit 77 otherwise; a failure under CI=true). State in a temp dir, never /run/edge-lab.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"
netns_require bird birdc nginx hping3 tcpdump curl ethtool nsenter ss jq bpftool
if ls /run/netns 2>/dev/null | grep -q '^el-'; then
    [ "${CI:-}" = true ] && { echo "FAIL: el-* namespaces exist (a lab is up?)"; exit 1; }
    echo "SKIP: a lab is up (el-* namespaces exist): edgectl lab down first"
    exit 77
fi
ECTL=$(cd "$BIN" && pwd)/edgectl
export EDGE_LAB_DIR=$T/lab
export EDGE_BIN=$(cd "$BIN" && pwd)
DEMO=
KA=
cleanup() {
    [ -n "$DEMO" ] && kill -INT "$DEMO" 2>/dev/null && wait "$DEMO" 2>/dev/null
    [ -n "$KA" ] && kill "$KA" 2>/dev/null
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
expect_out 'and http://\[2001:db8::10\]:80/ over IPv6'
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

case_ "edgectl trace on the live lab: BIRD's PoP (AS path, MED), the backend that really gets the flow, then cached there"
flow=10.8.0.2:41000-203.0.113.10:80/tcp
run "$ECTL" -j trace --flow $flow --path /1k.bin
expect_rc 0
# examples/edge.toml: pop-a MED 20, pop-b MED 10, equal AS path lengths: BIRD prefers pop-b.
jq -s -e 'map(select(.type=="trace_bgp"))[0] | .source == "bird" and .pop == "pop-b" and (.reason | test("lowest MED"))' "$OUT" \
    >/dev/null || fail "BGP: $(head -1 "$OUT")"
jq -s -e 'map(select(.type=="trace_bgp"))[0].routes | length == 2 and
    (map(select(.pop == "pop-a"))[0] | .med == 20 and .best == false and .as_path == "65001") and
    (map(select(.pop == "pop-b"))[0] | .med == 10 and .best == true and .as_path == "65002")' "$OUT" >/dev/null ||
    fail "BGP routes from birdc: $(head -1 "$OUT")"
jq -s -e 'map(select(.type=="trace_lb"))[0] | .source == "xdp-lb" and .conntrack == false and .picked_by == "maglev" and
    .backend == .maglev_backend' "$OUT" >/dev/null || fail "a new flow: $(grep trace_lb "$OUT")"
be=$(jq -r 'select(.type=="trace_lb") | .backend' "$OUT")
jq -s -e 'map(select(.type=="trace_cache"))[0].cached == false' "$OUT" >/dev/null || fail "1k.bin cached before any request"
LBPID=$(awk '$1 == "proc" && $2 == "pop-b/xdp-lb" { print $4 }' "$EDGE_LAB_DIR/state")
lb_stats() { nsenter -t "$LBPID" -m -n "$EDGE_BIN/xdp-lb" -j stats -i el-b-lb0; }
be_flows() { lb_stats | jq -s --arg b "$1" 'map(select(.type=="lb_backend_stats" and .backend==$b))[0].new_flows'; }
be_packets() {  # "ADDR=PACKETS ..." for every backend of pop-b
    lb_stats | jq -r -s '[.[] | select(.type=="lb_backend_stats") | "\(.backend)=\(.packets)"] | sort | join(" ")'
}
before=$(be_flows "$be")
ip netns exec el-cli curl -sf -m 5 --local-port 41000 -o /dev/null http://203.0.113.10/1k.bin || fail "curl through the lab"
after=$(be_flows "$be")
[ "$after" = $((before + 1)) ] || fail "trace said $be; its new flows went $before -> $after"
run "$ECTL" -j trace --flow $flow --path /1k.bin
jq -s -e --arg b "$be" 'map(select(.type=="trace_cache"))[0] | .cached == true and .backend == $b' "$OUT" >/dev/null ||
    fail "not cached on $be after the request: $(tail -1 "$OUT")"
jq -s -e --arg b "$be" 'map(select(.type=="trace_lb"))[0] | .conntrack == true and .conntrack_backend == $b and .picked_by == "conntrack"' \
    "$OUT" >/dev/null || fail "the flow's connection-table entry: $(grep trace_lb "$OUT")"

case_ "trace after a drain: the connection table keeps an established flow on its backend, Maglev picks another"
# A keep-alive HTTP client in el-cli: one GET per line written to fd 4, the status line of each answer to ka.out.
mkfifo "$T/ka.in"
ip netns exec el-cli bash -c '
    exec 3<>/dev/tcp/203.0.113.10/80 || exit 1
    while read -r path; do
        printf "GET %s HTTP/1.1\r\nHost: 203.0.113.10\r\n\r\n" "$path" >&3
        status= len=0
        while IFS= read -r -t 5 line <&3; do
            line=${line%$'"'"'\r'"'"'}
            [ -z "$status" ] && status=$line
            [ -z "$line" ] && break
            case ${line,,} in content-length:*) len=${line#*:}; len=${len// /} ;; esac
        done
        [ "$len" -gt 0 ] && LC_ALL=C read -r -t 5 -N "$len" _ <&3
        echo "${status:-no answer}"
    done' <"$T/ka.in" >"$T/ka.out" 2>&1 &
KA=$!
trap '' PIPE  # a client that died must fail the test, not kill it
exec 4>"$T/ka.in"
ka_get() {  # ka_get N: the N-th request on the connection answers 200
    echo /hello.txt >&4
    for _ in $(seq 50); do [ "$(wc -l <"$T/ka.out")" -ge "$1" ] && break; sleep 0.1; done
    sed -n "${1}p" "$T/ka.out" | grep -q '^HTTP/1.1 200' || fail "keep-alive request $1: $(sed -n "${1}p" "$T/ka.out")"
}
ka_get 1
lport=$(ip netns exec el-cli ss -Htn state established '( dport = :80 )' | awk '{split($3, a, ":"); print a[2]; exit}')
[ -n "$lport" ] || fail "no keep-alive connection in el-cli"
kflow=10.8.0.2:$lport-203.0.113.10:80/tcp
run "$ECTL" -j trace --flow "$kflow"
kbe=$(jq -r 'select(.type=="trace_lb") | .conntrack_backend' "$OUT")
jq -s -e 'map(select(.type=="trace_lb"))[0] | .conntrack == true and .picked_by == "conntrack" and .maglev_backend == .conntrack_backend' \
    "$OUT" >/dev/null || fail "before the drain: $(grep trace_lb "$OUT")"
# The backend holding the connection (lab layout: 10.2.1.1N is served in el-bNs).
srv_ns=el-b$(( ${kbe##*.} - 10 ))s
ip netns exec "$srv_ns" ss -Htn state established '( sport = :80 )' | grep -q "10.8.0.2:$lport\b" ||
    fail "the connection 10.8.0.2:$lport is not established on $kbe ($srv_ns)"
# Drain that backend: weight 0 in pop-b's xdp-lb.toml, SIGHUP, wait for the reload.
conf=$EDGE_LAB_DIR/conf/pop-b/xdp-lb.toml
cp "$conf" "$T/xdp-lb.toml.orig"
sed -i -E "s/\"$kbe(=[0-9]+)?\"/\"$kbe=0\"/" "$conf"
grep -q "\"$kbe=0\"" "$conf" || fail "could not drain $kbe in $conf"
lb_reload() {
    local n0
    n0=$(grep -c '"reloaded"' "$EDGE_LAB_DIR/logs/pop-b_xdp-lb.err")
    kill -HUP "$LBPID"
    for _ in $(seq 50); do [ "$(grep -c '"reloaded"' "$EDGE_LAB_DIR/logs/pop-b_xdp-lb.err")" -gt "$n0" ] && return; sleep 0.1; done
    fail "pop-b's xdp-lb did not reload in 5 s"
}
lb_reload
run "$ECTL" -j trace --flow "$kflow"
expect_rc 0
jq -s -e --arg b "$kbe" 'map(select(.type=="trace_lb"))[0] | .conntrack == true and .conntrack_backend == $b and .backend == $b and
    .picked_by == "conntrack" and .maglev_backend != $b and (.maglev_backend | test("^10\\.2\\.1\\."))' "$OUT" >/dev/null ||
    fail "after draining $kbe: $(grep trace_lb "$OUT")"
run "$ECTL" trace --flow "$kflow"
expect_out "connection-table entry -> $kbe, NOT Maglev's choice 10\.2\.1\.1[123]"
# The conntrack backend really serves it: the next request on the connection answers, counted on $kbe only.
p0=$(be_packets)
ka_get 2
p1=$(be_packets)
for pair in $p1; do
    b=${pair%=*} n=${pair#*=}
    old=$(tr ' ' '\n' <<<"$p0" | sed -n "s/^$b=//p")
    if [ "$b" = "$kbe" ]; then [ "$n" -gt "$old" ] || fail "$kbe: packets $old -> $n: the request did not go through it"
    else [ "$n" = "$old" ] || fail "$b (not the flow's backend): packets $old -> $n"; fi
done
ip netns exec "$srv_ns" ss -Htn state established '( sport = :80 )' | grep -q "10.8.0.2:$lport\b" ||
    fail "the connection left $kbe after the drain"
exec 4>&-
wait "$KA" 2>/dev/null
KA=
trap - PIPE
cp "$T/xdp-lb.toml.orig" "$conf"
lb_reload

case_ "IPv6: the client's request to the IPv6 VIP through BIRD's best PoP, xdp-lb and a backend; trace follows it"
flow6='[fd00:8::2]:41002-[2001:db8::10]:80/tcp'
run "$ECTL" -j trace --flow "$flow6" --path /hello.txt
expect_rc 0
jq -s -e 'map(select(.type=="trace_bgp"))[0] | .source == "bird" and .prefix == "2001:db8::/48" and .pop == "pop-b" and
    (.routes | length == 2)' "$OUT" >/dev/null || fail "IPv6 BGP: $(head -1 "$OUT")"
jq -s -e 'map(select(.type=="trace_lb"))[0] | .source == "xdp-lb" and .conntrack == false and .backend == .maglev_backend' "$OUT" \
    >/dev/null || fail "IPv6 new flow: $(grep trace_lb "$OUT")"
be6=$(jq -r 'select(.type=="trace_lb") | .backend' "$OUT")
before=$(be_flows "$be6")
code=$(ip netns exec el-cli curl -s -g -m 5 --local-port 41002 -o /dev/null -w '%{http_code}' 'http://[2001:db8::10]/hello.txt')
[ "$code" = 200 ] || fail "curl http://[2001:db8::10]/hello.txt from el-cli: $code"
after=$(be_flows "$be6")
[ "$after" = $((before + 1)) ] || fail "trace said $be6 for the IPv6 flow; its new flows went $before -> $after"
run "$ECTL" -j trace --flow "$flow6" --path /hello.txt
jq -s -e --arg b "$be6" 'map(select(.type=="trace_lb"))[0] | .conntrack == true and .conntrack_backend == $b' "$OUT" >/dev/null ||
    fail "IPv6 connection-table entry: $(grep trace_lb "$OUT")"
jq -s -e --arg b "$be6" 'map(select(.type=="trace_cache"))[0] | .key == "[2001:db8::10]/hello.txt" and .cached == true and .backend == $b' \
    "$OUT" >/dev/null || fail "IPv6: not cached on $be6: $(tail -1 "$OUT")"

case_ "trace when every PoP withdrew the prefix: BIRD has no path, exit 1; back when they recover"
rm -f "$EDGE_LAB_DIR"/pop-a/healthy "$EDGE_LAB_DIR"/pop-b/healthy
for _ in $(seq 100); do
    "$ECTL" trace --flow $flow >"$OUT" 2>"$ERR"
    grep -q 'BIRD has no path for 203.0.113.0/24' "$OUT" && break
    sleep 0.1
done
run "$ECTL" trace --flow $flow
expect_rc 1
expect_out 'BIRD has no path for 203.0.113.0/24: every PoP withdrew it'
touch "$EDGE_LAB_DIR"/pop-a/healthy "$EDGE_LAB_DIR"/pop-b/healthy
for _ in $(seq 100); do
    "$ECTL" -j trace --flow $flow >"$OUT" 2>/dev/null && jq -s -e 'map(select(.type=="trace_bgp"))[0] | .source == "bird" and
        .pop == "pop-b" and (.routes | length == 2)' "$OUT" >/dev/null && break
    sleep 0.1
done
run "$ECTL" -j trace --flow $flow
expect_rc 0
jq -s -e 'map(select(.type=="trace_bgp"))[0] | .source == "bird" and .pop == "pop-b" and (.routes | length == 2)' "$OUT" >/dev/null ||
    fail "the PoPs did not come back within 10 s: $(head -1 "$OUT")"

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
# Under the sanitizers (EDGE_SLOW > 1) every process of the lab is 2-3x slower beside the
# flood on 2 cores: the flood step's measurement alone failing there gets one more run
# (the uninstrumented tier gets none).
if [ "$rc" != 0 ] && [ "${EDGE_SLOW:-1}" != 1 ] &&
    grep -qE 'demo step [0-9]+: assertion failed: (at least 20 legitimate requests measured|legitimate success)' "$ERR"; then
    echo "  note: the flood step failed under the sanitizers ($(grep -h 'legitimate clients during' "$OUT" | sed 's/^ *//')); one more run"
    t0=$SECONDS
    timeout 240 "$ECTL" lab demo >"$OUT" 2>"$ERR" </dev/null
    rc=$?
fi
expect_rc 0
echo "  lab demo took $((SECONDS - t0)) s"
expect_out 'ok: the first request is a MISS'
expect_out 'ok: the second request is a HIT'
expect_out 'ok: the origin saw exactly one request'
expect_out 'ok: BIRD.s best IPv6 path is pop-b.s too'
expect_out 'ok: pop-b.s xdp-lb balanced the IPv6 connection'
expect_out 'ok: BIRD.s best path is pop-b.s, as the stack.s AS paths and MEDs say'
expect_out 'ok: failover within interval x fall'
expect_out 'ok: all 3 went through pop-a'
expect_out 'ok: the connection table keeps the connection on the drained backend; Maglev picks another'
expect_out 'ok: no established connection broke'
expect_out 'ok: no new connection went to the drained backend'
expect_out 'ok: at least 20 legitimate requests measured'
expect_out 'ok: legitimate success >= 99% under the flood'
expect_out 'ok: every guard on the flooded PoP detected the flood'
expect_out 'ok: maglev-calc maps the flows of pop-a.s capture to its backends'
expect_out 'ok: no lab namespace and no lab process left'
grep -q 'FAILED' "$OUT" && fail "a demo assertion failed"
grep -E 'withdrawn and rerouted|legitimate clients during|guards: .* SYN cookies sent' "$OUT" | sed 's/^ */  /'
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
