#!/usr/bin/env bash
# bgp-announce against real routers on loopback: BIRD 2 (we dial it, and it dials us) and
# GoBGP, checked through their own CLIs. No root needed (127.0.0.x only); skips when
# bird/gobgpd are missing (fails under CI=true). Ports 17900-17912, files in a temp dir.
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
need bird birdc gobgpd gobgp jq

PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -CONT "$p" 2>/dev/null; kill "$p" 2>/dev/null; done
    [ -n "${FEED:-}" ] && exec 3>&- 2>/dev/null
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

# wait_for SECONDS CMD...: poll every 0.1 s until CMD succeeds.
wait_for() {
    local end=$((SECONDS + $1))
    shift
    while [ $SECONDS -le $end ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

cat >"$T/bird.conf" <<EOF
log "$T/bird.log" all;
router id 127.0.0.1;
protocol device { }
protocol static nh { ipv4; route 198.18.0.0/15 via "lo"; }
protocol static nh6 { ipv6; route 2001:db8:ffff::/48 via "lo"; }
protocol static export_me { ipv4; route 203.0.113.0/24 blackhole; }
protocol bgp dut {
  local 127.0.0.1 port 17900 as 65000;
  neighbor 127.0.0.2 as 65001;
  strict bind on; multihop; passive on; hold time 30;
  graceful restart on;
  ipv4 { import all; export where proto = "export_me"; };
  ipv6 { import all; export none; };
}
protocol bgp dial {
  local 127.0.0.1 port 17901 as 65000;
  neighbor 127.0.0.4 port 17902 as 65001;
  strict bind on; multihop; hold time 30;
  connect retry time 1; connect delay time 1;
  ipv4 { import all; export none; };
}
EOF
cat >"$T/gobgpd.toml" <<EOF
[global.config]
  as = 65000
  router-id = "127.0.0.3"
  port = 17910
  local-address-list = ["127.0.0.3"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "127.0.0.2"
    peer-as = 65001
  [neighbors.timers.config]
    hold-time = 3
    keepalive-interval = 1
  [neighbors.transport.config]
    passive-mode = true
    local-address = "127.0.0.3"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-flowspec"
EOF
cat >"$T/speaker.toml" <<EOF
[speaker]
local_as = 65001
router_id = "127.0.0.2"
listen = ["127.0.0.4:17902"]
control_socket = "$T/ctl.sock"
graceful_restart = 30
shutdown_message = "maintenance: bgp-announce interop test"

[[peer]]
name = "bird"
address = "127.0.0.1"
port = 17900
remote_as = 65000
local_address = "127.0.0.2"
families = ["ipv4-unicast", "ipv6-unicast"]
next_hop_self = "198.18.0.2"
next_hop_self6 = "2001:db8:ffff::2"
connect_retry = 1

[[peer]]
name = "bird-dial"
address = "127.0.0.1"
local_address = "127.0.0.4"
remote_as = 65000
passive = true
next_hop_self = "198.18.0.4"

[[peer]]
name = "gobgp"
address = "127.0.0.3"
port = 17910
remote_as = 65000
local_address = "127.0.0.2"
hold_time = 3
families = ["ipv4-unicast", "ipv6-unicast", "ipv4-flowspec"]
next_hop_self = "198.18.0.2"
next_hop_self6 = "2001:db8:ffff::2"
connect_retry = 1

[[group]]
name = "anycast-dns"
prefixes = ["192.0.2.0/24"]
communities = ["65000:53"]
[group.health]
command = "test -f $T/healthy"
interval = 0.2
rise = 1
fall = 2
EOF

bird -p -c "$T/bird.conf" || { echo "FAIL: bird rejects the test config"; exit 1; }
bird -f -c "$T/bird.conf" -s "$T/bird.ctl" -P "$T/bird.pid" 2>"$T/bird.err" &
PIDS+=($!)
gobgpd -f "$T/gobgpd.toml" -t toml --api-hosts 127.0.0.1:17911 --pprof-disable -p >"$T/gobgpd.log" 2>&1 &
GOBGPD=$!
PIDS+=($GOBGPD)
wait_for 10 birdc -s "$T/bird.ctl" show status || { echo "FAIL: BIRD did not start"; cat "$T/bird.err"; exit 1; }

mkfifo "$T/in"
start_speaker() {
    bgp-announce run -c "$T/speaker.toml" -j <"$T/in" >>"$T/events" 2>>"$T/stderr" &
    SPK=$!
    PIDS+=($SPK)
    exec 3>"$T/in"
    FEED=1
}
birdc_() { birdc -s "$T/bird.ctl" "$@"; }
bird_has() { birdc_ show route all protocol "$1" "$2" | grep -q "$2"; }
bird_lacks() { ! birdc_ show route protocol "$1" "$2" | grep -q "$2"; }
established() { bgp-announce ctl -s "$T/ctl.sock" -j status | jq -e --arg p "$1" 'select(.type=="bgp_peer" and .peer==$p) | .state=="established"' | grep -q true; }
gobgp_() { gobgp -p 17911 "$@"; }

start_speaker
case_ "sessions establish: we dial BIRD and GoBGP, BIRD dials us"
for p in bird bird-dial gobgp; do
    wait_for 15 established $p || fail "session with $p not established"
done
wait_for 5 grep -q '"state":"established"' "$T/events" || fail "no bgp_session established event"

case_ "IPv4 and IPv6 with communities and large communities reach BIRD exactly"
echo "announce route 198.51.100.0/24 community 65000:1 community 65000:2 large-community 65001:7:8" >&3
echo '{"type":"announce","prefix":"2001:db8:5::/48","communities":["65000:6"],"large_communities":["4200000000:1:2"],"med":10}' >&3
wait_for 5 bird_has dut 198.51.100.0/24 || fail "198.51.100.0/24 not in BIRD"
out=$(birdc_ show route all protocol dut 198.51.100.0/24)
grep -q 'BGP.community: (65000,1) (65000,2)' <<<"$out" || fail "communities differ: $out"
grep -q 'BGP.large_community: (65001, 7, 8)' <<<"$out" || fail "large community differs: $out"
grep -q 'BGP.next_hop: 198.18.0.2' <<<"$out" || fail "next hop differs: $out"
grep -q 'BGP.as_path: 65001$' <<<"$out" || fail "AS path differs: $out"
wait_for 5 bird_has dut 2001:db8:5::/48 || fail "2001:db8:5::/48 not in BIRD"
out=$(birdc_ show route all protocol dut 2001:db8:5::/48)
grep -q 'BGP.large_community: (4200000000, 1, 2)' <<<"$out" || fail "IPv6 large community differs: $out"
grep -q 'BGP.med: 10' <<<"$out" || fail "MED differs: $out"
grep -q 'BGP.next_hop: 2001:db8:ffff::2' <<<"$out" || fail "IPv6 next hop differs: $out"
wait_for 5 bird_has dial 198.51.100.0/24 || fail "route missing on the session BIRD dialled"
birdc_ show route all protocol dial 198.51.100.0/24 | grep -q 'BGP.next_hop: 198.18.0.4' || fail "bird-dial next hop"

case_ "the same routes reach GoBGP"
gobgp_has() { gobgp_ global rib -a "$1" -j | jq -e --arg p "$2" 'has($p)' | grep -q true; }
wait_for 5 gobgp_has ipv4 198.51.100.0/24 || fail "198.51.100.0/24 not in GoBGP"
j=$(gobgp_ global rib -j)
jq -e '."198.51.100.0/24"[0].attrs[] | select(.type==8) | .communities == [4259840001, 4259840002]' <<<"$j" | grep -q true || fail "GoBGP communities: $j"
jq -e '."198.51.100.0/24"[0].attrs[] | select(.type==3) | .nexthop == "198.18.0.2"' <<<"$j" | grep -q true || fail "GoBGP next hop: $j"
wait_for 5 gobgp_has ipv6 2001:db8:5::/48 || fail "2001:db8:5::/48 not in GoBGP"

case_ "RTBH: blackhole route with 65535:666 and NO_EXPORT reaches BIRD"
echo "announce blackhole 203.0.113.7" >&3
wait_for 5 bird_has dut 203.0.113.7/32 || fail "blackhole /32 not in BIRD"
birdc_ show route all protocol dut 203.0.113.7/32 | grep -q 'BGP.community: (65535,666) (65535,65281)' || fail "blackhole communities"

case_ "FlowSpec rules (text and synflood-guard mitigation record) reach GoBGP"
echo "announce flow destination 203.0.113.9/32 protocol tcp destination-port =80 tcp-flags syn&!ack then discard" >&3
echo '{"type":"mitigation","action":"flowspec","prefix":"203.0.113.10/32","protocol":"udp","dst_ports":[53],"rate_bytes_per_s":1000,"pps":250000}' >&3
flows() { gobgp_ global rib -a ipv4-flowspec -j; }
has_flow() { flows | jq -e --arg k "$1" 'has($k)' | grep -q true; }
k1='[destination: 203.0.113.9/32][protocol: ==tcp][destination-port: ==80][tcp-flags: S&!A]'
k2='[destination: 203.0.113.10/32][protocol: ==udp][destination-port: ==53]'
wait_for 5 has_flow "$k1" || fail "flow rule 1 not in GoBGP: $(flows)"
wait_for 5 has_flow "$k2" || fail "flow rule 2 not in GoBGP: $(flows)"
flows | jq -e --arg k "$k1" '.[$k][0].attrs[] | select(.type==16) | .value[0].rate == 0' | grep -q true || fail "discard action"
flows | jq -e --arg k "$k2" '.[$k][0].attrs[] | select(.type==16) | .value[0].rate == 1000' | grep -q true || fail "rate action"
echo '{"type":"mitigation","action":"flowspec","prefix":"203.0.113.10/32","protocol":"udp","dst_ports":[53],"withdraw":true}' >&3
wait_for 5 bash -c "! gobgp -p 17911 global rib -a ipv4-flowspec -j | jq -e 'has(\"$k2\")' | grep -q true" || fail "mitigation withdraw"

case_ "routes BIRD sends to us appear in our JSON output"
wait_for 5 grep -q '"type":"bgp_route","peer":"bird","action":"announce","prefix":"203.0.113.0/24"' "$T/events" || fail "BIRD's 203.0.113.0/24 not reported"

case_ "withdraw removes routes from BIRD and GoBGP; bad lines do not stop the speaker"
echo "this is not a command" >&3
echo '{"type":"announce","prefix":"10.0.0.1/8"}' >&3
echo "withdraw route 198.51.100.0/24" >&3
wait_for 5 bird_lacks dut 198.51.100.0/24 || fail "withdrawn route still in BIRD"
wait_for 5 bash -c "! gobgp -p 17911 global rib -j | jq -e 'has(\"198.51.100.0/24\")' | grep -q true" || fail "withdrawn route still in GoBGP"
grep -q "stdin:[0-9]*: unknown command 'this'" "$T/stderr" || fail "no error line for the bad text command"
grep -q 'stdin:[0-9]*: .*10.0.0.1/8' "$T/stderr" || fail "no error line for the bad JSON command"
kill -0 $SPK || fail "speaker died on bad input"

case_ "control socket: announce, routes, bad command"
bgp-announce ctl -s "$T/ctl.sock" announce route 198.51.100.128/25 community 65000:9 >/dev/null || fail "ctl announce"
wait_for 5 bird_has dut 198.51.100.128/25 || fail "ctl-announced route not in BIRD"
bgp-announce ctl -s "$T/ctl.sock" -j routes | jq -e 'select(.prefix=="198.51.100.128/25") | .communities==["65000:9"]' | grep -q true || fail "ctl routes"
run bgp-announce ctl -s "$T/ctl.sock" announce nonsense
expect_usage_error bgp-announce

case_ "health check: healthy announces, failing withdraws within interval x fall"
touch "$T/healthy"
wait_for 5 bird_has dut 192.0.2.0/24 || fail "healthy group not announced"
rm -f "$T/healthy"
t0=$(date +%s%N)
wait_for 5 bird_lacks dut 192.0.2.0/24 || fail "unhealthy group not withdrawn"
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt 2000 ] || fail "withdraw took ${ms} ms (interval 0.2 s x fall 2)"
grep -q '"type":"bgp_health","group":"anycast-dns","healthy":false' "$T/events" || fail "no bgp_health down event"
touch "$T/healthy"
wait_for 5 bird_has dut 192.0.2.0/24 || fail "recovered group not announced again"

case_ "hold timer expiry when GoBGP is stopped (SIGSTOP)"
kill -STOP $GOBGPD
wait_for 8 grep -q '"peer":"gobgp","direction":"sent","code":4' "$T/events" || fail "no Hold Timer Expired NOTIFICATION"
kill -CONT $GOBGPD
wait_for 15 established gobgp || fail "GoBGP session not re-established"

case_ "graceful restart: SIGKILL keeps routes in BIRD, a restarted speaker takes them over"
kill -KILL $SPK
wait $SPK 2>/dev/null
exec 3>&-
sleep 0.5
bird_has dut 198.51.100.128/25 || fail "routes dropped at SIGKILL despite graceful restart"
birdc_ show route all protocol dut 198.51.100.128/25 | grep -q 'stale' || birdc_ show protocols all dut | grep -qi 'restart' || fail "BIRD not in graceful restart"
start_speaker
echo "announce route 198.51.100.0/24 community 65000:1" >&3
wait_for 15 established bird || fail "restarted speaker not established"
wait_for 5 bird_has dut 198.51.100.0/24 || fail "restarted speaker's route missing"
wait_for 5 bird_lacks dut 198.51.100.128/25 || fail "stale route not flushed after End-of-RIB"
bird_has dut 192.0.2.0/24 || wait_for 5 bird_has dut 192.0.2.0/24 || fail "healthy group missing after restart"

case_ "SIGTERM withdraws everything and BIRD shows the shutdown message"
kill -TERM $SPK
wait_for 10 bash -c "! kill -0 $SPK" || fail "speaker did not exit on SIGTERM"
wait $SPK
[ $? -eq 0 ] || fail "speaker exit code not 0"
wait_for 5 bash -c "birdc -s $T/bird.ctl show protocols all dut | grep -q 'maintenance: bgp-announce interop test'" ||
    fail "BIRD does not show the shutdown message: $(birdc_ show protocols all dut | head -5)"
wait_for 5 bird_lacks dut 198.51.100.0/24 || fail "routes linger in BIRD after SIGTERM"
wait_for 5 bash -c "! gobgp -p 17911 global rib -j | jq -e 'length > 0' | grep -q true" || fail "routes linger in GoBGP after SIGTERM"

finish
