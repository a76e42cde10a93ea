#!/usr/bin/env bash
# xdp-lb daisy chaining end to end (Unimog's second hop), in network namespaces:
#   client (xlb-dc) --+
#   balancer (xlb-dl) +-- bridge in xlb-ds --+-- backend A xlb-da (decap + servers on the VIP)
#                                            +-- backend B xlb-db
# Connections are made to A through a balancer whose table names only A. The balancer is
# then replaced by a fresh one (no connection table: as with Unimog, balancers share no
# state) and B is added, so some slots now name B with A as their previous backend. On the
# daisy-chained service (port 8080) every connection survives: the balancer sends its
# packets to B in GUE carrying A, and B's decap, which has no socket for them, sends them
# on to A. The same change on a service without daisy_chain (port 8081) breaks exactly the
# connections whose slot moved to B (B resets them): the check can fail.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"
netns_require python3 ethtool nsenter
XLB=$(cd "$BIN" && pwd)/xdp-lb
PY=/usr/bin/python3
[ -x $PY ] || PY=$(command -v python3)
netns_cleanup_hook() {
    [ -e /run/netns/xlb-dl ] && nsenter --net=/run/netns/xlb-dl "$XLB" -q unload -i xlb-de2 >/dev/null 2>&1
}
netns_start xlb-dc xlb-dl xlb-ds xlb-da xlb-db

netns_bridge xlb-ds xlb-dbr xlb-ds xlb-de xlb-dc:10.98.0.1/24 xlb-dl:10.98.0.2/24 xlb-da:10.98.0.11/24 \
    xlb-db:10.98.0.12/24
VIP=10.201.0.1
A=10.98.0.11
B=10.98.0.12
x xlb-dc ip route add $VIP/32 via 10.98.0.2
for b in da db; do
    x "xlb-$b" ip addr add $VIP/32 dev lo
    # A forwarding backend hands the first packets to the stack until the neighbour is known.
    x "xlb-$b" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
done
MACA=$(x xlb-da cat /sys/class/net/xlb-de3/address)
MACB=$(x xlb-db cat /sys/class/net/xlb-de4/address)

cat >"$T/server.py" <<'PY'
import socket, sys, threading
name, vip = sys.argv[1], sys.argv[2]
def serve(port):
    t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind((vip, port)); t.listen(512)
    def conn(c):
        try:
            while c.recv(100):
                c.sendall(name.encode())
        except OSError:
            pass
        c.close()
    while True:
        c, a = t.accept(); threading.Thread(target=conn, args=(c,), daemon=True).start()
threading.Thread(target=serve, args=(8081,), daemon=True).start()
serve(8080)
PY
cat >"$T/long.py" <<'PY'
import os, socket, sys, time
vip, n, flag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
conns = []
for port in (8080, 8081):
    for i in range(n):
        s = socket.create_connection((vip, port), timeout=5)
        s.sendall(b"hi"); conns.append((s, port, s.getsockname()[1], s.recv(100).decode()))
open(flag + ".ready", "w").close()
deadline = time.time() + 60
while not os.path.exists(flag) and time.time() < deadline:
    time.sleep(0.05)
for s, dport, port, name in conns:
    status = "broken"
    try:
        s.settimeout(3)
        for _ in range(3):   # several exchanges: every packet of the connection must find its way
            s.sendall(b"again"); now = s.recv(100).decode()
            if now != name:
                break
        else:
            status = "ok"
    except OSError:
        pass
    print(f"10.98.0.1:{port}-{vip}:{dport}/tcp {name} {status}", flush=True)
PY
cat >"$T/client.py" <<'PY'
import socket, sys
vip, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    s = socket.create_connection((vip, 8080), timeout=3)
    port = s.getsockname()[1]
    s.sendall(b"hi"); name = s.recv(100).decode(); s.sendall(b"more"); name2 = s.recv(100).decode(); s.close()
    print(f"10.98.0.1:{port}-{vip}:8080/tcp {name} {name2}")
PY
ip netns exec xlb-da $PY "$T/server.py" $A $VIP &
PIDS+=($!)
ip netns exec xlb-db $PY "$T/server.py" $B $VIP &
PIDS+=($!)
ip netns exec xlb-da "$XLB" -j decap -i xlb-de3 >"$T/decap-a.log" 2>&1 &
DA=$!
PIDS+=($DA)
ip netns exec xlb-db "$XLB" -j decap -i xlb-de4 >"$T/decap-b.log" 2>&1 &
DB=$!
PIDS+=($DB)
# XDP_TX on a veth needs an XDP program on its peer: decaps that match nothing pass all.
for p in 2 4; do
    ip netns exec xlb-ds "$XLB" -q decap -i "xlb-ds$p" --address 192.0.2.255 &
    PIDS+=($!)
done
# B does not know A's MAC yet: its first forward goes through the stack (which resolves
# it), the others by XDP_TX.
x xlb-db ip neigh flush all
for _ in $(seq 50); do grep -q decap_attached "$T/decap-a.log" && grep -q decap_attached "$T/decap-b.log" && break; sleep 0.1; done

cat >"$T/lb1.toml" <<TOML
[lb]
table_size = 251
[[service]]
vip = "$VIP"
port = 8080
proto = "tcp"
daisy_chain = true
[[service.backend]]
address = "$A"
mac = "$MACA"
[[service]]
vip = "$VIP"
port = 8081
proto = "tcp"
[[service.backend]]
address = "$A"
mac = "$MACA"
TOML

case_ "a balancer whose table names only A: 2 x 60 long-lived connections, all on A"
run nsenter --net=/run/netns/xlb-dl "$XLB" -c "$T/lb1.toml" load -i xlb-de2 --mode native
expect_rc 0
timeout 90 ip netns exec xlb-dc $PY "$T/long.py" $VIP 60 "$T/go" >"$T/long.out" 2>"$T/long.err" &
LONG=$!
PIDS+=($LONG)
for _ in $(seq 300); do [ -e "$T/go.ready" ] && break; sleep 0.1; done
[ -e "$T/go.ready" ] || fail "the connections did not open: $(tail -2 "$T/long.err")"

case_ "a fresh balancer (no connection table), then B added: slots moved to B keep A as previous backend"
run nsenter --net=/run/netns/xlb-dl "$XLB" unload -i xlb-de2
expect_rc 0
run nsenter --net=/run/netns/xlb-dl "$XLB" -c "$T/lb1.toml" load -i xlb-de2 --mode native
expect_rc 0
for port in 8080 8081; do
    run nsenter --net=/run/netns/xlb-dl "$XLB" backend add -i xlb-de2 --vip $VIP --port $port --address $B --mac "$MACB"
    expect_rc 0
done
run nsenter --net=/run/netns/xlb-dl "$XLB" -j status -i xlb-de2
expect_rc 0
jq -s -e --arg b "$A" 'map(select(.type=="lb_service" and .service=="10.201.0.1:8080/tcp"))[0] | .daisy_chain == true and (.backends[] | select(.backend==$b) | .previous_slots) > 0' "$OUT" >/dev/null ||
    fail "status shows no slot with A as its previous backend: $(grep 8080 "$OUT")"

case_ "daisy-chained connections all survive through B's forwarding to A; without daisy_chain the moved ones break"
touch "$T/go"
wait $LONG
[ "$(wc -l <"$T/long.out")" = 120 ] || fail "expected 120 results: $(tail -3 "$T/long.err")"
grep -q ' 10.98.0.12 ' "$T/long.out" && fail "a connection was made to B before it was added"
# Which connections Maglev moved to B (the same table as the balancer's).
maglev-calc lookup -b $A,$B -m 251 $(awk '{print $1}' "$T/long.out") | awk '$3 == "'$B'" {print $1}' | sort >"$T/moved"
moved8080=$(grep -c ':8080/tcp' "$T/moved")
moved8081=$(grep -c ':8081/tcp' "$T/moved")
[ "$moved8080" -ge 5 ] && [ "$moved8081" -ge 5 ] || fail "too few connections moved to B ($moved8080, $moved8081): the check is void"
d_ok=$(grep ':8080/tcp .* ok$' "$T/long.out" | wc -l)
[ "$d_ok" = 60 ] || fail "daisy chaining: $((60 - d_ok)) of 60 connections broken ($moved8080 moved to B): $(grep ':8080/tcp' "$T/long.out" | grep -v ' ok$' | head -3)"
grep ':8081/tcp .* broken$' "$T/long.out" | awk '{print $1}' | sort >"$T/broken"
cmp -s "$T/broken" <(grep ':8081/tcp' "$T/moved") ||
    fail "without daisy_chain the broken connections should be exactly the $moved8081 moved to B: $(diff "$T/broken" <(grep ':8081/tcp' "$T/moved") | head -4)"
run nsenter --net=/run/netns/xlb-dl "$XLB" -j stats -i xlb-de2
jq -s -e 'map(select(.type=="lb_reasons"))[0].daisy > 0' "$OUT" >/dev/null || fail "no GUE packet counted: $(grep lb_reasons "$OUT")"

case_ "new connections after the change: SYNs go to the slot's backend, whole exchanges work on A and B"
timeout 60 ip netns exec xlb-dc $PY "$T/client.py" $VIP 40 >"$T/new.out" 2>"$T/new.err" || fail "client failed: $(tail -2 "$T/new.err")"
awk '{print $1, $2}' "$T/new.out" | sort >"$T/new.got"
maglev-calc lookup -b $A,$B -m 251 $(awk '{print $1}' "$T/new.out") | sed 's/ -> / /' | sort >"$T/new.want"
cmp -s "$T/new.want" "$T/new.got" || fail "new connections not on their Maglev backend: $(diff "$T/new.want" "$T/new.got" | head -4)"
awk '$2 != $3' "$T/new.out" | grep -q . && fail "a connection changed backend mid-way"
grep -q " $B $B\$" "$T/new.out" || fail "no new connection on B"

case_ "B's decap counted the forwards (the first through the stack, then XDP), A's took them as second hops"
run nsenter --net=/run/netns/xlb-dl "$XLB" unload -i xlb-de2
expect_rc 0
kill -TERM $DA $DB
wait $DA $DB
jq -s -e --argjson n "$moved8080" 'map(select(.event=="decap_detached"))[0] | (.forward + .forward_stack) >= $n and .forward > 0 and .forward_stack >= 1' "$T/decap-b.log" >/dev/null ||
    fail "B forwarded too little: $(grep decap_detached "$T/decap-b.log")"
jq -s -e 'map(select(.event=="decap_detached"))[0] | .decap_gue > 0 and .forward == 0' "$T/decap-a.log" >/dev/null ||
    fail "A: $(grep decap_detached "$T/decap-a.log")"
echo "info: moved to B: $moved8080 daisy-chained (all kept), $moved8081 plain (broken: $(wc -l <"$T/broken")); B: $(jq -r 'select(.event=="decap_detached") | "forwarded \(.forward) by XDP, \(.forward_stack) by the stack"' "$T/decap-b.log")"

finish
