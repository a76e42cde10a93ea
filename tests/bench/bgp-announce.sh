#!/usr/bin/env bash
# Benchmark: time until BIRD holds N IPv4 /24s sent by bgp-announce, versus a second BIRD
# exporting them as static routes (cold start) and ExaBGP (tuned, batched API), alternating
# runs (A B C A B C ...), medians. Also bgp-announce CPU and peak RSS.
#   tests/bench/bgp-announce.sh [-n PREFIXES] [-r RUNS] [--no-exabgp] [--gobgp]   (EDGE_BIN=build/bin)
# --gobgp adds GoBGP (`gobgp mrt inject global` of the same routes as a TABLE_DUMP_V2 file): one
# run only, it takes minutes and gigabytes for 1 M routes.
# Loopback only: BIRD on 127.0.0.1:17950, speakers from 127.0.0.2.
set -u
N=100000
RUNS=3
EXA=1
GOBGP=0
while [ $# -gt 0 ]; do
    case $1 in
    -n) N=$2; shift ;;
    -r) RUNS=$2; shift ;;
    --no-exabgp) EXA=0 ;;
    --gobgp) GOBGP=1 ;;
    *) echo "usage: $0 [-n PREFIXES] [-r RUNS] [--no-exabgp] [--gobgp]" >&2; exit 2 ;;
    esac
    shift
done
BIN=${EDGE_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/build/bin}
T=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
command -v exabgp >/dev/null || EXA=0

cat >"$T/bird.conf" <<EOF2
log "$T/bird.log" { warning, error, fatal };
router id 127.0.0.1;
protocol device { }
protocol static nh { ipv4; route 198.18.0.0/15 via "lo"; }
protocol bgp dut {
  local 127.0.0.1 port 17950 as 65000;
  neighbor 127.0.0.2 as 65001;
  strict bind on; multihop; passive on; hold time 240;
  ipv4 { import all; export none; };
}
EOF2
cat >"$T/speaker.toml" <<EOF2
[speaker]
local_as = 65001
router_id = "127.0.0.2"
hold_time = 240
[[peer]]
address = "127.0.0.1"
port = 17950
remote_as = 65000
local_address = "127.0.0.2"
next_hop_self = "198.18.0.2"
connect_retry = 1
EOF2
# N /24s from 10.0.0.0 on, 1000 per batched command (the same grammar for both tools).
python3 - "$N" "$T/routes.txt" "$T/static.conf" <<'EOF2'
import sys
n = int(sys.argv[1]); out = []; st = []
for b in range(0, n, 1000):
    ps = [f"{(i >> 16) + 10 & 255}.{(i >> 8) & 255}.{i & 255}.0/24" for i in range(b, min(n, b + 1000))]
    out.append("announce attributes next-hop 198.18.0.2 nlri " + " ".join(ps))
    st.extend(f"route {p} blackhole;" for p in ps)
open(sys.argv[2], "w").write("\n".join(out) + "\n")
open(sys.argv[3], "w").write("protocol static bulk {\n ipv4;\n" + "\n".join(st) + "\n}\n")
EOF2
cat >"$T/sender.conf" <<EOF2
log "$T/sender.log" { warning, error, fatal };
router id 127.0.0.2;
protocol device { }
include "$T/static.conf";
protocol bgp up {
  local 127.0.0.2 as 65001;
  neighbor 127.0.0.1 port 17950 as 65000;
  multihop; hold time 240; connect delay time 0;
  ipv4 { import none; export all; next hop address 198.18.0.2; };
}
EOF2
cat >"$T/exabgp.conf" <<EOF2
process feed {
  run /bin/sh -c "echo \$\$ > $T/feed.pid; cat $T/routes.txt; exec sleep 600";
  encoder text;
}
neighbor 127.0.0.1 {
  router-id 127.0.0.2;
  local-address 127.0.0.2;
  local-as 65001;
  peer-as 65000;
  connect 17950;
  hold-time 240;
  api { processes [ feed ]; }
}
EOF2

# The protocol's import counter: O(1) for BIRD. `show route count` walks the whole table, and
# polling it every 50 ms starves the receiving BIRD while routes stream in (it tripled BIRD's
# CPU when fed by a streaming sender, and slowed the run it was measuring).
bird_count() { birdc -s "$T/bird.ctl" show protocols all dut 2>/dev/null | awk '/Routes:/ {print $2; exit}'; }
start_bird() {
    bird -f -c "$T/bird.conf" -s "$T/bird.ctl" -P "$T/bird.pid" &
    BIRD=$!
    PIDS+=($BIRD)
    for _ in $(seq 100); do birdc -s "$T/bird.ctl" show status >/dev/null 2>&1 && return; sleep 0.05; done
}
stop_bird() { kill $BIRD; wait $BIRD 2>/dev/null; }
# wait_all PID: seconds until BIRD reports N routes (bounded by 600 s).
wait_all() {
    local t0=$1
    local end=$((SECONDS + 600))
    while [ $SECONDS -le $end ]; do
        # BIRD as a sender holds a partial batch until its loop wakes: a cheap command wakes it.
        [ -S "$T/sender.ctl" ] && birdc -s "$T/sender.ctl" show status >/dev/null 2>&1
        [ "$(bird_count)" = "$N" ] && { echo "scale=3; ($(date +%s%N) - $t0) / 1000000000" | bc; return 0; }
        sleep 0.05
    done
    echo "timeout"
    return 1
}
cpu_s() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }
rss_mb() { awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$1/status"; }

ours=() exas=() birds=()
for r in $(seq "$RUNS"); do
    start_bird
    t0=$(date +%s%N)
    "$BIN/bgp-announce" run -c "$T/speaker.toml" -q <"$T/routes.txt" >/dev/null &
    S=$!
    t=$(wait_all "$t0")
    echo "run $r: bgp-announce $N routes in $t s, cpu $(cpu_s $S) s, peak RSS $(rss_mb $S) MB, BIRD cpu $(cpu_s $BIRD) s"
    ours+=("$t")
    kill $S; wait $S 2>/dev/null
    stop_bird
    start_bird
    t0=$(date +%s%N)
    bird -f -c "$T/sender.conf" -s "$T/sender.ctl" -P "$T/sender.pid" &
    SB=$!
    t=$(wait_all "$t0")
    echo "run $r: bird->bird   $N routes in $t s (cold: includes parsing the static routes), BIRD cpu $(cpu_s $BIRD) s"
    birds+=("$t")
    kill $SB; wait $SB 2>/dev/null
    rm -f "$T/sender.ctl"
    stop_bird
    if [ $EXA = 1 ]; then
        start_bird
        t0=$(date +%s%N)
        env exabgp_daemon_user=root exabgp_daemon_drop=false exabgp_api_cli=false exabgp_reactor_speed=0.01 \
            exabgp_log_level=WARNING exabgp "$T/exabgp.conf" >"$T/exabgp.log" 2>&1 &
        E=$!
        t=$(wait_all "$t0")
        echo "run $r: exabgp       $N routes in $t s, BIRD cpu $(cpu_s $BIRD) s"
        exas+=("$t")
        [ -s "$T/feed.pid" ] && kill "$(cat "$T/feed.pid")" 2>/dev/null
        kill $E; wait $E 2>/dev/null
        stop_bird
    fi
done
if [ $GOBGP = 1 ] && command -v gobgpd >/dev/null; then
    # The same N /24s as a TABLE_DUMP_V2 RIB (one peer, ORIGIN IGP, AS_PATH 65001, NEXT_HOP).
    python3 - "$N" "$T/rib.mrt" <<'EOF2'
import struct, sys
n = int(sys.argv[1]); out = open(sys.argv[2], "wb")
def rec(sub, body): out.write(struct.pack(">IHHI", 1700000000, 13, sub, len(body)) + body)
rec(1, bytes([127, 0, 0, 2]) + struct.pack(">H", 0) + struct.pack(">H", 1) + bytes([2]) + bytes([127, 0, 0, 2]) * 2 + struct.pack(">I", 65001))
attrs = bytes([0x40, 1, 1, 0]) + bytes([0x40, 2, 6, 2, 1]) + struct.pack(">I", 65001) + bytes([0x40, 3, 4, 198, 18, 0, 2])
for i in range(n):
    p = bytes([24, ((i >> 16) + 10) & 255, (i >> 8) & 255, i & 255])
    rec(2, struct.pack(">I", i) + p + struct.pack(">HHIH", 1, 0, 1700000000, len(attrs)) + attrs)
EOF2
    cat >"$T/gobgpd.toml" <<EOF2
[global.config]
  as = 65001
  router-id = "127.0.0.2"
  port = -1
[[neighbors]]
  [neighbors.config]
    neighbor-address = "127.0.0.1"
    peer-as = 65000
  [neighbors.transport.config]
    local-address = "127.0.0.2"
    remote-port = 17950
EOF2
    start_bird
    gobgpd -f "$T/gobgpd.toml" --api-hosts 127.0.0.1:50071 -l warn >"$T/gobgpd.log" 2>&1 &
    G=$!
    PIDS+=($G)
    for _ in $(seq 100); do gobgp -p 50071 neighbor 2>/dev/null | grep -q Establ && break; sleep 0.1; done
    t0=$(date +%s%N)
    # mrt inject drops the tail of its input when its stdin closes early: keep it open.
    mkfifo "$T/hold"
    gobgp -p 50071 mrt inject global "$T/rib.mrt" <"$T/hold" >/dev/null 2>&1 &
    INJ=$!
    PIDS+=($INJ)
    exec 9>"$T/hold"

    # GoBGP may stop short of N (it drops the tail of an MRT file): report how many BIRD got and
    # when the count last moved, once inject has exited and BIRD's count stood still for 10 s.
    last=-1 tl=$t0 end=$((SECONDS + 900))
    while [ $SECONDS -le $end ]; do
        c=$(bird_count)
        [ "${c:-0}" != "$last" ] && { last=${c:-0}; tl=$(date +%s%N); }
        [ "$last" = "$N" ] && break
        if ! kill -0 $INJ 2>/dev/null && [ $(( ($(date +%s%N) - tl) / 1000000000 )) -ge 10 ]; then break; fi
        sleep 0.2
    done
    t=$(echo "scale=3; ($tl - $t0) / 1000000000" | bc)
    echo "run 1: gobgp        $last of $N routes in $t s, gobgpd cpu $(cpu_s $G) s, peak RSS $(rss_mb $G) MB, BIRD cpu $(cpu_s $BIRD) s"
    gob="$t ($last routes)"
    exec 9>&-
    kill $INJ $G 2>/dev/null; wait $G 2>/dev/null
    stop_bird
fi
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
echo "median bgp-announce: $(median "${ours[@]}") s for $N routes"
echo "median bird->bird:   $(median "${birds[@]}") s for $N routes"
[ $EXA = 1 ] && echo "median exabgp:       $(median "${exas[@]}") s for $N routes"
[ $GOBGP = 1 ] && echo "gobgp (one run):     ${gob:-not run} s for $N routes"
exit 0
