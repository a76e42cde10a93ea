#!/usr/bin/env bash
# xdp-lb end to end in network namespaces:
#   client (xlb-c) --+
#   balancer (xlb-l) -+-- bridge in xlb-s --+-- backend xlb-b1 (decap + servers on the VIP)
#                                           +-- backend xlb-b2
# The client talks to the VIP; xdp-lb on the balancer's veth encapsulates to a backend and
# sends it back out (XDP_TX) to the backend's MAC; `xdp-lb decap` on the backend strips the
# outer header; the backend answers the client directly (DSR). Each answer names the
# backend, which must be the one maglev-calc predicts for that flow.
. "$(dirname "$0")/../cli/lib.sh"

if [ "$(id -u)" != 0 ]; then
    [ "${CI:-}" = true ] && { echo "FAIL: needs root (namespaces, XDP) and CI=true"; exit 1; }
    echo "SKIP: needs root (network namespaces, XDP)"
    exit 77
fi
XLB=$(cd "$BIN" && pwd)/xdp-lb
PY=/usr/bin/python3
[ -x $PY ] || PY=$(command -v python3)
NS="xlb-c xlb-l xlb-s xlb-b1 xlb-b2"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    for n in $NS; do ip netns del "$n" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
for n in $NS; do ip netns del "$n" 2>/dev/null; ip netns add "$n"; done
x() { local n=$1; shift; ip netns exec "$n" "$@"; }

x xlb-s ip link add xlb-br type bridge
x xlb-s ip link set xlb-br up
i=0
for pair in "xlb-c:10.99.0.1" "xlb-l:10.99.0.2" "xlb-b1:10.99.0.11" "xlb-b2:10.99.0.12"; do
    n=${pair%%:*} a=${pair#*:}
    i=$((i + 1))
    ip link add "xlb-s$i" netns xlb-s type veth peer name "xlb-e$i" netns "$n"
    x xlb-s ip link set "xlb-s$i" master xlb-br up
    x "$n" ip addr add "$a/24" dev "xlb-e$i"
    x "$n" ip link set "xlb-e$i" up
    x "$n" ip link set lo up
    # Checksums must be complete before XDP moves a packet to another host.
    x "$n" ethtool -K "xlb-e$i" tx off >/dev/null
    x xlb-s ethtool -K "xlb-s$i" tx off >/dev/null
done
VIP=10.200.0.1
x xlb-c ip route add $VIP/32 via 10.99.0.2
for b in 1 2; do x "xlb-b$b" ip addr add $VIP/32 dev lo; done
MAC1=$(x xlb-b1 cat /sys/class/net/xlb-e3/address)
MAC2=$(x xlb-b2 cat /sys/class/net/xlb-e4/address)

cat >"$T/lb.toml" <<TOML
[lb]
table_size = 251
[[service]]
vip = "$VIP"
port = 8080
proto = "tcp"
[[service.backend]]
address = "10.99.0.11"
mac = "$MAC1"
[[service.backend]]
address = "10.99.0.12"
mac = "$MAC2"
[[service]]
vip = "$VIP"
port = 5353
proto = "udp"
[[service.backend]]
address = "10.99.0.11"
mac = "$MAC1"
[[service.backend]]
address = "10.99.0.12"
mac = "$MAC2"
TOML

# Servers on the backends: each answers with its own name.
cat >"$T/server.py" <<'PY'
import socket, sys, threading
name, vip = sys.argv[1], sys.argv[2]
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind((vip, 5353))
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind((vip, 8080)); t.listen(128)
def udp():
    while True:
        d, a = u.recvfrom(2048); u.sendto(name.encode() + b" " + d, a)
threading.Thread(target=udp, daemon=True).start()
while True:
    c, a = t.accept(); c.recv(100); c.sendall(name.encode()); c.close()
PY
cat >"$T/client.py" <<'PY'
import socket, sys
vip, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    s = socket.create_connection((vip, 8080), timeout=3)
    port = s.getsockname()[1]
    s.sendall(b"hi"); name = s.recv(100).decode(); s.close()
    print(f"10.99.0.1:{port}-{vip}:8080/tcp {name}")
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(3); u.bind(("10.99.0.1", 40000))
u.sendto(b"ping", (vip, 5353)); d, a = u.recvfrom(2048)
print(f"10.99.0.1:40000-{vip}:5353/udp {d.decode().split()[0]} {a[0]}")
PY
for b in 1 2; do
    ip netns exec "xlb-b$b" $PY "$T/server.py" "10.99.0.1$b" $VIP &
    PIDS+=($!)
    ip netns exec "xlb-b$b" "$XLB" -q decap -i "xlb-e$((b + 2))" &
    PIDS+=($!)
done
# XDP_TX on a veth needs an XDP program on its peer: a decap that matches nothing passes all.
ip netns exec xlb-s "$XLB" -q decap -i xlb-s2 --address 192.0.2.255 &
PIDS+=($!)
ip netns exec xlb-l "$XLB" -c "$T/lb.toml" run -i xlb-e2 --mode native 2>"$T/lb.log" &
LB=$!
PIDS+=($LB)
for _ in $(seq 50); do grep -q attached "$T/lb.log" 2>/dev/null && break; sleep 0.1; done

case_ "the balancer attached in native mode"
grep -q 'native XDP' "$T/lb.log" || fail "not attached natively: $(cat "$T/lb.log")"

case_ "TCP connections and a UDP exchange through the balancer reach the Maglev backend, replies direct"
timeout 60 ip netns exec xlb-c $PY "$T/client.py" $VIP 40 >"$T/client.out" 2>"$T/client.err" || fail "client failed: $(tail -2 "$T/client.err")"
[ "$(grep -c '/tcp ' "$T/client.out")" = 40 ] || fail "expected 40 TCP answers: $(cat "$T/client.out" | head -3)"
grep -q '/udp .* 10.200.0.1$' "$T/client.out" || fail "no UDP answer from the VIP"
awk '{print $1}' "$T/client.out" >"$T/flows"
maglev-calc lookup -b 10.99.0.11,10.99.0.12 -m 251 $(cat "$T/flows") | sed 's/ -> / /' | sort >"$T/want"
awk '{print $1, $2}' "$T/client.out" | sort >"$T/got"
cmp -s "$T/want" "$T/got" || fail "backends differ from maglev-calc: $(diff "$T/want" "$T/got" | head -4)"
for b in 10.99.0.11 10.99.0.12; do grep -q " $b\$" "$T/got" || fail "backend $b got no connection of 40"; done

case_ "status and stats of the running balancer"
run nsenter -t "$LB" -m -n "$XLB" -j status -i xlb-e2
expect_rc 0
expect_out '"type":"lb_status","interface":"xlb-e2".*"mode":"native"'
expect_out '"service":"10.200.0.1:8080/tcp"'
run nsenter -t "$LB" -m -n "$XLB" -j stats -i xlb-e2
expect_rc 0
jq -s -e 'map(select(.type=="lb_service_stats" and .service=="10.200.0.1:8080/tcp"))[0] | .new_flows == 40 and .packets > 100' "$OUT" >/dev/null ||
    fail "service counters do not show 40 connections"
jq -s -e 'map(select(.type=="lb_reasons"))[0].tx > 100' "$OUT" >/dev/null || fail "tx counter"

case_ "SIGHUP reload: drain 10.99.0.12, new connections all go to 10.99.0.11"
sed -i 's/address = "10.99.0.12"/address = "10.99.0.12"\nweight = 0/' "$T/lb.toml"
kill -HUP "$LB"
for _ in $(seq 50); do grep -q reloaded "$T/lb.log" && break; sleep 0.1; done
grep -q reloaded "$T/lb.log" || fail "no reload: $(cat "$T/lb.log")"
timeout 60 ip netns exec xlb-c $PY "$T/client.py" $VIP 20 >"$T/client2.out" 2>"$T/client.err" || fail "client failed after reload"
[ "$(grep -c '/tcp 10.99.0.11$' "$T/client2.out")" = 20 ] || fail "drained backend still got new connections: $(sort "$T/client2.out" | uniq -c | head)"

case_ "SIGTERM detaches and removes the pins"
kill -TERM "$LB"
wait "$LB"
rc=$?
[ $rc = 0 ] || fail "xdp-lb exited $rc"
x xlb-l ip link show xlb-e2 | grep -q 'xdp' && fail "XDP program still attached"
grep -q detached "$T/lb.log" || fail "no detach message"

finish
