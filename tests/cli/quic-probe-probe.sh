#!/usr/bin/env bash
# quic-probe probe against real servers: Debian's gtlsserver (ngtcp2 0.12 example server)
# on 127.0.0.1, plain, with Retry (-V), preferring the v2 draft, and with an 8-certificate
# chain (the amplification-limit case). Loopback UDP only: no root needed.
. "$(dirname "$0")/lib.sh"
Q=quic-probe

skip() {
    if [ "${CI:-}" = true ]; then
        echo "FAIL: cannot run under CI=true: $*"
        exit 1
    fi
    echo "SKIP: $*"
    exit 77
}

# ---- usage errors (no server needed) ----
case_ "probe: no target"
run $Q probe
expect_usage_error $Q
expect_err 'no target'
case_ "probe: unknown test"
run $Q 127.0.0.1:1 --test handshake,warp
expect_usage_error $Q
case_ "probe: bad port"
run $Q 127.0.0.1:99999
expect_usage_error $Q
expect_err 'port must be 1-65535'
case_ "probe: bad timeout"
run $Q 127.0.0.1:1 --timeout 0
expect_usage_error $Q
case_ "probe: unknown version"
run $Q 127.0.0.1:1 --versions v9
expect_usage_error $Q
expect_err 'unknown QUIC version'
case_ "probe: unreadable --ca"
run $Q 127.0.0.1:1 --ca "$T/missing.pem"
expect_usage_error $Q
case_ "probe: missing --targets file"
run $Q --targets "$T/missing.txt"
expect_usage_error $Q
case_ "probe: --session with many targets"
run $Q 127.0.0.1:1 127.0.0.1:2 --session "$T/s"
expect_usage_error $Q
case_ "probe: bad path"
run $Q 127.0.0.1:1 --path x
expect_usage_error $Q

for c in gtlsserver openssl ss jq; do
    command -v $c >/dev/null || skip "$c not installed (apt-get install ngtcp2-server openssl iproute2 jq)"
done

P1=15433 P2=15434 P3=15435 P4=15436 PX=15439 # plain, Retry, v2 draft preferred, long chain; PX: closed
P6=15437                                      # plain on [::1]
PL1=15440 PL2=15441 PL3=15442                 # lossy relays in front of P1
PN=15443                                      # a UDP echo: something, but not QUIC
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$T/server.key" -out "$T/server.crt" 2>/dev/null ||
    { echo "FAIL: openssl"; exit 1; }
# An 8-certificate chain (root, 6 intermediates, leaf): the first flight exceeds 3 x 1200 bytes.
mkchain() {
    local d=$1 prev=0 i
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=qp-root \
        -addext basicConstraints=critical,CA:TRUE -keyout "$d/ca0.key" -out "$d/ca0.crt" 2>/dev/null || return 1
    printf 'basicConstraints=critical,CA:TRUE\n' >"$d/ca.ext"
    for i in 1 2 3 4 5 6; do
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=qp-intermediate-$i" \
            -keyout "$d/ca$i.key" -out "$d/ca$i.csr" 2>/dev/null || return 1
        openssl x509 -req -in "$d/ca$i.csr" -CA "$d/ca$prev.crt" -CAkey "$d/ca$prev.key" -CAcreateserial -days 2 \
            -extfile "$d/ca.ext" -out "$d/ca$i.crt" 2>/dev/null || return 1
        prev=$i
    done
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$d/leaf.ext"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
        -keyout "$d/leaf.key" -out "$d/leaf.csr" 2>/dev/null || return 1
    openssl x509 -req -in "$d/leaf.csr" -CA "$d/ca6.crt" -CAkey "$d/ca6.key" -CAcreateserial -days 2 \
        -extfile "$d/leaf.ext" -out "$d/leaf.crt" 2>/dev/null || return 1
    cat "$d/leaf.crt" "$d/ca6.crt" "$d/ca5.crt" "$d/ca4.crt" "$d/ca3.crt" "$d/ca2.crt" "$d/ca1.crt" "$d/ca0.crt" >"$d/chain.crt"
}
mkdir -p "$T/chain" "$T/htdocs"
mkchain "$T/chain" || { echo "FAIL: openssl chain"; exit 1; }
echo hello >"$T/htdocs/index.html"
head -c 54321 /dev/urandom >"$T/htdocs/blob.bin"

srv() { # srv PORT KEY CERT [options]
    local port=$1 key=$2 crt=$3
    shift 3
    gtlsserver 127.0.0.1 "$port" "$key" "$crt" -d "$T/htdocs" -q "$@" >"$T/srv-$port.log" 2>&1 &
    pids+=($!)
}
srv $P1 "$T/server.key" "$T/server.crt"
srv $P2 "$T/server.key" "$T/server.crt" -V
srv $P3 "$T/server.key" "$T/server.crt" --preferred-versions=v2draft,v1
srv $P4 "$T/chain/leaf.key" "$T/chain/chain.crt"
for _ in $(seq 100); do
    [ "$(ss -Huln | grep -cE "127\.0\.0\.1:($P1|$P2|$P3|$P4) ")" = 4 ] && break
    sleep 0.1
done
[ "$(ss -Huln | grep -cE "127\.0\.0\.1:($P1|$P2|$P3|$P4) ")" = 4 ] || { echo "FAIL: gtlsserver did not start"; cat "$T"/srv-*.log; exit 1; }
CA=(--ca "$T/server.crt")
field() { jq -r "$1" "$OUT" | head -1; }
expect_field() { # expect_field JQ VALUE
    local got
    got=$(jq -r "$1" "$OUT" 2>/dev/null | head -1)
    [ "$got" = "$2" ] || fail "$1 = '$got', expected '$2'"
}

case_ "handshake: version, ALPN, certificate, timings, RTT"
run $Q -j 127.0.0.1:$P1 "${CA[@]}" --test handshake
expect_rc 0
expect_jsonl
expect_field .type quic_probe
expect_field .ok true
expect_field .version v1
expect_field .alpn h3
expect_field .cert_subject CN=localhost
expect_field .cert_verified true
expect_field .retry false
expect_field .version_negotiation false
expect_field '.tests[0].result' pass
expect_field '.transport_params.initial_max_streams_bidi > 0' true
expect_field '.handshake_completed_us > 0 and .handshake_completed_us >= .first_packet_us' true
expect_field '.handshake_confirmed_us >= .handshake_completed_us' true
expect_field '.min_rtt_us >= 0 and .smoothed_rtt_us > 0' true
expect_field '.tx_bytes >= 1200 and .rx_bytes > 0' true
expect_field '.tls_cipher | startswith("TLS_")' true
expect_field .close_by client

case_ "handshake in text"
run $Q 127.0.0.1:$P1 "${CA[@]}"
expect_rc 0
expect_out "^127\.0\.0\.1:$P1: ok"
expect_out 'certificate +CN=localhost .*verified'
expect_out 'rtt +min'

case_ "ALPN the server does not speak: TLS alert, exit 1"
run $Q -j 127.0.0.1:$P1 "${CA[@]}" --alpn hq-interop-nope -t 3
expect_rc 1
expect_field .error tls
expect_field '.message | test("no_application_protocol")' true

case_ "certificate: untrusted without --ca, accepted with --insecure, wrong name"
run $Q -j 127.0.0.1:$P1
expect_rc 1
expect_field .error certificate
expect_field .cert_verified false
run $Q -j 127.0.0.1:$P1 --insecure
expect_rc 0
expect_field .cert_verified false
run $Q -j 127.0.0.1:$P1 "${CA[@]}" --sni other.example
expect_rc 1
expect_field '.cert_error | test("name")' true

case_ "Retry server (-V): retry seen, handshake completes with the token"
run $Q -j 127.0.0.1:$P2 "${CA[@]}" --test retry,amplification
expect_rc 0
expect_field .retry true
expect_field '.retry_token_bytes > 0' true
expect_field '.tests[] | select(.name=="retry") | .result' pass
expect_field '.tests[] | select(.name=="amplification") | .details.retry' true
run $Q -j 127.0.0.1:$P1 "${CA[@]}" --test retry
expect_field '.tests[] | select(.name=="retry") | .result' unsupported

case_ "server preferring the v2 draft: compatible version negotiation"
run $Q -j 127.0.0.1:$P3 "${CA[@]}"
expect_rc 0
expect_field .version v2-draft
expect_field .initial_version v1
expect_field .compatible_version_negotiation true
run $Q -j 127.0.0.1:$P3 "${CA[@]}" --versions v1
expect_field .version v1

case_ "version negotiation check: a reserved version gets VN, then v1"
run $Q -j 127.0.0.1:$P1 "${CA[@]}" --test versionnegotiation
expect_rc 0
expect_field '.tests[0].result' pass
expect_field '.tests[0].evidence | test("offering .*v1")' true

case_ "resumption and 0-RTT across two probes with a session file"
run $Q -j 127.0.0.1:$P1 "${CA[@]}" --session "$T/session"
expect_rc 0
expect_field .tls_resumed false
[ -s "$T/session" ] || fail "session file not written"
grep -q '^ticket [0-9a-f]' "$T/session" || fail "session file has no ticket"
run $Q -j 127.0.0.1:$P1 "${CA[@]}" --session "$T/session" --test resumption,zerortt --path /blob.bin
expect_rc 0
expect_field .tls_resumed true
expect_field .early_data accepted
expect_field '.tests[] | select(.name=="resumption") | .result' pass
expect_field '.tests[] | select(.name=="zerortt") | .result' pass
expect_field '.tests[] | select(.name=="zerortt") | .evidence | test("54321 body bytes")' true
# A ticket for another server is not used.
run $Q -j 127.0.0.1:$P3 "${CA[@]}" --session "$T/session"
expect_field .tls_resumed false
# Within one run: the second connection resumes.
run $Q -j 127.0.0.1:$P1 "${CA[@]}" --test resumption,zerortt
expect_field '.tests[] | select(.name=="resumption") | .result' pass
expect_field '.tests[] | select(.name=="zerortt") | .result' pass
printf 'garbage\n' >"$T/bad-session"
run $Q -j 127.0.0.1:$P1 "${CA[@]}" --session "$T/bad-session"
expect_rc 0
expect_err 'bad-session: line 1'

case_ "http3 GET: status and body size match the file"
run $Q -j 127.0.0.1:$P1 "${CA[@]}" --test http3 --path /blob.bin
expect_rc 0
expect_field .http.status 200
expect_field .http.body_bytes 54321
expect_field '.http.ttfb_us >= 0' true
run $Q -j 127.0.0.1:$P1 "${CA[@]}" --test http3 --path /nope
expect_field .http.status 404

case_ "keyupdate, chacha20, migration, rebind"
run $Q -j 127.0.0.1:$P1 "${CA[@]}" --test keyupdate,chacha20,migration,rebind
expect_rc 0
for t in keyupdate chacha20 migration rebind; do
    expect_field ".tests[] | select(.name==\"$t\") | .result" pass
done
expect_field '.tests[] | select(.name=="chacha20") | .evidence | test("CHACHA20")' true
expect_field '.tests[] | select(.name=="rebind") | .details.old_port != .details.new_port' true

case_ "rebind and migration listed in either order: both pass (migration runs first)"
run $Q -j 127.0.0.1:$P1 "${CA[@]}" --test rebind,migration
expect_rc 0
expect_field '[.tests[].name] | join(",")' migration,rebind
expect_field '[.tests[].result] | join(",")' pass,pass
expect_field '.close_reason | test("CONNECTION_ID_LIMIT") | not' true

case_ "IPv6 target: [::1]"
srv6_ok=false
gtlsserver ::1 $P6 "$T/server.key" "$T/server.crt" -d "$T/htdocs" -q >"$T/srv-$P6.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do ss -Huln | grep -q "\[::1\]:$P6 " && { srv6_ok=true; break; }; sleep 0.1; done
if $srv6_ok; then
    run $Q -j "[::1]:$P6" --insecure --test handshake,http3 -t 5
    expect_rc 0
    expect_field .address "[::1]:$P6"
    expect_field '.local_address | startswith("[::1]:")' true
    expect_field '[.tests[].result] | join(",")' pass,pass
    run $Q "[::1]:$PX" -t 3
    expect_rc 1
    expect_out 'unreachable: ICMP port unreachable'
else
    echo "note: no IPv6 on loopback here, [::1] case not run"
    [ "${CI:-}" != true ] || fail "gtlsserver could not listen on [::1]:$P6"
fi

# A UDP relay on 127.0.0.1 that drops chosen datagrams (this kernel has no netem):
#   lossy LISTEN_PORT SERVER_PORT DROP_CLIENT DROP_SERVER LOG  (DROP_*: comma-separated
#   1-based datagram numbers in that direction). Writes "client N dropped D" lines to LOG.
lossy() {
    python3 - "$@" <<'PY' &
import socket, sys, select
lport, sport, dc, ds, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
drop = {"client": {int(x) for x in dc.split(",") if x}, "server": {int(x) for x in ds.split(",") if x}}
front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); front.bind(("127.0.0.1", lport))
back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); back.bind(("127.0.0.1", 0))
back.connect(("127.0.0.1", sport))
n = {"client": 0, "server": 0}; dropped = {"client": 0, "server": 0}; client = None
with open(log, "w") as f:
    f.write("ready\n"); f.flush()
    while True:
        r, _, _ = select.select([front, back], [], [], 30)
        if not r: break
        for s in r:
            data, addr = s.recvfrom(65535)
            side = "client" if s is front else "server"
            if side == "client": client = addr
            n[side] += 1
            if n[side] in drop[side]:
                dropped[side] += 1
            elif side == "client": back.send(data)
            elif client: front.sendto(data, client)
            f.write("%s %d dropped %d\n" % (side, n[side], dropped[side])); f.flush()
PY
    pids+=($!)
    for _ in $(seq 50); do grep -q ready "$5" 2>/dev/null && return 0; sleep 0.1; done
    return 1
}

if ! command -v python3 >/dev/null; then
    echo "note: python3 not installed (apt-get install python3-minimal): loss cases not run"
    [ "${CI:-}" != true ] || fail "python3 is needed for the loss cases under CI=true"
else
case_ "loss: the client's first Initial dropped: retransmitted after its PTO, handshake completes"
lossy $PL1 $P1 1 "" "$T/lossy1.log" || fail "relay did not start"
run $Q -j 127.0.0.1:$PL1 "${CA[@]}" --test handshake,http3 -t 10
expect_rc 0
expect_field '[.tests[].result] | join(",")' pass,pass
grep -q '^client 1 dropped 1$' "$T/lossy1.log" || fail "the relay did not drop the first client datagram"
# Nothing comes back before the retransmission: the first server packet waits for the
# client's first PTO (ngtcp2: 333 ms initial RTT + 4 x 166 ms = ~1 s) on a ~0 ms path.
expect_field '.first_packet_us > 300000' true
expect_field '.min_rtt_us < 100000' true

case_ "loss: the server's first flight dropped: the server retransmits, handshake completes"
lossy $PL2 $P1 "" 1,2 "$T/lossy2.log" || fail "relay did not start"
run $Q -j 127.0.0.1:$PL2 "${CA[@]}" --test handshake,http3 -t 10
expect_rc 0
expect_field '[.tests[].result] | join(",")' pass,pass
grep -q '^server 2 dropped 2$' "$T/lossy2.log" || fail "the relay did not drop the server's first two datagrams"
expect_field '.handshake_completed_us > 300000' true

case_ "loss: every datagram from the server dropped: a timeout, not a hang"
lossy $PL3 $P1 "" "$(seq -s, 1 200)" "$T/lossy3.log" || fail "relay did not start"
s=$(date +%s%N)
run $Q -j 127.0.0.1:$PL3 "${CA[@]}" -t 2
e=$((($(date +%s%N) - s) / 1000000))
expect_rc 1
expect_field .error timeout
[ "$e" -lt 4000 ] || fail "took $e ms with a 2 s timeout"
grep -q '^server [0-9]* dropped [1-9]' "$T/lossy3.log" || fail "the relay saw no server datagram"
fi

case_ "amplification: a normal server stays under 3x"
run $Q -j 127.0.0.1:$P1 "${CA[@]}" --test amplification
expect_rc 0
expect_field '.tests[0].result' pass
expect_field '.tests[0].details.ratio <= 3 and .tests[0].details.ratio > 0' true

case_ "amplification: 8-certificate chain, the server sends exactly 3x and stops"
run $Q -j 127.0.0.1:$P4 --ca "$T/chain/ca0.crt" --test amplification,handshake
expect_rc 0
expect_field .cert_chain_length 8
expect_field '.tests[] | select(.name=="amplification") | .details.received_bytes' 3600
expect_field '.tests[] | select(.name=="amplification") | .details.sent_bytes' 1200
expect_field '.tests[] | select(.name=="amplification") | .details.at_limit' true
expect_field '.tests[] | select(.name=="handshake") | .result' pass

case_ "unreachable port: exit 1, clear message, within the timeout"
s=$(date +%s%N)
run $Q 127.0.0.1:$PX --timeout 3
e=$((($(date +%s%N) - s) / 1000000))
expect_rc 1
expect_out 'unreachable: ICMP port unreachable'
[ "$e" -lt 3000 ] || fail "took $e ms"
run $Q -j 127.0.0.1:$PX --timeout 3 --test handshake
expect_field .error unreachable
expect_field '.tests[0].result' fail

case_ "no QUIC on the port: a UDP echo answers, the result is no_quic, exit 1"
python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.settimeout(30)
try:
    while True:
        d, a = s.recvfrom(2048)
        s.sendto(b"hello, not quic\n", a)
except socket.timeout:
    pass' $PN &
pids+=($!)
for _ in $(seq 50); do ss -Huln | grep -q "127\.0\.0\.1:$PN " && break; sleep 0.1; done  # python is slow to start under load
run $Q -j 127.0.0.1:$PN --timeout 2
expect_rc 1
expect_field .error no_quic

case_ "unresolvable name: exit 1"
run $Q -j no-such-host.invalid --timeout 2
expect_rc 1
expect_field .error resolve

case_ "batch: 200 targets, good and closed ports, -P 32, one record each and a summary"
: >"$T/targets"
for i in $(seq 100); do
    echo "127.0.0.1:$P1" >>"$T/targets"
    echo "127.0.0.1:$PX # closed" >>"$T/targets"
done
printf '\n# comment\n127.0.0.1:%s\n' $P2 >>"$T/targets"
s=$(date +%s%N)
run $Q -j --targets "$T/targets" -P 32 "${CA[@]}" --timeout 3
e=$((($(date +%s%N) - s) / 1000000))
expect_rc 1
n=$(jq -s '[.[] | select(.type=="quic_probe")] | length' "$OUT")
[ "$n" = 201 ] || fail "expected 201 records, got $n"
expect_field 'select(.type=="quic_probe_summary") | .ok' 101
expect_field 'select(.type=="quic_probe_summary") | .failed' 100
[ "$(jq -s '[.[] | select(.type=="quic_probe" and .error=="unreachable")] | length' "$OUT")" = 100 ] || fail "closed ports not unreachable"
[ "$e" -lt 15000 ] || fail "batch took $e ms"
run_stdin "$T/targets" $Q --targets - -P 4 "${CA[@]}" --timeout 3
expect_rc 1
expect_out '^summary: 201 targets, 101 ok, 100 failed'

case_ "default command: quic-probe HOST is quic-probe probe HOST"
run $Q -j 127.0.0.1:$P1 -k
expect_rc 0
run $Q -q probe -j 127.0.0.1:$P1 -k
expect_rc 0
expect_field .ok true

finish
