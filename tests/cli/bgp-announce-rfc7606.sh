#!/usr/bin/env bash
# RFC 7606: a scripted test peer (Python, on 127.0.0.5:17920) sends malformed UPDATEs;
# recoverable errors must not reset the session (treat-as-withdraw, attribute discard),
# an unparseable NLRI must get NOTIFICATION UPDATE/Invalid Network Field.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }

PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

cat >"$T/peer.py" <<'EOF'
import socket, struct, sys, time
M = b'\xff' * 16
def msg(t, body): return M + struct.pack('!HB', 19 + len(body), t) + body
def attr(flags, typ, val): return bytes([flags, typ, len(val)]) + val
def update(attrs, nlri): return msg(2, struct.pack('!H', 0) + struct.pack('!H', len(attrs)) + attrs + nlri)
origin = attr(0x40, 1, b'\x00')
aspath = attr(0x40, 2, b'\x02\x01' + struct.pack('!I', 65000))
nh = attr(0x40, 3, bytes([198, 18, 0, 5]))
def pfx(a, b, l): return bytes([l, a, b])
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.5', 17920)); srv.listen(1); srv.settimeout(15)
c, _ = srv.accept(); c.settimeout(5)
buf = b''
def read_msg():
    global buf
    while True:
        if len(buf) >= 19:
            l = struct.unpack('!H', buf[16:18])[0]
            if len(buf) >= l:
                m, buf = buf[:l], buf[l:]
                return m[18], m[19:]
        d = c.recv(65536)
        if not d: return None, None
        buf += d
t, _ = read_msg(); assert t == 1, 'expected OPEN'
caps = b'\x02\x06\x01\x04\x00\x01\x00\x01' + b'\x02\x06\x41\x04' + struct.pack('!I', 65000)
c.sendall(msg(1, struct.pack('!BHHIB', 4, 65000, 30, 0x7f000005, len(caps)) + caps))
c.sendall(msg(4, b''))
while True:
    t, b = read_msg()
    if t == 4: break
    assert t is not None, 'closed during setup'
# 1: ORIGIN value 5 -> treat-as-withdraw
c.sendall(update(attr(0x40, 1, b'\x05') + aspath + nh, pfx(10, 1, 16)))
# 2: AGGREGATOR of length 5 -> attribute discard, route stands
c.sendall(update(origin + aspath + nh + attr(0xc0, 7, b'\x01\x02\x03\x04\x05'), pfx(10, 2, 16)))
# 3: COMMUNITIES of length 3 -> treat-as-withdraw
c.sendall(update(origin + aspath + nh + attr(0xc0, 8, b'\x01\x02\x03'), pfx(10, 4, 16)))
# 4: well-formed
c.sendall(update(origin + aspath + nh, pfx(10, 3, 16)))
c.sendall(msg(4, b''))
end = time.time() + 1.5
while time.time() < end:
    c.settimeout(max(0.05, end - time.time()))
    try:
        t, b = read_msg()
    except socket.timeout:
        break
    if t == 3: print('NOTIFICATION after recoverable errors', b[:2].hex()); sys.exit(1)
    if t is None: print('closed after recoverable errors'); sys.exit(1)
print('session survived')
# 5: NLRI with a /33 prefix -> session reset with UPDATE/Invalid Network Field (3/10)
c.settimeout(5)
c.sendall(update(origin + aspath + nh, bytes([33, 10, 5, 0, 0, 0])))
while True:
    t, b = read_msg()
    if t is None: print('closed without NOTIFICATION'); sys.exit(1)
    if t == 3:
        print('NOTIFICATION', b[0], b[1]); sys.exit(0 if (b[0], b[1]) == (3, 10) else 1)
EOF

cat >"$T/speaker.toml" <<EOF
[speaker]
local_as = 65001
router_id = "127.0.0.2"
[[peer]]
name = "scripted"
address = "127.0.0.5"
port = 17920
remote_as = 65000
local_address = "127.0.0.2"
connect_retry = 1
EOF

python3 "$T/peer.py" >"$T/peer.out" 2>&1 &
PEER=$!
PIDS+=($PEER)
sleep 0.3
bgp-announce run -c "$T/speaker.toml" -j </dev/null >"$T/events" 2>"$T/stderr" &
PIDS+=($!)

case_ "malformed UPDATEs handled without a session reset; bad NLRI resets with 3/10"
timeout 20 tail --pid=$PEER -f /dev/null
wait $PEER
prc=$?
[ $prc -eq 0 ] || fail "peer script: $(cat "$T/peer.out")"
grep -q 'session survived' "$T/peer.out" || fail "session did not survive: $(cat "$T/peer.out")"
grep -q 'NOTIFICATION 3 10' "$T/peer.out" || fail "no UPDATE/Invalid Network Field: $(cat "$T/peer.out")"

case_ "events: treat-as-withdraw and attribute-discard reported, good routes announced"
grep -q '"type":"bgp_update_error","peer":"scripted","outcome":"treat_as_withdraw","detail":"ORIGIN value 5' "$T/events" || fail "ORIGIN error not reported"
grep -q '"outcome":"attribute_discard","detail":"AGGREGATOR length 5' "$T/events" || fail "AGGREGATOR discard not reported"
grep -q '"outcome":"treat_as_withdraw","detail":"COMMUNITIES length 3' "$T/events" || fail "COMMUNITIES error not reported"
grep -q '"action":"announce","prefix":"10.2.0.0/16"' "$T/events" || fail "route with a discarded attribute missing"
grep -q '"action":"announce","prefix":"10.3.0.0/16"' "$T/events" || fail "good route missing"
grep -q '"action":"announce","prefix":"10.1.0.0/16"' "$T/events" && fail "treat-as-withdraw route was announced"
grep -q '"action":"withdraw","prefix":"10.1.0.0/16"' "$T/events" || fail "treat-as-withdraw not turned into a withdraw"
grep -q '"direction":"sent","code":3,"subcode":10' "$T/events" || fail "NOTIFICATION 3/10 not reported"
grep -q 'malformed UPDATE handled by treat_as_withdraw' "$T/stderr" || fail "no warning on stderr"

finish
