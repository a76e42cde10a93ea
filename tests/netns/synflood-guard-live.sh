#!/usr/bin/env bash
# synflood-guard's live control in network namespaces:
#   sfg-lc (client) --veth-- sfg-ls (server, guard with cookie = "always")
# - cookie SYN-ACKs with window scale, SACK and timestamps (set_timestamps = true): a
#   real Linux client connects through the XDP cookie path and both ends agree on the
#   options: the server's kernel rebuilt them from the timestamp cookie, and its window
#   scale equals the one the guard advertised (ss -ti on both sides);
# - the control socket (ctl status/stats/block/unblock/reload/metrics, bad commands);
# - Prometheus metrics over HTTP;
# - SIGHUP reload of thresholds, lists and protected destinations without detaching, a
#   bad config keeping the running one; SIGTERM removing the socket and restoring sysctls.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"
netns_require python3 ethtool
SFG=$(cd "$BIN" && pwd)/synflood-guard
PY=$(command -v python3)
netns_start sfg-ls sfg-lc
netns_link sfg-ls sfg-ls0 10.78.0.1/24 sfg-lc sfg-lc0 10.78.0.2/24
x sfg-ls sysctl -qw net.ipv4.tcp_timestamps=1
# A client whose own window scale differs from the server's (7 or less vs. 10 here), so
# a shift taken from the wrong end cannot pass.
x sfg-lc sysctl -qw net.ipv4.tcp_rmem="4096 131072 1048576"

cat >"$T/server.py" <<'PY'
import socket, sys
def opts(c):  # tcp_info: tcpi_options (1 TS, 2 SACK, 4 WSCALE), snd_wscale:4 rcv_wscale:4
    i = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return "opts=%d snd=%d rcv=%d" % (i[5], i[6] & 15, i[6] >> 4)
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.78.0.1", 8080)); s.listen(8)
while True:
    c, a = s.accept()
    try:
        with open(sys.argv[1], "a") as f: f.write("SERVER " + opts(c) + "\n")
        c.sendall(b"HELLO\n")
        c.settimeout(10)
        while c.recv(100): pass
    except OSError: pass
    c.close()
PY
cat >"$T/client.py" <<'PY'
import socket
s = socket.create_connection(("10.78.0.1", 8080), timeout=3); s.settimeout(3)
ok = s.recv(16).startswith(b"HELLO")
i = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
s.close()
print("banner" if ok else "nobanner")
print("CLIENT opts=%d snd=%d rcv=%d" % (i[5], i[6] & 15, i[6] >> 4))
PY
cat >"$T/metrics.py" <<'PY'
import sys, urllib.request
print(urllib.request.urlopen("http://127.0.0.1:9161/metrics", timeout=5).read().decode(), end="")
PY
ip netns exec sfg-ls $PY "$T/server.py" "$T/server.log" &
PIDS+=($!)
printf '[[protect]]\nprefix = "192.0.2.1/32"\nport = 1\n' >"$T/peer.toml"
ip netns exec sfg-lc "$SFG" -q -c "$T/peer.toml" run -i sfg-lc0 --mode native >/dev/null &
PIDS+=($!)

SOCK=$T/guard.sock
cat >"$T/guard.toml" <<TOML
[guard]
set_timestamps = true
control_socket = "$SOCK"
metrics = "127.0.0.1:9161"
[[protect]]
prefix = "10.78.0.1/32"
port = 8080
cookie = "always"
TOML
ip netns exec sfg-ls "$SFG" -j -c "$T/guard.toml" run -i sfg-ls0 --mode native >"$T/guard.out" 2>"$T/guard.log" &
GUARD=$!
PIDS+=($GUARD)
for _ in $(seq 50); do grep -q attached "$T/guard.log" 2>/dev/null && break; sleep 0.1; done
ctl() { run "$SFG" ctl -s "$SOCK" "$@"; }

case_ "sfg-live: attached, control socket up, timestamps without offsets for the run"
grep -q '"event":"attached"' "$T/guard.log" || fail "not attached: $(cat "$T/guard.log")"
[ -S "$SOCK" ] || fail "no control socket $SOCK"
[ "$(x sfg-ls sysctl -n net.ipv4.tcp_timestamps)" = 2 ] || fail "tcp_timestamps not 2 while running"
run "$SFG" -j ctl -s "$SOCK" status
expect_rc 0
expect_jsonl
expect_out '"type":"guard_status".*"cookie_options":\["timestamps","sack","wscale=[0-9]+"\]'
expect_out '"type":"guard_destination","destination":"10.78.0.1/32 port 8080".*"mode":"cookie"'
wscale=$(grep -o 'wscale=[0-9]*' "$OUT" | head -1 | cut -d= -f2)

case_ "sfg-live: a real client through the cookie path gets window scale, SACK and timestamps on both ends"
timeout 20 ip netns exec sfg-lc $PY "$T/client.py" >"$T/conn.out" 2>&1
grep -q '^banner' "$T/conn.out" || fail "no banner: $(cat "$T/conn.out")"
client=$(grep '^CLIENT' "$T/conn.out")
server=$(tail -1 "$T/server.log" 2>/dev/null)
val() { echo "$1" | grep -o "$2=[0-9]*" | cut -d= -f2; }
# tcpi_options: 1 timestamps, 2 SACK, 4 window scaling; all three on both ends
[ "$(val "$client" opts)" = 7 ] || fail "client options: $client"
[ "$(val "$server" opts)" = 7 ] || fail "server options (rebuilt from the cookie): $server"
# the shift each end sends with is the one the other end received in the handshake
[ -n "$(val "$client" snd)" ] && [ "$(val "$client" snd)" = "$(val "$server" rcv)" ] ||
    fail "the server's window scale ($server) differs from the one the client saw ($client)"
[ -n "$(val "$client" rcv)" ] && [ "$(val "$client" rcv)" = "$(val "$server" snd)" ] ||
    fail "the client's window scale ($client) was not carried by the cookie ($server)"
[ "$(val "$client" snd)" = "$wscale" ] || fail "advertised wscale $(val "$client" snd), status says $wscale"
echo "  cookie connection: $client / $server (guard wscale $wscale)"
run "$SFG" -j ctl -s "$SOCK" stats
jq -s -e 'map(select(.type=="guard_reasons"))[0] | .cookie_sent >= 1 and .cookie_ack_ok >= 1' "$OUT" >/dev/null ||
    fail "the connection did not take the cookie path: $(grep reasons "$OUT")"

case_ "sfg-live: ctl block / unblock / errors"
ctl block 10.78.0.2/32
expect_rc 0
expect_out 'blocked 10.78.0.2/32 on sfg-ls0'
timeout 20 ip netns exec sfg-lc $PY "$T/client.py" >"$T/blocked.out" 2>&1
grep -q '^banner' "$T/blocked.out" && fail "blocked client got through"
ctl unblock 10.78.0.2/32
expect_rc 0
ctl unblock 10.78.0.2/32
expect_usage_error synflood-guard
expect_err 'not on the deny list'
ctl frobnicate
expect_usage_error synflood-guard
run "$SFG" -j ctl -s "$SOCK" block not-a-prefix
expect_rc 2
expect_out '"type":"ctl_result","ok":false'
run "$SFG" ctl -s "$T/nope.sock" status
expect_usage_error synflood-guard

case_ "sfg-live: Prometheus metrics over HTTP and over the socket"
run ip netns exec sfg-ls $PY "$T/metrics.py"
expect_rc 0
expect_out '^# TYPE synflood_guard_packets_total counter'
grep -E '^synflood_guard_packets_total\{interface="sfg-ls0",reason="cookie_sent"\} [1-9]' "$OUT" >/dev/null ||
    fail "cookie_sent not counted in the metrics"
expect_out '^synflood_guard_destination_syn_total\{interface="sfg-ls0",destination="10.78.0.1/32 port 8080"\} [1-9]'
expect_out '^synflood_guard_reloads_total\{interface="sfg-ls0"\} 0'
ctl metrics
expect_rc 0
expect_out '^synflood_guard_flooded\{interface="sfg-ls0",destination="10.78.0.1/32 port 8080"\} 0'

case_ "sfg-live: SIGHUP reloads lists and destinations without detaching"
prog=$(x sfg-ls ip -j link show sfg-ls0 | jq '.[0].xdp.prog.id')
cat >"$T/guard.toml" <<TOML
[guard]
set_timestamps = true
control_socket = "$SOCK"
metrics = "127.0.0.1:9161"
deny = ["198.51.100.0/24"]
src_pps = 5000
[[protect]]
prefix = "10.78.0.1/32"
port = 8080
cookie = "never"
syn_pps = 200
[[protect]]
prefix = "10.78.0.1/32"
port = 9090
TOML
kill -HUP $GUARD
for _ in $(seq 50); do grep -q '"event":"reloaded"' "$T/guard.log" && break; sleep 0.1; done
grep -q '"event":"reloaded","trigger":"SIGHUP"' "$T/guard.log" || fail "no reload event: $(tail -2 "$T/guard.log")"
run "$SFG" -j ctl -s "$SOCK" status
expect_out '"deny":\["198.51.100.0/24"\]'
expect_out '"src_pps_limit":5000'
expect_out '"destination":"10.78.0.1/32 port 8080","id":0,"mode":"pass".*"syn_pps_limit":200'
expect_out '"destination":"10.78.0.1/32 port 9090","id":1'
[ "$(x sfg-ls ip -j link show sfg-ls0 | jq '.[0].xdp.prog.id')" = "$prog" ] || fail "the program changed on reload"
timeout 20 ip netns exec sfg-lc $PY "$T/client.py" >"$T/after.out" 2>&1
grep -q '^banner' "$T/after.out" || fail "no banner after the reload: $(cat "$T/after.out")"

case_ "sfg-live: a bad config on reload keeps the running one; ctl reload"
printf '[guard]\nurpf = "sideways"\n' >"$T/guard.toml"
ctl reload
expect_usage_error synflood-guard
grep -q '"event":"reload_failed"' "$T/guard.log" || fail "no reload_failed event"
run "$SFG" -j ctl -s "$SOCK" status
expect_out '"protected":2'
run ip netns exec sfg-ls $PY "$T/metrics.py"
expect_out '^synflood_guard_reloads_total\{interface="sfg-ls0"\} 1'

case_ "sfg-live: SIGTERM removes the socket and restores tcp_timestamps"
kill -TERM $GUARD
wait $GUARD
rc=$?
[ $rc = 0 ] || fail "synflood-guard exited $rc"
[ -e "$SOCK" ] && fail "control socket left behind"
[ "$(x sfg-ls sysctl -n net.ipv4.tcp_timestamps)" = 1 ] || fail "tcp_timestamps not restored"
x sfg-ls ip link show sfg-ls0 | grep -q xdp && fail "XDP program still attached"

finish
