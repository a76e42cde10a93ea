#!/usr/bin/env bash
# bgp-announce decode on MRT written by real routers: the speaker feeds BIRD 2 (mrtdump of
# the session's messages + `mrt dump` of its tables) and GoBGP ([mrt-dump] updates)
# on loopback; `decode -m` must equal `bgpdump -m` on every file, and the routes we sent must
# be in them. As root with tcpdump, the session is also captured and decoded from the pcap.
# A second GoBGP, fed by a second speaker, writes a TABLE_DUMP_V2 RIB dump ([mrt-dump]
# dump-type "table"): GoBGP's shortest dump interval is 60 s (minDumpInterval in its
# pkg/server/mrt.go; the first dump comes one interval after start), so that part waits
# for it while the rest runs, bounded at 75 s from its start.
# Ports 17960-17965, names bgpi-*, everything in a temp dir; ~65 s (the table dump wait).
. "$(dirname "$0")/lib.sh"

need() {
    for c in "$@"; do
        if ! command -v "$c" >/dev/null; then
            if [ "${CI:-}" = true ]; then echo "FAIL: $c missing under CI"; exit 1; fi
            echo "SKIP: $c not installed"
            exit 77
        fi
    done
}
need bird birdc gobgpd gobgp bgpdump jq

PIDS=()
cleanup() {
    [ -n "${FEED:-}" ] && exec 3>&- 2>/dev/null
    [ -n "${FEED2:-}" ] && exec 4>&- 2>/dev/null
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
wait_for() {
    local end=$((SECONDS + $1))
    shift
    while [ $SECONDS -le $end ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}

cat >"$T/bgpi-bird.conf" <<EOF
log "$T/bgpi-bird.log" all;
router id 127.0.0.1;
mrtdump "$T/bgpi-bird-msgs.mrt";
protocol device { }
protocol static nh { ipv4; route 198.18.0.0/15 via "lo"; }
protocol static nh6 { ipv6; route 2001:db8:ffff::/48 via "lo"; }
protocol bgp bgpi {
  local 127.0.0.1 port 17960 as 65000;
  neighbor 127.0.0.2 as 65001;
  strict bind on; multihop; passive on; hold time 30;
  mrtdump { states, messages };
  ipv4 { import all; export none; };
  ipv6 { import all; export none; };
}
EOF
cat >"$T/bgpi-gobgpd.toml" <<EOF
[global.config]
  as = 65000
  router-id = "127.0.0.3"
  port = 17961
  local-address-list = ["127.0.0.3"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "127.0.0.2"
    peer-as = 65001
  [neighbors.transport.config]
    passive-mode = true
    local-address = "127.0.0.3"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
[[mrt-dump]]
  [mrt-dump.config]
    dump-type = "updates"
    file-name = "$T/bgpi-gobgp-updates.mrt"
EOF
# The table-dump GoBGP: 127.0.0.4:17964, API on 17965.
cat >"$T/bgpi-gobgpd-table.toml" <<EOF
[global.config]
  as = 65000
  router-id = "127.0.0.4"
  port = 17964
  local-address-list = ["127.0.0.4"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "127.0.0.2"
    peer-as = 65001
  [neighbors.transport.config]
    passive-mode = true
    local-address = "127.0.0.4"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
[[mrt-dump]]
  [mrt-dump.config]
    dump-type = "table"
    file-name = "$T/bgpi-gobgp-table.mrt"
    dump-interval = 60
EOF
cat >"$T/bgpi-speaker2.toml" <<EOF
[speaker]
local_as = 65001
router_id = "127.0.0.2"
control_socket = "$T/bgpi-ctl2.sock"

[[peer]]
name = "gobgp-table"
address = "127.0.0.4"
port = 17964
remote_as = 65000
local_address = "127.0.0.2"
families = ["ipv4-unicast", "ipv6-unicast"]
next_hop_self = "198.18.0.2"
next_hop_self6 = "2001:db8:ffff::2"
connect_retry = 1
EOF
cat >"$T/bgpi-speaker.toml" <<EOF
[speaker]
local_as = 65001
router_id = "127.0.0.2"
control_socket = "$T/bgpi-ctl.sock"

[[peer]]
name = "bird"
address = "127.0.0.1"
port = 17960
remote_as = 65000
local_address = "127.0.0.2"
families = ["ipv4-unicast", "ipv6-unicast"]
next_hop_self = "198.18.0.2"
next_hop_self6 = "2001:db8:ffff::2"
connect_retry = 1

[[peer]]
name = "gobgp"
address = "127.0.0.3"
port = 17961
remote_as = 65000
local_address = "127.0.0.2"
families = ["ipv4-unicast", "ipv6-unicast"]
next_hop_self = "198.18.0.2"
next_hop_self6 = "2001:db8:ffff::2"
connect_retry = 1
EOF

bird -p -c "$T/bgpi-bird.conf" || { echo "FAIL: bird rejects the test config"; exit 1; }
CAPTURE=0
if [ "$(id -u)" = 0 ] && command -v tcpdump >/dev/null; then
    tcpdump -i lo -U -s 0 -w "$T/bgpi-session.pcap" 'tcp port 17960' >/dev/null 2>"$T/tcpdump.err" &
    TCPDUMP=$!
    PIDS+=($TCPDUMP)
    CAPTURE=1
    wait_for 5 grep -q listening "$T/tcpdump.err" || echo "note: tcpdump slow to start"
fi
# First the table-dump GoBGP and its speaker: its 60 s clock runs while the rest is tested.
gobgpd -f "$T/bgpi-gobgpd-table.toml" -t toml --api-hosts 127.0.0.1:17965 --pprof-disable -p >"$T/gobgpd-table.log" 2>&1 &
GOBGPD_TABLE=$!
TABLE_START=$SECONDS
PIDS+=($GOBGPD_TABLE)
mkfifo "$T/in2"
bgp-announce run -c "$T/bgpi-speaker2.toml" -j <"$T/in2" >"$T/events2" 2>"$T/stderr2" &
PIDS+=($!)
exec 4>"$T/in2"
FEED2=1
bird -f -c "$T/bgpi-bird.conf" -s "$T/bgpi-bird.ctl" -P "$T/bgpi-bird.pid" 2>"$T/bird.err" &
PIDS+=($!)
gobgpd -f "$T/bgpi-gobgpd.toml" -t toml --api-hosts 127.0.0.1:17962 --pprof-disable -p >"$T/gobgpd.log" 2>&1 &
GOBGPD=$!
PIDS+=($GOBGPD)
wait_for 10 birdc -s "$T/bgpi-bird.ctl" show status || { echo "FAIL: BIRD did not start"; cat "$T/bird.err"; exit 1; }

mkfifo "$T/in"
bgp-announce run -c "$T/bgpi-speaker.toml" -j <"$T/in" >"$T/events" 2>"$T/stderr" &
PIDS+=($!)
exec 3>"$T/in"
FEED=1
established() { bgp-announce ctl -s "$T/bgpi-ctl.sock" -j status | jq -e --arg p "$1" 'select(.type=="bgp_peer" and .peer==$p) | .state=="established"' | grep -q true; }
birdc_() { birdc -s "$T/bgpi-bird.ctl" "$@"; }

established2() { bgp-announce ctl -s "$T/bgpi-ctl2.sock" -j status | jq -e 'select(.type=="bgp_peer" and .peer=="gobgp-table") | .state=="established"' | grep -q true; }

case_ "sessions with BIRD and GoBGP"
for p in bird gobgp; do wait_for 15 established $p || fail "session with $p not established"; done
wait_for 15 established2 || fail "session with the table-dump GoBGP not established"
# The table-dump GoBGP gets the same routes (and the same withdrawal).
{
    echo "announce route 198.51.100.0/24 community 65000:1 community 65000:2 med 7 as-path 65100 4200000001"
    echo "announce route 198.51.101.0/24 origin incomplete local-preference 300"
    echo '{"type":"announce","prefix":"2001:db8:5::/48","communities":["65000:6"],"med":10}'
    echo "announce blackhole 203.0.113.7"
    echo "announce route 198.51.102.0/24"
} >&4

# What we announce: communities, a longer AS path, MED, IPv6, a blackhole, then a withdrawal.
echo "announce route 198.51.100.0/24 community 65000:1 community 65000:2 med 7 as-path 65100 4200000001" >&3
echo "announce route 198.51.101.0/24 origin incomplete local-preference 300" >&3
echo '{"type":"announce","prefix":"2001:db8:5::/48","communities":["65000:6"],"med":10}' >&3
echo "announce blackhole 203.0.113.7" >&3
echo "announce route 198.51.102.0/24" >&3
bird_has() { birdc_ show route protocol bgpi "$1" | grep -q "$1"; }
wait_for 10 bird_has 198.51.102.0/24 || fail "routes did not reach BIRD"
echo "withdraw route 198.51.102.0/24" >&3
bird_lacks() { ! birdc_ show route protocol bgpi 198.51.102.0/24 | grep -q 198.51.102.0/24; }
wait_for 10 bird_lacks || fail "withdrawal did not reach BIRD"
gobgp_has() { gobgp -p 17962 global rib -a ipv4 -j | jq -e 'has("203.0.113.7/32")' | grep -q true; }
wait_for 10 gobgp_has || fail "routes did not reach GoBGP"
gobgp_table_has() { gobgp -p 17965 global rib -a ipv4 -j | jq -e 'has("198.51.102.0/24")' | grep -q true; }
wait_for 10 gobgp_table_has || fail "routes did not reach the table-dump GoBGP"
echo "withdraw route 198.51.102.0/24" >&4
gobgp_table_lacks() { gobgp -p 17965 global rib -a ipv4 -j | jq -e 'has("198.51.102.0/24") | not' | grep -q true; }
wait_for 10 gobgp_table_lacks || fail "withdrawal did not reach the table-dump GoBGP"
birdc_ mrt dump table master4 to "\"$T/bgpi-bird-rib4.mrt\"" >"$T/mrtdump.out" 2>&1 ||
    birdc_ mrt dump table "master4" to "$T/bgpi-bird-rib4.mrt" >>"$T/mrtdump.out" 2>&1
birdc_ mrt dump table master6 to "\"$T/bgpi-bird-rib6.mrt\"" >>"$T/mrtdump.out" 2>&1
wait_for 5 test -s "$T/bgpi-bird-rib4.mrt" || fail "BIRD wrote no table dump: $(cat "$T/mrtdump.out")"
# GoBGP writes its update dump from a watcher that can lag (and flushes on exit): give it
# time, then stop it so nothing is half written. (Its table dump comes from the second
# GoBGP, checked at the end.) When GoBGP writes nothing at all, its part is skipped
# with a note: the oracle failed, not the decoder.
wait_for 10 test -s "$T/bgpi-gobgp-updates.mrt"
kill -TERM "$GOBGPD"
wait "$GOBGPD" 2>/dev/null
FILES="bgpi-bird-msgs bgpi-bird-rib4 bgpi-bird-rib6"
if wait_for 5 test -s "$T/bgpi-gobgp-updates.mrt"; then
    FILES="$FILES bgpi-gobgp-updates"
else
    echo "note: GoBGP wrote no update dump this time; its part is skipped"
fi

# Stop the routers so the files are complete (BIRD flushes its message dump as it goes).
exec 3>&-
FEED=
sleep 0.5
for f in $FILES; do
    case_ "$f: decode -m equals bgpdump -m"
    [ -s "$T/$f.mrt" ] || { fail "$f.mrt missing or empty"; continue; }
    cp "$T/$f.mrt" "$T/$f.snap"  # the routers may still append: compare one snapshot
    run bgp-announce decode --mrt "$T/$f.snap" -m
    expect_rc 0
    bgpdump -m "$T/$f.snap" 2>/dev/null >"$T/$f.exp"
    cmp -s "$OUT" "$T/$f.exp" || fail "differs from bgpdump: $(diff "$T/$f.exp" "$OUT" | head -6)"
    [ -s "$OUT" ] || fail "no lines"
    cp "$OUT" "$T/$f.got"
    run bgp-announce -j decode --mrt "$T/$f.snap"
    expect_rc 0
    expect_jsonl
done

case_ "BIRD's message dump holds what we sent"
g="$T/bgpi-bird-msgs.got"
grep -qE '^BGP4MP(_ET)?\|[0-9.]+\|A\|127\.0\.0\.2\|65001\|198\.51\.100\.0/24\|65001 65100 4200000001\|IGP\|198\.18\.0\.2\|0\|7\|65000:1 65000:2\|NAG\|\|$' "$g" ||
    fail "198.51.100.0/24 line: $(grep 198.51.100.0 "$g")"
grep -qE '\|A\|127\.0\.0\.2\|65001\|198\.51\.101\.0/24\|65001\|INCOMPLETE\|' "$g" || fail "origin incomplete line"
grep -qE '\|A\|127\.0\.0\.2\|65001\|2001:db8:5::/48\|65001\|IGP\|2001:db8:ffff::2\|0\|10\|65000:6\|' "$g" || fail "IPv6 line"
grep -qE '\|A\|127\.0\.0\.2\|65001\|203\.0\.113\.7/32\|65001\|IGP\|198\.18\.0\.2\|0\|0\|65535:666 no-export\|' "$g" || fail "blackhole line"
grep -qE '\|W\|127\.0\.0\.2\|65001\|198\.51\.102\.0/24$' "$g" || fail "withdrawal line"
grep -qE '\|STATE\|127\.0\.0\.2\|65001\|[0-9]+\|6$' "$g" || fail "no state change to Established"

case_ "table dumps hold the routes"
grep -qE '^TABLE_DUMP2\|[0-9]+\|B\|127\.0\.0\.2\|65001\|198\.51\.100\.0/24\|65001 65100 4200000001\|IGP\|198\.18\.0\.2\|' "$T/bgpi-bird-rib4.got" ||
    fail "BIRD table: $(head -3 "$T/bgpi-bird-rib4.got")"
grep -q '|198.51.102.0/24|' "$T/bgpi-bird-rib4.got" && fail "withdrawn route still in the BIRD table dump"
grep -qE '\|2001:db8:5::/48\|65001\|IGP\|' "$T/bgpi-bird-rib6.got" || fail "BIRD IPv6 table"
if [ -s "$T/bgpi-gobgp-updates.got" ]; then
    grep -qE '\|A\|127\.0\.0\.2\|65001\|203\.0\.113\.7/32\|' "$T/bgpi-gobgp-updates.got" || fail "GoBGP updates"
fi

case_ "decode --routes | validate on the router's dump"
bgp-announce -j decode --mrt "$T/bgpi-bird-msgs.snap" --routes >"$T/routes.jsonl"
printf 'ASN,IP Prefix,Max Length\nAS4200000001,198.51.100.0/24,24\nAS65009,198.51.101.0/24,24\n' >"$T/roas.csv"
run bgp-announce -j validate --roas "$T/roas.csv" --all "$T/routes.jsonl"
expect_rc 1
expect_out '"prefix":"198.51.100.0/24","origin_as":4200000001,"state":"valid"'
expect_out '"prefix":"198.51.101.0/24","origin_as":65001,"state":"invalid"'

if [ $CAPTURE = 1 ]; then
    case_ "the captured session decodes to the same routes as BIRD's dump"
    sleep 0.5
    kill "$TCPDUMP" 2>/dev/null
    wait "$TCPDUMP" 2>/dev/null
    run bgp-announce decode --pcap "$T/bgpi-session.pcap" --port 17960 -m
    expect_rc 0
    cut -d'|' -f3- "$OUT" | grep '^[AW]|127\.0\.0\.2|' | sort >"$T/pcap.routes"
    cut -d'|' -f3- "$T/bgpi-bird-msgs.got" | grep '^[AW]|127\.0\.0\.2|' | sort >"$T/bird.routes"
    [ -s "$T/pcap.routes" ] || fail "no routes from the capture"
    cmp -s "$T/pcap.routes" "$T/bird.routes" || fail "capture and BIRD dump differ: $(diff "$T/bird.routes" "$T/pcap.routes" | head -4)"
    run bgp-announce -j decode --pcap "$T/bgpi-session.pcap" --port 17960
    expect_out '"message":"open","asn":65001'
    expect_out '"message":"open","asn":65000'
else
    echo "note: not root or no tcpdump: live capture part skipped"
fi

case_ "GoBGP table dump (TABLE_DUMP_V2): decode -m equals bgpdump -m"
# GoBGP writes the whole dump with one write and fsyncs it; wait for it (at most 75 s from
# its start), give the write a moment, then stop GoBGP and compare a snapshot.
left=$((75 - (SECONDS - TABLE_START)))
[ $left -lt 1 ] && left=1
if wait_for $left test -s "$T/bgpi-gobgp-table.mrt"; then
    sleep 0.5
    kill -TERM "$GOBGPD_TABLE" 2>/dev/null
    wait "$GOBGPD_TABLE" 2>/dev/null
    exec 4>&-
    FEED2=
    cp "$T/bgpi-gobgp-table.mrt" "$T/gt.snap"
    run bgp-announce decode --mrt "$T/gt.snap" -m
    expect_rc 0
    bgpdump -m "$T/gt.snap" 2>/dev/null >"$T/gt.exp"
    cmp -s "$OUT" "$T/gt.exp" || fail "differs from bgpdump: $(diff "$T/gt.exp" "$OUT" | head -6)"
    # Record by record: one RIB entry of our peer per route left there, none for the withdrawn one.
    grep -qE '^TABLE_DUMP2\|[0-9]+\|B\|127\.0\.0\.2\|65001\|198\.51\.100\.0/24\|65001 65100 4200000001\|IGP\|198\.18\.0\.2\|0\|7\|65000:1 65000:2\|NAG\|\|$' "$OUT" ||
        fail "198.51.100.0/24 entry: $(grep 198.51.100.0 "$OUT")"
    # (LOCAL_PREF is not kept from an eBGP peer: GoBGP's table shows 0 there)
    grep -qE '^TABLE_DUMP2\|[0-9]+\|B\|127\.0\.0\.2\|65001\|198\.51\.101\.0/24\|65001\|INCOMPLETE\|198\.18\.0\.2\|0\|0\|\|NAG\|\|$' "$OUT" ||
        fail "198.51.101.0/24 entry: $(grep 198.51.101.0 "$OUT")"
    grep -qE '^TABLE_DUMP2\|[0-9]+\|B\|127\.0\.0\.2\|65001\|203\.0\.113\.7/32\|65001\|IGP\|198\.18\.0\.2\|0\|0\|65535:666 no-export\|' "$OUT" ||
        fail "blackhole entry: $(grep 203.0.113.7 "$OUT")"
    grep -qE '^TABLE_DUMP2\|[0-9]+\|B\|127\.0\.0\.2\|65001\|2001:db8:5::/48\|65001\|IGP\|2001:db8:ffff::2\|0\|10\|65000:6\|' "$OUT" ||
        fail "IPv6 entry: $(grep 2001:db8:5 "$OUT")"
    grep -q '|198.51.102.0/24|' "$OUT" && fail "withdrawn route in the table dump"
    [ "$(wc -l <"$OUT")" -eq 4 ] || fail "expected 4 RIB lines, got $(wc -l <"$OUT")"
    case_ "GoBGP table dump as JSON: the peer index table and the RIB records"
    run bgp-announce -j decode --mrt "$T/gt.snap"
    expect_rc 0
    expect_jsonl
    jq -se '.[0].type == "mrt_peer_index" and ([.[0].peers[] | select(.peer == "127.0.0.2" and .peer_as == 65001)] | length == 1)' "$OUT" >/dev/null ||
        fail "no peer index table naming 127.0.0.2 AS65001 first: $(head -1 "$OUT")"
    for p in 198.51.100.0/24 198.51.101.0/24 203.0.113.7/32 2001:db8:5::/48; do
        jq -se --arg p "$p" '[.[] | select(.type == "bgp_rib" and .mrt_type == "TABLE_DUMP_V2" and .prefix == $p)
            | .entries[] | select(.peer == "127.0.0.2" and .peer_as == 65001)] | length == 1' "$OUT" >/dev/null ||
            fail "no bgp_rib record for $p from 127.0.0.2"
    done
    jq -se '[.[] | select(.type == "bgp_rib" and .prefix == "2001:db8:5::/48") | .mrt_subtype] == ["RIB_IPV6_UNICAST"]' "$OUT" >/dev/null ||
        fail "2001:db8:5::/48 not in a RIB_IPV6_UNICAST record"
else
    fail "the table-dump GoBGP wrote no dump within 75 s of its start: $(tail -3 "$T/gobgpd-table.log")"
fi
echo "note: GoBGP table-dump part done $((SECONDS - TABLE_START)) s after its start"

finish
