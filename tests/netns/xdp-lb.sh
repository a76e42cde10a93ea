#!/usr/bin/env bash
# xdp-lb end to end in network namespaces:
#   client (xlb-c) --+
#   balancer (xlb-l) -+-- bridge in xlb-s --+-- backend xlb-b1 (decap + servers on the VIP)
#                                           +-- backend xlb-b2
#                                           +-- backend xlb-b3
# The client talks to the VIP; xdp-lb on the balancer's veth encapsulates to a backend and
# sends it back out (XDP_TX) to the backend's MAC; `xdp-lb decap` on the backend strips the
# outer header; the backend answers the client directly (DSR). Each answer names the
# backend, which must be the one maglev-calc predicts for that flow.
# Part 1: `run` in the foreground (SIGHUP reload, drain, SIGTERM). Part 2: `load` without a
# process, edited with `backend add|del`: 1,000 connections within +-15% of the Maglev
# shares, 200 long-lived connections that survive a backend-set change, and a QUIC-like
# client that keeps its backend (server id in the CID) while changing source port.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"
netns_require python3 ethtool nsenter
XLB=$(cd "$BIN" && pwd)/xdp-lb
PY=/usr/bin/python3
[ -x $PY ] || PY=$(command -v python3)
netns_cleanup_hook() {
    [ -e /run/netns/xlb-l ] && nsenter --net=/run/netns/xlb-l "$XLB" -q unload -i xlb-e2 >/dev/null 2>&1
}
netns_start xlb-c xlb-l xlb-s xlb-b1 xlb-b2 xlb-b3 xlb-b4

netns_bridge xlb-s xlb-br xlb-s xlb-e xlb-c:10.99.0.1/24 xlb-l:10.99.0.2/24 xlb-b1:10.99.0.11/24 \
    xlb-b2:10.99.0.12/24 xlb-b3:10.99.0.13/24
VIP=10.200.0.1
x xlb-c ip route add $VIP/32 via 10.99.0.2
for b in 1 2 3; do x "xlb-b$b" ip addr add $VIP/32 dev lo; done
MAC1=$(x xlb-b1 cat /sys/class/net/xlb-e3/address)
MAC2=$(x xlb-b2 cat /sys/class/net/xlb-e4/address)
MAC3=$(x xlb-b3 cat /sys/class/net/xlb-e5/address)

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
q = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); q.bind((vip, 4433))
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind((vip, 8080)); t.listen(512)
def udp(s):
    while True:
        d, a = s.recvfrom(2048); s.sendto(name.encode() + b" " + d[:16], a)
threading.Thread(target=udp, args=(u,), daemon=True).start()
threading.Thread(target=udp, args=(q,), daemon=True).start()
def conn(c):
    # One answer (the backend's name) per message until the client closes.
    try:
        while c.recv(100):
            c.sendall(name.encode())
    except OSError:
        pass
    c.close()
while True:
    c, a = t.accept(); threading.Thread(target=conn, args=(c,), daemon=True).start()
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
for b in 1 2 3; do
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

# ---- Part 2: xdp-lb load (no foreground process), edited in place -------------------
# nsenter keeps this mount namespace: the pins go to the host's /sys/fs/bpf and outlive
# the command.
# A fourth backend behind a second interface of the balancer (xlb-lr): the balancer
# redirects to it through the devmap. Its replies are routed back through the balancer.
VIP2=10.200.0.2
netns_link xlb-l xlb-lr 10.99.1.2/24 xlb-b4 xlb-r4 10.99.1.14/24
x xlb-b4 ip addr add $VIP2/32 dev lo
x xlb-b4 ip route add default via 10.99.1.2
x xlb-l sysctl -qw net.ipv4.ip_forward=1
x xlb-c ip route add $VIP2/32 via 10.99.0.2
MAC4=$(x xlb-b4 cat /sys/class/net/xlb-r4/address)
ip netns exec xlb-b4 $PY "$T/server.py" 10.99.1.14 $VIP2 &
PIDS+=($!)
ip netns exec xlb-b4 "$XLB" -q decap -i xlb-r4 --mode native &
PIDS+=($!)

cat >"$T/lb2.toml" <<TOML
[lb]
table_size = 65537
quic_server_id_bytes = 2
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
[[service.backend]]
address = "10.99.0.13"
mac = "$MAC3"
[[service]]
vip = "$VIP2"
port = 8080
proto = "tcp"
[[service.backend]]
address = "10.99.1.14"
mac = "$MAC4"
interface = "xlb-lr"
[[service]]
vip = "$VIP"
port = 5353
proto = "udp"
[[service.backend]]
address = "10.99.0.11"
mac = "$MAC1"
[[service]]
vip = "$VIP"
port = 4433
proto = "udp"
quic = true
[[service.backend]]
address = "10.99.0.11"
mac = "$MAC1"
server_id = 0x0b01
[[service.backend]]
address = "10.99.0.12"
mac = "$MAC2"
server_id = 0x0b02
[[service.backend]]
address = "10.99.0.13"
mac = "$MAC3"
server_id = 0x0b03
TOML

case_ "load: attached natively, no process left, pins in place"
run nsenter --net=/run/netns/xlb-l "$XLB" -c "$T/lb2.toml" load -i xlb-e2 --mode native
expect_rc 0
expect_err 'loaded on xlb-e2 \(native XDP\), 4 services'
x xlb-l ip link show xlb-e2 | grep -q 'xdp' || fail "no XDP program on xlb-e2"

case_ "1,000 connections: each on its maglev-calc backend, spread within 15% of the Maglev shares"
timeout 90 ip netns exec xlb-c $PY "$T/client.py" $VIP 1000 >"$T/k.out" 2>"$T/client.err" || fail "client failed: $(tail -2 "$T/client.err")"
grep '/tcp ' "$T/k.out" | awk '{print $1, $2}' | sort >"$T/k.got"
[ "$(wc -l <"$T/k.got")" = 1000 ] || fail "expected 1000 TCP answers, got $(wc -l <"$T/k.got")"
maglev-calc lookup -b 10.99.0.11,10.99.0.12,10.99.0.13 -m 65537 $(awk '{print $1}' "$T/k.got") | sed 's/ -> / /' | sort >"$T/k.want"
cmp -s "$T/k.want" "$T/k.got" || fail "backends differ from maglev-calc: $(diff "$T/k.want" "$T/k.got" | head -4)"
maglev-calc -j table -m 65537 -b 10.99.0.11,10.99.0.12,10.99.0.13 | jq -r 'select(.type=="maglev_backend") | "\(.backend) \(.share)"' >"$T/shares"
while read -r b share; do
    n=$(grep -c " $b\$" "$T/k.got")
    awk -v n="$n" -v s="$share" 'BEGIN { e = 1000 * s; exit !(n >= 0.85 * e && n <= 1.15 * e) }' ||
        fail "backend $b got $n of 1000 connections, expected $share of them +-15%"
done <"$T/shares"

case_ "QUIC-like client: short headers carry the server id; new source ports keep the backend"
cat >"$T/quic.py" <<'PY'
import socket, sys
vip, sids = sys.argv[1], dict(x.split("=") for x in sys.argv[2].split(","))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(3); u.bind(("10.99.0.1", 41000))
u.sendto(b"\xc0\x00\x00\x00\x01\x08" + b"12345678" + bytes(40), (vip, 4433))   # long header: Maglev
d, a = u.recvfrom(2048); first = d.split()[0].decode()
print(f"10.99.0.1:41000-{vip}:4433/udp {first}")
sid = int(sids[first], 16)
for port in range(41001, 41013):   # the client migrates: a new source port each time
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3); s.bind(("10.99.0.1", port))
    s.sendto(bytes([0x40, 0x07, sid >> 8, sid & 0xff]) + b"\x11\x22\x33\x44\x55" + b"short header", (vip, 4433))
    d, a = s.recvfrom(2048)
    print(f"10.99.0.1:{port}-{vip}:4433/udp {d.split()[0].decode()}")
PY
timeout 30 ip netns exec xlb-c $PY "$T/quic.py" $VIP "10.99.0.11=0b01,10.99.0.12=0b02,10.99.0.13=0b03" >"$T/q.out" 2>"$T/q.err" || fail "QUIC client failed: $(tail -2 "$T/q.err")"
[ "$(wc -l <"$T/q.out")" = 13 ] || fail "expected 13 answers: $(cat "$T/q.out")"
[ "$(awk '{print $2}' "$T/q.out" | sort -u | wc -l)" = 1 ] || fail "the client changed backend: $(awk '{print $2}' "$T/q.out" | sort | uniq -c)"
# ...while Maglev on the 4-tuple would have spread those ports (so the check means something).
maglev-calc lookup -b 10.99.0.11,10.99.0.12,10.99.0.13 -m 65537 $(awk 'NR > 1 {print $1}' "$T/q.out") | awk '{print $3}' | sort -u >"$T/q.maglev"
[ "$(wc -l <"$T/q.maglev")" -ge 2 ] || fail "Maglev alone would keep these ports together: the check is void"
run nsenter --net=/run/netns/xlb-l "$XLB" -j stats -i xlb-e2
jq -s -e 'map(select(.type=="lb_service_stats" and .service=="10.200.0.1:4433/udp"))[0].quic_cid == 12' "$OUT" >/dev/null ||
    fail "expected 12 CID-routed packets"

case_ "200 long-lived connections survive adding a backend and removing another"
run nsenter --net=/run/netns/xlb-l "$XLB" backend del -i xlb-e2 --vip $VIP --port 8080 --address 10.99.0.13
expect_rc 0
cat >"$T/long.py" <<'PY'
import os, socket, sys, time
vip, n, flag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
conns = []
for i in range(n):
    s = socket.create_connection((vip, 8080), timeout=5)
    s.sendall(b"hi"); conns.append((s, s.getsockname()[1], s.recv(100).decode()))
open(flag + ".ready", "w").close()
deadline = time.time() + 60
while not os.path.exists(flag) and time.time() < deadline:
    time.sleep(0.05)
for s, port, name in conns:
    try:
        s.settimeout(3); s.sendall(b"again"); now = s.recv(100).decode()
        status = "ok" if now == name else "broken"
    except OSError as e:
        status = "broken"
    print(f"10.99.0.1:{port}-{vip}:8080/tcp {name} {status}", flush=True)
PY
timeout 90 ip netns exec xlb-c $PY "$T/long.py" $VIP 200 "$T/go" >"$T/long.out" 2>"$T/long.err" &
LONG=$!
PIDS+=($LONG)
for _ in $(seq 300); do [ -e "$T/go.ready" ] && break; sleep 0.1; done
[ -e "$T/go.ready" ] || fail "the 200 connections did not open: $(tail -2 "$T/long.err")"
run nsenter --net=/run/netns/xlb-l "$XLB" backend add -i xlb-e2 --vip $VIP --port 8080 --address 10.99.0.13 --mac "$MAC3"
expect_rc 0
run nsenter --net=/run/netns/xlb-l "$XLB" backend del -i xlb-e2 --vip $VIP --port 8080 --address 10.99.0.12
expect_rc 0
touch "$T/go"
wait $LONG
[ "$(grep -c ' ok$' "$T/long.out")" = 200 ] || fail "connections broken: $(grep -vc ' ok$' "$T/long.out") of 200: $(grep -v ' ok$' "$T/long.out" | head -3)"
grep -q ' 10.99.0.12 ok$' "$T/long.out" || fail "no long-lived connection was on the removed backend 10.99.0.12"
# Maglev alone would have moved some of them (the connection table kept them).
maglev-calc lookup -b 10.99.0.11,10.99.0.13 -m 65537 $(awk '{print $1}' "$T/long.out") | sed 's/ -> / /' | sort >"$T/long.maglev"
awk '{print $1, $2}' "$T/long.out" | sort | comm -23 - "$T/long.maglev" | grep -q . || fail "no connection would have moved: the check is void"
timeout 60 ip netns exec xlb-c $PY "$T/client.py" $VIP 60 >"$T/k2.out" 2>"$T/client.err" || fail "client failed after the change"
grep -q '/tcp 10.99.0.12$' "$T/k2.out" && fail "the removed backend still gets new connections"
grep -q '/tcp 10.99.0.13$' "$T/k2.out" || fail "the added backend gets no new connections"

case_ "a backend behind another interface: redirected through the devmap, answers"
cat >"$T/c2.py" <<'PY'
import socket, sys
for i in range(10):
    s = socket.create_connection((sys.argv[1], 8080), timeout=3)
    s.sendall(b"hi"); print(s.recv(100).decode()); s.close()
PY
timeout 60 ip netns exec xlb-c $PY "$T/c2.py" $VIP2 >"$T/c2.out" 2>"$T/c2.err" || fail "client of $VIP2 failed: $(tail -2 "$T/c2.err")"
[ "$(grep -cx 10.99.1.14 "$T/c2.out")" = 10 ] || fail "expected 10 answers from 10.99.1.14: $(sort "$T/c2.out" | uniq -c)"
run nsenter --net=/run/netns/xlb-l "$XLB" -j stats -i xlb-e2
jq -s -e 'map(select(.type=="lb_reasons"))[0].redirect >= 30' "$OUT" >/dev/null || fail "redirect counter: $(grep lb_reasons "$OUT")"

case_ "unload detaches and removes the pins"
run nsenter --net=/run/netns/xlb-l "$XLB" unload -i xlb-e2
expect_rc 0
x xlb-l ip link show xlb-e2 | grep -q 'xdp' && fail "XDP program still attached"
[ -e /sys/fs/bpf/edge/xdp-lb/xlb-e2 ] && fail "pins left behind"

finish
