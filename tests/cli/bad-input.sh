#!/usr/bin/env bash
# The bad-input matrix (issue 11): every binary that reads outside input gets empty files,
# random bytes, captures cut at every header boundary, an unsupported link type, invalid
# UTF-8, huge values, missing files, directories, unreadable files, unknown interfaces and
# no privileges. Each case: exit 2 with "<tool>: ..." on stderr, never a crash or a hang.
# A capture cut after complete frames keeps the records of those frames and says how many.
. "$(dirname "$0")/lib.sh"

EX=$SRC/examples
F=$T/in
mkdir -p "$F"
"$TBIN/edge-gen-pcap" "$F/good.pcap" --flows 20 --packets 60 >/dev/null || { echo "FAIL: edge-gen-pcap"; exit 1; }
: >"$F/empty"
python3 - "$F" <<'EOF'
import random, struct, sys
d = sys.argv[1]
random.seed(11)
open(f"{d}/random", "wb").write(bytes(random.randrange(256) for _ in range(8192)))
cap = open(f"{d}/good.pcap", "rb").read()
# Cuts: inside the file header, inside the first record header, inside the first packet,
# and inside the last packet (after complete frames).
first_len = struct.unpack_from("<I", cap, 24 + 8)[0]
cuts = {"hdr1": 1, "hdr23": 23, "rec1": 25, "rec15": 24 + 15, "pkt1": 24 + 16 + 1,
        "pktend": 24 + 16 + first_len - 1, "last": len(cap) - 3}
for name, n in cuts.items():
    open(f"{d}/cut-{name}.pcap", "wb").write(cap[:n])
hdr = bytearray(cap[:24]); struct.pack_into("<I", hdr, 20, 147)  # LINKTYPE_USER0
open(f"{d}/linktype.pcap", "wb").write(bytes(hdr) + cap[24:])
open(f"{d}/badutf8.toml", "wb").write(b'name = "\xc3\x28"\n')
open(f"{d}/huge.toml", "wb").write(b"port = 99999999999999999999999\n")
open(f"{d}/badutf8.jsonl", "wb").write(b'{"src":"\xc3\x28"}\n')
EOF
mkdir "$F/adir"
# A file only root may read, in a directory anyone may enter (for the unprivileged cases).
PRIV=$(mktemp -d)
trap 'rm -rf "$T" "$PRIV"' EXIT
chmod 755 "$PRIV"
cp "$F/good.pcap" "$PRIV/secret.pcap"
cp "$EX/edge.toml" "$PRIV/secret.toml"
chmod 600 "$PRIV/secret.pcap" "$PRIV/secret.toml"

# One line on stderr that names the tool, exit 2.
expect_clean_error() {
    local tool=$1
    expect_rc 2
    [ -s "$ERR" ] || fail "no message on stderr"
    grep -qv "^$tool: " "$ERR" && fail "stderr has lines not starting with '$tool: '"
    grep -qiE "terminate called|segmentation|core dumped|sanitizer|assert" "$ERR" && fail "crash text on stderr"
}

# ---- capture readers -------------------------------------------------------------
readers=(
    "maglev-calc pcap -b $EX/pool.txt --pcap"
    "quic-probe decode --pcap"
    "synflood-guard detect --pcap"
)
# xdp-lb replay runs the BPF program: only as root.
[ "$(id -u)" = 0 ] && readers+=("xdp-lb replay -c $EX/xdp-lb.toml --pcap")
for r in "${readers[@]}"; do
    read -r -a cmd <<<"$r"
    tool=${cmd[0]}
    for f in empty random linktype; do
        case_ "$tool: capture $f"
        run "${cmd[@]}" "$F/$f"
        expect_clean_error "$tool"
        expect_no_out
    done
    case_ "$tool: capture missing"
    run "${cmd[@]}" "$F/nosuch.pcap"
    expect_clean_error "$tool"
    case_ "$tool: capture is a directory"
    run "${cmd[@]}" "$F/adir"
    expect_clean_error "$tool"
    for c in hdr1 hdr23 rec1 rec15 pkt1 pktend; do
        case_ "$tool: capture cut at $c"
        run "${cmd[@]}" "$F/cut-$c.pcap"
        expect_rc 2
        expect_err "$tool: .*(truncated|cut short|not a complete)"
    done
    case_ "$tool: capture cut inside the last packet keeps the complete frames"
    run "${cmd[@]}" "$F/cut-last.pcap"
    expect_rc 2
    expect_err "$tool: (warning: )?.*(truncated|cut short)"
    [ -s "$OUT" ] || [ "$tool" = quic-probe ] || fail "no records for the complete frames"
    case_ "$tool: garbage on stdin as a capture"
    run_stdin "$F/random" "${cmd[@]}" -
    expect_clean_error "$tool"
done

# ---- config files (-c) and stack files -----------------------------------------
configs=(
    "maglev-calc table -c"
    "cache-proxy check -c"
    "bgp-announce run -c"
    "synflood-guard detect --pcap $F/good.pcap -c"
    "edgectl validate"
)
for r in "${configs[@]}"; do
    read -r -a cmd <<<"$r"
    tool=${cmd[0]}
    for f in random badutf8.toml huge.toml; do
        case_ "$tool: config $f"
        run "${cmd[@]}" "$F/$f"
        expect_clean_error "$tool"
        expect_err "$F/$f:[0-9]+"
    done
    case_ "$tool: config missing"
    run "${cmd[@]}" "$F/nosuch.toml"
    expect_clean_error "$tool"
    case_ "$tool: config is a directory"
    run "${cmd[@]}" "$F/adir"
    expect_clean_error "$tool"
done

# ---- JSON Lines on stdin: a bad line is a counted skip, the rest still read ----------
case_ "maglev-calc lookup: invalid UTF-8 and garbage lines are counted skips"
cat "$F/badutf8.jsonl" "$EX/flows.jsonl" >"$F/mixed.jsonl"
good=$(grep -c . "$EX/flows.jsonl")
run_stdin "$F/mixed.jsonl" maglev-calc lookup -b "$EX/pool.txt" -
expect_rc 2
expect_err "<stdin>:1: skipped: not JSON: .*UTF-8"
expect_err "skipped 1 bad lines of $((good + 1))"
[ "$(grep -c . "$OUT")" = "$good" ] || fail "expected $good results, got $(grep -c . "$OUT")"
case_ "maglev-calc lookup: random bytes on stdin"
run_stdin "$F/random" maglev-calc lookup -b "$EX/pool.txt" -
expect_rc 2
expect_err "skipped [0-9]+ bad lines of [0-9]+"
expect_no_out

# ---- huge values -----------------------------------------------------------------------
case_ "maglev-calc: table size out of range"
run maglev-calc table -b "$EX/pool.txt" -m 99999999999999999999
expect_clean_error maglev-calc
case_ "xdp-lb bench: repeat out of range"
run xdp-lb bench --repeat 99999999999999999999
expect_clean_error xdp-lb

# ---- interfaces and privileges -------------------------------------------------------
for c in "xdp-lb status -i" "xdp-lb stats -i" "synflood-guard status -i" "synflood-guard stats -i"; do
    read -r -a cmd <<<"$c"
    case_ "${cmd[0]} ${cmd[1]}: unknown interface"
    run "${cmd[@]}" el-nosuch0
    expect_clean_error "${cmd[0]}"
    expect_err "no such interface"
done
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all)
    for c in "xdp-lb replay -c $EX/xdp-lb.toml --pcap $F/good.pcap" "xdp-lb run -i lo -c $EX/xdp-lb.toml" \
        "synflood-guard run -i lo -c $EX/synflood-guard.toml"; do
        read -r -a cmd <<<"$c"
        case_ "${cmd[0]} ${cmd[1]}: no privileges"
        run "${NOBODY[@]}" "$BIN/${cmd[0]}" "${cmd[@]:1}"
        expect_clean_error "${cmd[0]}"
        expect_err "needs root"
    done
    for c in "maglev-calc pcap -b $EX/pool.txt --pcap $PRIV/secret.pcap" "quic-probe decode --pcap $PRIV/secret.pcap" \
        "synflood-guard detect --pcap $PRIV/secret.pcap" "edgectl validate $PRIV/secret.toml"; do
        read -r -a cmd <<<"$c"
        case_ "${cmd[0]}: permission denied"
        run "${NOBODY[@]}" "$BIN/${cmd[0]}" "${cmd[@]:1}"
        expect_clean_error "${cmd[0]}"
        expect_err "Permission denied"
    done
else
    echo "note: not root: the no-privileges and permission-denied cases were not run"
fi

# ---- cache-proxy: a client that half-closes right after its requests (fuzz_cache_proxy) ----
# Request bytes and FIN in one edge: the answers come, then the proxy closes at once instead
# of at --client-timeout (it took the short read for "drained" and never saw the FIN).
if [ -x "$TBIN/cache-proxy-test-origin" ] && command -v python3 >/dev/null; then
    "$TBIN/cache-proxy-test-origin" 0 >"$T/origin.out" 2>&1 &
    OPID=$!
    trap 'kill $OPID $CPID 2>/dev/null; rm -rf "$T" "$PRIV"' EXIT
    for _ in $(seq 50); do grep -q '^port ' "$T/origin.out" && break; sleep 0.1; done
    oport=$(awk '/^port /{print $2}' "$T/origin.out")
    cache-proxy -l 127.0.0.1:18931 -o "127.0.0.1:$oport" --client-timeout 30 -t 1 2>"$T/cp.err" &
    CPID=$!
    case_ "cache-proxy: a half-closed client gets both answers and the connection closed within 3 s"
    # shellcheck disable=SC2016
    run python3 -c '
import socket, sys, time
for _ in range(100):
    try:
        s = socket.create_connection(("127.0.0.1", 18931)); break
    except OSError: time.sleep(0.1)
req = b"GET /hc?cc=max-age%3D60 HTTP/1.1\r\nHost: robust\r\n\r\n"
s.sendall(req + req); s.shutdown(socket.SHUT_WR)
t0 = time.time(); s.settimeout(20); got = b""
while True:
    d = s.recv(65536)
    if not d: break
    got += d
print(got.count(b"HTTP/1.1 200"), "answers", "closed after %.1f s" % (time.time() - t0))
'
    expect_rc 0
    expect_out '^2 answers closed after [0-2]\.[0-9] s'
    kill $CPID $OPID 2>/dev/null
    wait $CPID $OPID 2>/dev/null
fi

finish
