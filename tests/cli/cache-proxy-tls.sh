#!/usr/bin/env bash
# cache-proxy TLS termination (BoringSSL) against openssl s_client and curl, with a CA and two
# server certificates made here by the openssl CLI: bad certificate options, handshake,
# miss then hit over TLS, SNI, ALPN, TLS 1.2/1.3, large bodies, session resumption with
# tickets across key rotations (SIGHUP and the timer), early data refused, garbage instead
# of a ClientHello dropped without disturbing other clients. Ports 18410-18419.
. "$(dirname "$0")/lib.sh"
ORIGIN_BIN=$TBIN/cache-proxy-test-origin
[ -x "$ORIGIN_BIN" ] || { echo "FAIL: $ORIGIN_BIN not built"; exit 1; }
for t in curl openssl; do
    command -v $t >/dev/null || { echo "SKIP: $t not installed"; [ "${CI:-}" = true ] && exit 1; exit 77; }
done

P_PLAIN=18410 P_TLS=18411 P_ADMIN=18412 P_TLS2=18413 P_ADMIN2=18414 P_TLS3=18415
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}
for p in $P_PLAIN $P_TLS $P_ADMIN $P_TLS2 $P_ADMIN2 $P_TLS3; do
    (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && { echo "FAIL: port $p is already in use"; exit 1; }
done

# A CA and two server certificates (a.test and b.test, both also for localhost/127.0.0.1).
K=$T/pki
mkdir -p "$K"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=cp-test-ca \
    -keyout "$K/ca.key" -out "$K/ca.crt" 2>/dev/null || { echo "FAIL: openssl cannot make a CA"; exit 1; }
for n in a b; do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$n.test" \
        -keyout "$K/$n.key" -out "$K/$n.csr" 2>/dev/null
    printf 'subjectAltName=DNS:%s.test,DNS:localhost,IP:127.0.0.1\n' "$n" >"$K/$n.ext"
    openssl x509 -req -in "$K/$n.csr" -CA "$K/ca.crt" -CAkey "$K/ca.key" -CAcreateserial -days 2 \
        -extfile "$K/$n.ext" -out "$K/$n.crt" 2>/dev/null || { echo "FAIL: openssl cannot sign $n"; exit 1; }
done
TLSARGS=(--tls-cert "$K/a.crt" --tls-key "$K/a.key" --tls-cert "$K/b.crt" --tls-key "$K/b.key")

case_ "bad TLS options: one line naming the file, exit 2"
run cache-proxy --origin 127.0.0.1:80 --tls-listen 127.0.0.1:$P_TLS --tls-cert "$T/nope.crt" --tls-key "$K/a.key" check
expect_usage_error cache-proxy
expect_err "tls-cert .*nope.crt: cannot read: No such file"
run cache-proxy --origin 127.0.0.1:80 --tls-listen 127.0.0.1:$P_TLS --tls-cert "$K/a.crt" --tls-key "$T/nope.key" check
expect_usage_error cache-proxy
expect_err "tls-key .*nope.key: cannot read"
run cache-proxy --origin 127.0.0.1:80 --tls-listen 127.0.0.1:$P_TLS --tls-cert "$K/a.crt" --tls-key "$K/b.key" check
expect_usage_error cache-proxy
expect_err "does not match"
run cache-proxy --origin 127.0.0.1:80 --tls-listen 127.0.0.1:$P_TLS --tls-cert "$K/a.ext" --tls-key "$K/a.key" check
expect_usage_error cache-proxy
expect_err "not a PEM certificate"
run cache-proxy --origin 127.0.0.1:80 --tls-listen 127.0.0.1:$P_TLS --tls-cert "$K/a.crt" --tls-key "$K/a.crt" check
expect_usage_error cache-proxy
expect_err "not a PEM private key"
run cache-proxy --origin 127.0.0.1:80 --tls-listen 127.0.0.1:$P_TLS check
expect_usage_error cache-proxy
expect_err "needs a certificate"
run cache-proxy --origin 127.0.0.1:80 --tls-listen 127.0.0.1:$P_TLS --tls-cert "$K/a.crt" check
expect_usage_error cache-proxy
run cache-proxy --origin 127.0.0.1:80 --tls-cert "$K/a.crt" --tls-key "$K/a.key" check
expect_usage_error cache-proxy
expect_err "no --tls-listen"
run cache-proxy --origin 127.0.0.1:80 --listen 127.0.0.1:$P_TLS --tls-listen 127.0.0.1:$P_TLS "${TLSARGS[@]}" check
expect_usage_error cache-proxy
expect_err "also a plain"
run cache-proxy --origin 127.0.0.1:80 --tls-listen 127.0.0.1:$P_TLS "${TLSARGS[@]}" --tls-min-version 1.1 check
expect_usage_error cache-proxy
# From a config file: FILE:LINE and the key.
printf 'origin = "127.0.0.1:80"\ntls-listen = ["127.0.0.1:%s"]\ntls-cert = ["%s"]\ntls-key = ["%s"]\n' \
    $P_TLS "$T/missing.crt" "$K/a.key" >"$T/badtls.toml"
run cache-proxy -c "$T/badtls.toml" check
expect_usage_error cache-proxy
expect_err "badtls.toml:3: tls-cert: .*missing.crt: cannot read"
printf 'origin = "127.0.0.1:80"\ntls-listen = "127.0.0.1:%s"\ntls-cert = "%s"\ntls-key = "%s"\n' \
    $P_TLS "$K/a.crt" "$K/a.key" >"$T/tls.toml"
run cache-proxy -c "$T/tls.toml" check -j
expect_rc 0
expect_jsonl
expect_out '"tls_listen":\["127.0.0.1:18411"\]'
expect_out 'a.test'

# The example config, with this test's certificates in place of its paths.
sed -e "s|/etc/cache-proxy/www.example.com|$K/a|g; s|/etc/cache-proxy/api.example.com|$K/b|g" \
    "$SRC/examples/cache-proxy-tls.toml" >"$T/example.toml"
run cache-proxy -c "$T/example.toml" check -j
expect_rc 0
expect_out '"tls_certificates":\["a.test localhost","b.test localhost"\]'

# The origin and the proxy (plain and TLS listeners side by side).
"$ORIGIN_BIN" 0 >"$T/origin.port" 2>"$T/origin.err" &
PIDS+=($!)
OP=""
for _ in $(seq 100); do
    OP=$(awk '{print $2}' "$T/origin.port" 2>/dev/null)
    [ -n "$OP" ] && break
    sleep 0.05
done
[ -n "$OP" ] || { echo "FAIL: origin did not start"; exit 1; }
cache-proxy --listen 127.0.0.1:$P_PLAIN --tls-listen 127.0.0.1:$P_TLS --admin 127.0.0.1:$P_ADMIN \
    --origin 127.0.0.1:$OP -t 2 "${TLSARGS[@]}" --sendfile-min 64K >"$T/proxy.out" 2>"$T/proxy.err" &
CP=$!
PIDS+=($CP)
wait_port $P_TLS || { echo "FAIL: proxy did not start: $(cat "$T/proxy.err")"; exit 1; }

H=$T/h
Bd=$T/b
# sget PATH [curl args]: GET over TLS -> $code, headers in $H, body in $Bd
sget() {
    local path=$1
    shift
    code=$(curl -s -m 10 --cacert "$K/ca.crt" -D "$H" -o "$Bd" -w '%{http_code}' "$@" "https://localhost:$P_TLS$path")
}
hdr() { grep -i "^$1:" "$H" | head -1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//'; }
hits() { curl -s -m 5 "http://127.0.0.1:$OP/__hits$1"; }
metric() { curl -s -m 5 "http://127.0.0.1:$P_ADMIN/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
eq() { [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"; }
REQ='GET /r?cc=max-age%3D60 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
# sclient PORT [s_client args]: one request (Connection: close), the transcript in $T/sc
sclient() {
    local port=$1
    shift
    printf '%b' "$REQ" | timeout 10 openssl s_client -connect 127.0.0.1:$port -servername localhost \
        -CAfile "$K/ca.crt" -ign_eof "$@" >"$T/sc" 2>&1
}
reused() { grep -q '^Reused, TLS' "$T/sc"; }

case_ "handshake, a miss then a hit over TLS, X-Forwarded-Proto to the origin"
sget "/t1?cc=max-age%3D60"
eq "$code" 200 "first status"
eq "$(hdr x-cache-status)" MISS "first"
sget "/t1?cc=max-age%3D60"
eq "$(hdr x-cache-status)" HIT "second"
grep -q '#1' "$Bd" || fail "the hit is not the first response: $(cat "$Bd")"
eq "$(hits "/t1?cc=max-age%3D60")" 1 "origin requests"
sget "/__echo"
grep -q '^X-Forwarded-Proto: https' "$Bd" || fail "no X-Forwarded-Proto: https upstream: $(cat "$Bd")"
code=$(curl -s -m 5 -o "$Bd" -w '%{http_code}' "http://127.0.0.1:$P_PLAIN/__echo")
eq "$code" 200 "plain listener still speaks HTTP"
grep -q 'X-Forwarded-Proto' "$Bd" && fail "X-Forwarded-Proto on a plain request"
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P_TLS/")
[ "$code" = 200 ] && fail "plain HTTP was answered on the TLS port"

case_ "SNI picks the certificate; ALPN http/1.1"
curl -sv -m 10 --cacert "$K/ca.crt" --resolve b.test:$P_TLS:127.0.0.1 "https://b.test:$P_TLS/sni" -o /dev/null 2>"$T/v"
grep -q 'subject: CN *= *b.test' "$T/v" || fail "b.test did not get its certificate: $(grep subject "$T/v")"
grep -qi 'ALPN.*accepted http/1.1\|ALPN, server accepted to use http/1.1' "$T/v" || fail "no ALPN http/1.1: $(grep -i alpn "$T/v")"
curl -sv -m 10 --cacert "$K/ca.crt" --resolve a.test:$P_TLS:127.0.0.1 "https://a.test:$P_TLS/sni" -o /dev/null 2>"$T/v"
grep -q 'subject: CN *= *a.test' "$T/v" || fail "a.test did not get its certificate"
printf '' | timeout 10 openssl s_client -connect 127.0.0.1:$P_TLS -noservername -CAfile "$K/ca.crt" >"$T/sc" 2>&1
grep -q 'subject=.*CN *= *a.test' "$T/sc" || fail "no SNI: the first certificate is the default"
sclient $P_TLS -alpn h2
grep -q 'no_application_protocol\|no application protocol' "$T/sc" || fail "h2-only ALPN was not refused: $(grep -i alpn "$T/sc")"

case_ "TLS 1.3 and 1.2 accepted, 1.1 refused"
sclient $P_TLS -tls1_3
grep -q '^New, TLSv1.3' "$T/sc" || fail "no TLS 1.3"
grep -q 'X-Cache-Status' "$T/sc" || fail "no HTTP answer over TLS 1.3"
sclient $P_TLS -tls1_2
grep -q '^New, TLSv1.2' "$T/sc" || fail "no TLS 1.2"
grep -q 'X-Cache-Status' "$T/sc" || fail "no HTTP answer over TLS 1.2"
sclient $P_TLS -tls1_1
grep -q '^New, TLSv1.1\|X-Cache-Status' "$T/sc" && fail "TLS 1.1 was accepted"

case_ "large bodies over TLS: stored (memfd), streamed pass-through, keep-alive"
sget "/big?cc=max-age%3D60&size=1048576"
sget "/big?cc=max-age%3D60&size=1048576"
eq "$(hdr x-cache-status)" HIT "1 MiB hit"
eq "$(stat -c %s "$Bd")" 1048576 "1 MiB hit size"
curl -s -m 10 "http://127.0.0.1:$P_PLAIN/big?cc=max-age%3D60&size=1048576" -o "$T/plain.bin"
cmp -s "$T/plain.bin" "$Bd" || fail "1 MiB over TLS differs from plain"
sget "/pass?cc=no-store&size=3000000&chunked=1"
eq "$(stat -c %s "$Bd")" 3000000 "3 MB chunked pass-through size"
h0=$(metric cache_proxy_tls_handshakes_total)
curl -s -m 10 --cacert "$K/ca.crt" -o /dev/null -o /dev/null -o /dev/null \
    "https://localhost:$P_TLS/k1" "https://localhost:$P_TLS/k2" "https://localhost:$P_TLS/big?cc=max-age%3D60&size=1048576"
h1=$(metric cache_proxy_tls_handshakes_total)
eq "$((h1 - h0))" 1 "three requests on one kept-alive TLS connection: handshakes"

case_ "a slow TLS reader: records the socket cannot take yet wait, in order, for the next write"
# 6 MiB at 4 MB/s: the socket fills many times in the middle of a batch of records.
sget "/big6?cc=max-age%3D60&size=6291456"
curl -s -m 20 --cacert "$K/ca.crt" --limit-rate 4M -o "$T/slow.bin" "https://localhost:$P_TLS/big6?cc=max-age%3D60&size=6291456" \
    -o "$T/slow2.bin" "https://localhost:$P_TLS/k1"
curl -s -m 10 "http://127.0.0.1:$P_PLAIN/big6?cc=max-age%3D60&size=6291456" -o "$T/plain6.bin"
eq "$(stat -c %s "$T/slow.bin")" 6291456 "6 MiB slow read size"
cmp -s "$T/plain6.bin" "$T/slow.bin" || fail "6 MiB read slowly over TLS differs from plain"
[ -s "$T/slow2.bin" ] || fail "no answer to the request after the slow 6 MiB on the same connection"
# Pipelined over TLS: three requests in one write, three answers in order.
printf 'GET /k1 HTTP/1.1\r\nHost: localhost\r\n\r\nGET /big?cc=max-age%%3D60&size=1048576 HTTP/1.1\r\nHost: localhost\r\n\r\nGET /k2 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' |
    timeout 10 openssl s_client -quiet -connect 127.0.0.1:$P_TLS -servername localhost -CAfile "$K/ca.crt" -ign_eof >"$T/pipe" 2>/dev/null
eq "$(grep -ao 'HTTP/1.1 200 ' "$T/pipe" | wc -l)" 3 "pipelined answers over TLS"
[ "$(stat -c %s "$T/pipe")" -gt 1048576 ] || fail "pipelined 1 MiB answer over TLS is short: $(stat -c %s "$T/pipe") bytes"

case_ "session resumption with a ticket (TLS 1.3 and 1.2)"
for v in tls1_3 tls1_2; do
    rm -f "$T/s.pem"
    sclient $P_TLS -$v -sess_out "$T/s.pem"
    reused && fail "$v: the first handshake claims resumption"
    [ -s "$T/s.pem" ] || fail "$v: no session ticket received"
    sclient $P_TLS -$v -sess_in "$T/s.pem"
    reused || fail "$v: the ticket was not resumed: $(grep -E '^(New|Reused)' "$T/sc")"
    grep -q 'X-Cache-Status' "$T/sc" || fail "$v: no HTTP answer on the resumed session"
done
r=$(metric cache_proxy_tls_resumed_total)
[ "${r:-0}" -ge 2 ] || fail "tls_resumed_total is $r"

reloads() { grep -c 'configuration reloaded' "$T/proxy.err"; }
hup() {  # SIGHUP and wait until the reload (and its ticket key rotation) is done
    local n
    n=$(reloads)
    kill -HUP $CP
    for _ in $(seq 50); do
        [ "$(reloads)" -gt "$n" ] && return
        sleep 0.1
    done
    fail "SIGHUP was not handled"
}
case_ "ticket key rotation on SIGHUP: one period old still resumes, two do not"
for v in tls1_3 tls1_2; do
    rm -f "$T/s.pem"
    sclient $P_TLS -$v -sess_out "$T/s.pem"
    k0=$(metric cache_proxy_tls_ticket_key_rotations_total)
    hup
    k1=$(metric cache_proxy_tls_ticket_key_rotations_total)
    eq "$((k1 - k0))" 1 "$v: rotations per SIGHUP"
    sclient $P_TLS -$v -sess_in "$T/s.pem"
    reused || fail "$v: a ticket from the previous key period was not resumed"
    hup
    sclient $P_TLS -$v -sess_in "$T/s.pem"
    reused && fail "$v: a ticket two key periods old was resumed"
    grep -q '^New, TLS' "$T/sc" || fail "$v: no full handshake after the ticket expired"
    grep -q 'X-Cache-Status' "$T/sc" || fail "$v: no HTTP answer after the full handshake"
done

case_ "early data (0-RTT) is refused"
rm -f "$T/s.pem"
sclient $P_TLS -tls1_3 -sess_out "$T/s.pem"
printf '%b' "$REQ" >"$T/early.txt"
timeout 10 openssl s_client -connect 127.0.0.1:$P_TLS -servername localhost -CAfile "$K/ca.crt" -ign_eof \
    -sess_in "$T/s.pem" -early_data "$T/early.txt" </dev/null >"$T/sc" 2>&1
grep -q 'Early data was accepted' "$T/sc" && fail "early data was accepted"
grep -qE 'Early data was (not sent|rejected)' "$T/sc" || fail "no early-data verdict: $(grep -i early "$T/sc")"
grep -q 'max_early_data: [1-9]\|Max Early Data: [1-9]' "$T/sc" && fail "the ticket allows early data"

case_ "garbage instead of a ClientHello is dropped; other clients are not disturbed"
e0=$(metric cache_proxy_tls_handshake_errors_total)
exec 6<>/dev/tcp/127.0.0.1/$P_TLS
printf '\x16\x03' >&6  # half a record header, then silence: the server must not block on it
sget "/t1?cc=max-age%3D60"
eq "$code" 200 "a client beside a stalled handshake"
eq "$(hdr x-cache-status)" HIT "a client beside a stalled handshake"
(printf 'GARBAGE GARBAGE GARBAGE\r\n\r\n' >&6) 2>/dev/null
timeout 5 cat <&6 >"$T/garbage.out" 2>/dev/null
rc_g=$?
exec 6<&-
[ $rc_g = 124 ] && fail "the garbage connection was not closed"
grep -q 'HTTP/1' "$T/garbage.out" && fail "garbage got an HTTP answer"
exec 6<>/dev/tcp/127.0.0.1/$P_TLS
(printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' >&6) 2>/dev/null
timeout 5 cat <&6 >/dev/null 2>&1
rc_g=$?
exec 6<&-
[ $rc_g = 124 ] && fail "plain HTTP on the TLS port was not dropped"
e1=$(metric cache_proxy_tls_handshake_errors_total)
[ "$((e1 - e0))" -ge 2 ] || fail "handshake errors counted: $((e1 - e0)), expected 2"
sget "/t1?cc=max-age%3D60"
eq "$code" 200 "after the garbage"
kill -0 $CP 2>/dev/null || fail "the proxy died"

case_ "bad requests over TLS get 400, then the connection closes"
printf 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n' |
    timeout 10 openssl s_client -connect 127.0.0.1:$P_TLS -CAfile "$K/ca.crt" -ign_eof -quiet >"$T/sc" 2>/dev/null
grep -q '^HTTP/1.1 400' "$T/sc" || fail "smuggling attempt over TLS: $(head -3 "$T/sc")"

case_ "ticket keys rotate on the timer (--tls-ticket-rotation 1)"
cache-proxy --tls-listen 127.0.0.1:$P_TLS2 --listen 127.0.0.1:$P_TLS3 --admin 127.0.0.1:$P_ADMIN2 --origin 127.0.0.1:$OP \
    -t 1 --tls-cert "$K/a.crt" --tls-key "$K/a.key" --tls-ticket-rotation 1 >"$T/p2.out" 2>"$T/p2.err" &
P2=$!
PIDS+=($P2)
wait_port $P_TLS2 || fail "second proxy did not start: $(cat "$T/p2.err")"
rm -f "$T/s.pem"
sclient $P_TLS2 -tls1_3 -sess_out "$T/s.pem"
sleep 2.6
sclient $P_TLS2 -tls1_3 -sess_in "$T/s.pem"
reused && fail "a ticket more than two 1 s periods old was resumed"
grep -q 'X-Cache-Status' "$T/sc" || fail "no answer after the full handshake"
k=$(curl -s -m 5 "http://127.0.0.1:$P_ADMIN2/metrics" | awk '$1 == "cache_proxy_tls_ticket_key_rotations_total" {print $2}')
[ "${k:-0}" -ge 3 ] || fail "timer rotations: $k (expected >= 3 after 2.6 s)"
kill -TERM $P2
wait $P2 2>/dev/null
rc=$?
eq "$rc" 0 "second proxy exit code after SIGTERM"

case_ "PROXY protocol v2 before the ClientHello (--proxy-protocol on a TLS listener)"
if command -v python3 >/dev/null; then
    cache-proxy --tls-listen 127.0.0.1:18416 --listen 127.0.0.1:18417 --origin 127.0.0.1:$OP -t 1 --proxy-protocol \
        --tls-cert "$K/a.crt" --tls-key "$K/a.key" --access-log "$T/pp.log" >"$T/p3.out" 2>"$T/p3.err" &
    P3=$!
    PIDS+=($P3)
    wait_port 18416 || fail "PROXY proxy did not start: $(cat "$T/p3.err")"
    cat >"$T/pp.py" <<'PY'
import socket, ssl, struct, sys
port, ca = int(sys.argv[1]), sys.argv[2]
hdr = b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack("!H", 12)
hdr += socket.inet_aton("203.0.113.7") + socket.inet_aton("127.0.0.1") + struct.pack("!HH", 40000, port)
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(hdr)
t = ssl.create_default_context(cafile=ca).wrap_socket(s, server_hostname="localhost")
t.sendall(b"GET /pp HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
data = b""
while True:
    d = t.recv(65536)
    if not d:
        break
    data += d
print(data.split(b"\r\n")[0].decode())
PY
    out=$(timeout 10 python3 "$T/pp.py" 18416 "$K/ca.crt" 2>&1)
    echo "$out" | grep -q '^HTTP/1.1 200' || fail "TLS after a PROXY header: $out"
    sclient 18416
    grep -q 'X-Cache-Status' "$T/sc" && fail "a TLS client without the PROXY header was served"
    kill -TERM $P3
    wait $P3 2>/dev/null
    grep -q '"client":"203.0.113.7"' "$T/pp.log" || fail "the access log does not show the PROXY source: $(cat "$T/pp.log")"
else
    echo "note: python3 missing, PROXY+TLS case skipped"
fi

case_ "SIGTERM drains and exits 0"
kill -TERM $CP
wait $CP 2>/dev/null
rc=$?
eq "$rc" 0 "exit code after SIGTERM"
grep -q 'stopped:' "$T/proxy.err" || fail "no stop line: $(tail -2 "$T/proxy.err")"

finish
