#!/usr/bin/env bash
# A reader that never reads stdout must not stall the sessions (ExaBGP hangs at ~13k routes
# in that case): a scripted peer (127.0.0.5:17921) sends 60,000 routes while our stdout is a
# pipe nobody reads; every UPDATE must still be processed and the control socket answer.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq missing"; exit 77; }
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    exec 4>&- 2>/dev/null
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

cat >"$T/peer.py" <<'EOF'
import socket, struct, sys, time
M = b'\xff' * 16
def msg(t, body): return M + struct.pack('!HB', 19 + len(body), t) + body
def attr(flags, typ, val): return bytes([flags, typ, len(val)]) + val
attrs = attr(0x40, 1, b'\x00') + attr(0x40, 2, b'\x02\x01' + struct.pack('!I', 65000)) + attr(0x40, 3, bytes([198, 18, 0, 5]))
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.5', 17921)); srv.listen(1); srv.settimeout(15)
c, _ = srv.accept(); c.settimeout(10)
c.recv(4096)  # OPEN
caps = b'\x02\x06\x01\x04\x00\x01\x00\x01' + b'\x02\x06\x41\x04' + struct.pack('!I', 65000)
c.sendall(msg(1, struct.pack('!BHHIB', 4, 65000, 9, 0x7f000005, len(caps)) + caps) + msg(4, b''))
time.sleep(0.3)
n = 0
for u in range(60):
    nlri = b''.join(bytes([24, 10, (i >> 8) & 255, i & 255]) for i in range(u * 1000, (u + 1) * 1000))
    c.sendall(msg(2, struct.pack('!HH', 0, len(attrs)) + attrs + nlri))
    n += 1000
print('sent', n, flush=True)
# Stay up: keepalives every second; our hold time is 9 s, theirs must not expire either.
c.settimeout(1)
end = time.time() + 30
while time.time() < end:
    c.sendall(msg(4, b''))
    try:
        d = c.recv(65536)
        if not d: print('closed by speaker'); sys.exit(1)
        if b'\xff' * 16 + b'\x00\x15\x03' in d or (len(d) > 18 and d[18] == 3): print('NOTIFICATION'); sys.exit(1)
    except socket.timeout:
        pass
EOF
cat >"$T/speaker.toml" <<EOF
[speaker]
local_as = 65001
router_id = "127.0.0.2"
control_socket = "$T/ctl.sock"
[[peer]]
name = "flood"
address = "127.0.0.5"
port = 17921
remote_as = 65000
local_address = "127.0.0.2"
hold_time = 9
connect_retry = 1
EOF
python3 "$T/peer.py" >"$T/peer.out" 2>&1 &
PEER=$!
PIDS+=($PEER)
sleep 0.3
mkfifo "$T/out"
exec 4<>"$T/out"  # held open, never read: the pipe fills after 64 KiB
bgp-announce run -c "$T/speaker.toml" -j </dev/null >"$T/out" 2>"$T/stderr" &
SPK=$!
PIDS+=($SPK)

case_ "60,000 received routes with an unread stdout: processed, control socket answers"
st() { bgp-announce ctl -s "$T/ctl.sock" -j status; }
all_in() { st | jq -e 'select(.type=="bgp_peer") | .routes_received == 60000' | grep -q true; }
wait_for 20 all_in || fail "not all routes processed: $(st | head -1)"
sleep 2
st | jq -e 'select(.type=="bgp_peer") | .state == "established"' | grep -q true || fail "session not established after the flood: $(st | head -1)"
kill -0 $PEER 2>/dev/null || fail "scripted peer saw a problem: $(cat "$T/peer.out")"

case_ "SIGTERM still exits promptly with stdout unread"
kill -TERM $SPK
wait_for $((6 * ${EDGE_SLOW:-1})) bash -c "! kill -0 $SPK" || { fail "speaker hangs at exit on a full stdout"; kill -KILL $SPK; }

finish
