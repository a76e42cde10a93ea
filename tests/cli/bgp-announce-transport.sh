#!/usr/bin/env bash
# bgp-announce transports against BIRD on loopback: TCP MD5 (RFC 2385; a wrong key never
# establishes) and an IPv6 session (::1) carrying IPv4 and IPv6 routes. Ports 17903-17905.
. "$(dirname "$0")/lib.sh"
for c in bird birdc jq; do
    if ! command -v $c >/dev/null; then
        [ "${CI:-}" = true ] && { echo "FAIL: $c missing under CI"; exit 1; }
        echo "SKIP: $c not installed"
        exit 77
    fi
done
if ! ip -6 addr show dev lo 2>/dev/null | grep -q '::1'; then
    [ "${CI:-}" = true ] && { echo "FAIL: no ::1 under CI"; exit 1; }
    echo "SKIP: no IPv6 loopback"
    exit 77
fi
PIDS=()
cleanup() {
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
protocol bgp withmd5 {
  local 127.0.0.1 port 17903 as 65000; neighbor 127.0.0.6 as 65001;
  strict bind on; multihop; passive on; password "s3cret";
  ipv4 { import all; export none; };
}
protocol bgp badmd5 {
  local 127.0.0.1 port 17905 as 65000; neighbor 127.0.0.7 as 65001;
  strict bind on; multihop; passive on; password "s3cret";
  ipv4 { import all; export none; };
}
protocol bgp six {
  local ::1 port 17904 as 65000; neighbor ::1 as 65001;
  strict bind on; multihop; passive on;
  ipv4 { import all; export none; };
  ipv6 { import all; export none; };
}
EOF
cat >"$T/speaker.toml" <<EOF
[speaker]
local_as = 65001
router_id = "127.0.0.6"
control_socket = "$T/ctl.sock"
[[peer]]
name = "md5"
address = "127.0.0.1"
port = 17903
remote_as = 65000
local_address = "127.0.0.6"
md5_password = "s3cret"
next_hop_self = "198.18.0.6"
connect_retry = 1
[[peer]]
name = "wrong-key"
address = "127.0.0.1"
port = 17905
remote_as = 65000
local_address = "127.0.0.7"
md5_password = "not-the-key"
connect_retry = 1
[[peer]]
name = "six"
address = "::1"
port = 17904
remote_as = 65000
families = ["ipv4-unicast", "ipv6-unicast"]
next_hop_self = "198.18.0.6"
next_hop_self6 = "2001:db8:ffff::6"
connect_retry = 1
[[group]]
prefixes = ["192.0.2.0/24", "2001:db8:7::/48"]
EOF
bird -f -c "$T/bird.conf" -s "$T/bird.ctl" -P "$T/bird.pid" 2>"$T/bird.err" &
PIDS+=($!)
wait_for 10 birdc -s "$T/bird.ctl" show status || { echo "FAIL: BIRD did not start: $(cat "$T/bird.err")"; exit 1; }
bgp-announce run -c "$T/speaker.toml" -j </dev/null >"$T/events" 2>"$T/stderr" &
PIDS+=($!)
state() { birdc -s "$T/bird.ctl" show protocols "$1" | grep -q Established; }
route_in() { birdc -s "$T/bird.ctl" show route protocol "$1" | grep -q "$2"; }

case_ "TCP MD5 session establishes and carries the route"
wait_for 10 state withmd5 || fail "MD5 session not established: $(birdc -s "$T/bird.ctl" show protocols all withmd5 | tail -5)"
wait_for 5 route_in withmd5 192.0.2.0/24 || fail "route missing over MD5"

case_ "IPv6 transport carries IPv4 and IPv6 routes"
wait_for 10 state six || fail "IPv6 session not established"
wait_for 5 route_in six 2001:db8:7::/48 || fail "IPv6 route missing"
birdc -s "$T/bird.ctl" show route all protocol six 2001:db8:7::/48 | grep -q 'BGP.next_hop: 2001:db8:ffff::6' || fail "IPv6 next hop"
wait_for 5 route_in six 192.0.2.0/24 || fail "IPv4 route over IPv6 missing"

case_ "a wrong MD5 key never establishes"
sleep 1
state badmd5 && fail "session with a wrong MD5 key established"
bgp-announce ctl -s "$T/ctl.sock" -j status | jq -e 'select(.peer=="wrong-key") | .state != "established"' | grep -q true || fail "wrong-key state"

finish
