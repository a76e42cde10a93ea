#!/usr/bin/env bash
# quic-probe decode on real QUIC: gtlsserver/gtlsclient (ngtcp2 0.12) on 127.0.0.1,
# captured by tcpdump (root), with SSLKEYLOGFILE; compared field by field with
# tshark's dissection of the same capture. Plain v1, Retry (-V), compatible version
# negotiation to the v2 draft, and Version Negotiation from an unknown version.
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
[ "$(id -u)" = 0 ] || skip "needs root for tcpdump on lo"
for c in gtlsserver gtlsclient tcpdump tshark openssl ss; do
    command -v $c >/dev/null || skip "$c not installed (apt-get install ngtcp2-server ngtcp2-client tcpdump tshark)"
done

P1=14433 P2=14434 P3=14435  # plain, Retry, v2 draft preferred
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
mkdir -p "$T/htdocs"
echo hello >"$T/htdocs/index.html"

tcpdump -i lo -U --immediate-mode -w "$T/x.pcap" "udp and (port $P1 or port $P2 or port $P3)" 2>"$T/tcpdump.err" &
tcpdump_pid=$!
pids+=($tcpdump_pid)
gtlsserver 127.0.0.1 $P1 "$T/server.key" "$T/server.crt" -d "$T/htdocs" -q >/dev/null 2>&1 &
pids+=($!)
gtlsserver 127.0.0.1 $P2 "$T/server.key" "$T/server.crt" -d "$T/htdocs" -q -V >/dev/null 2>&1 &
pids+=($!)
gtlsserver 127.0.0.1 $P3 "$T/server.key" "$T/server.crt" -d "$T/htdocs" -q --preferred-versions=v2draft,v1 >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    grep -q 'listening on' "$T/tcpdump.err" && [ "$(ss -Huln | grep -cE "127\.0\.0\.1:($P1|$P2|$P3) ")" = 3 ] && break
    sleep 0.1
done
grep -q 'listening on' "$T/tcpdump.err" || { echo "FAIL: tcpdump did not start: $(cat "$T/tcpdump.err")"; exit 1; }

client() {  # client PORT [options]
    local port=$1
    shift
    SSLKEYLOGFILE="$T/keys.txt" timeout 10 gtlsclient 127.0.0.1 "$port" "https://localhost:$port/index.html" \
        --exit-on-all-streams-close -q "$@" >/dev/null 2>>"$T/client.err" || echo "client on $port failed" >>"$T/client.fail"
}
client $P1
client $P2
client $P3 --preferred-versions=v2draft,v1 --other-versions=v2draft,v1
client $P1 -v 0x1a2a3a4a --preferred-versions=v1  # unknown version first: Version Negotiation
sleep 0.3
kill -INT $tcpdump_pid
for _ in $(seq 50); do kill -0 $tcpdump_pid 2>/dev/null || break; sleep 0.1; done
[ ! -s "$T/client.fail" ] || fail "$(cat "$T/client.fail")"

flows() { jq -c 'select(.type=="flow")' "$OUT"; }
by_port() { jq -c --argjson p "$1" 'select(.type=="flow" and .dport==$p)' "$OUT"; }

case_ "live: every connection found and decrypted with the key log"
run $Q decode --pcap "$T/x.pcap" -j --keylog "$T/keys.txt" --port $P1,$P2,$P3
expect_rc 0
cp "$OUT" "$T/decode.jsonl"
# The client retries from a new socket after Version Negotiation: 5 UDP flows.
[ "$(flows | wc -l)" = 5 ] || fail "5 connections, got $(flows | wc -l)"
[ "$(flows | jq -r '[.sni, (.alpn|join(","))] | @tsv' | sort -u)" = "$(printf 'localhost\th3')" ] ||
    fail "SNI localhost, ALPN h3 in every ClientHello"
[ "$(flows | jq -r 'select(.server_hello != null) | .alpn_selected' | sort | uniq -c | awk '{print $1, $2}')" = "4 h3" ] ||
    fail "ALPN h3 chosen by the server in the 4 handshakes"
[ "$(flows | jq -r 'select(.server_hello != null) | [.decrypt_failed, .undecryptable, (.handshake_decrypted > 0), (.onertt_decrypted > 0), (.handshake_done_us != null), .close.by] | @tsv' | sort -u)" = \
    "$(printf '0\t0\ttrue\ttrue\ttrue\tclient')" ] || fail "every packet decrypted, handshake done, closed by the client"
[ "$(by_port $P2 | jq -r '[.retry, .retry_tag_ok, (.retry_token_bytes > 0), (.retry_us < .server_initial_us)] | @tsv')" = \
    "$(printf 'true\ttrue\ttrue\ttrue')" ] || fail "Retry on $P2"
[ "$(by_port $P3 | jq -c '[.versions, .version]')" = '[["v1","v2-draft"],"v2-draft"]' ] || fail "compatible negotiation to v2-draft on $P3"
# ngtcp2 protects its unknown-version Initial with draft-29's salt: its ClientHello is readable too.
[ "$(by_port $P1 | jq -c 'select(.version_negotiation) | [.versions, (.vn_versions | index("v1") != null), .sni, .server_hello]')" = \
    '[["grease(0x1a2a3a4a)"],true,"localhost",null]' ] || fail "Version Negotiation on $P1"
[ "$(by_port $P1 | jq -c 'select(.version_negotiation | not) | .versions' | sort -u)" = '["v1"]' ] || fail "v1 on $P1"
[ "$(flows | jq -r 'select(.server_hello != null) | (.server_initial_us > 0 and .client_handshake_us > .server_initial_us and .client_1rtt_us >= .client_handshake_us)' | sort -u)" = true ] ||
    fail "handshake timing in order"

case_ "live: heuristics find the connections on unlisted ports; without the key log, Initials still decode"
run $Q decode --pcap "$T/x.pcap" -j
expect_rc 0
[ "$(flows | jq -r 'select(.client_hello != null) | .sni' | sort | uniq -c | awk '{print $1, $2}')" = "5 localhost" ] ||
    fail "5 ClientHellos found by heuristics"
run $Q decode --pcap "$T/x.pcap" -j --no-heuristics
[ "$(flows | wc -l)" = 0 ] || fail "--no-heuristics and no --port: nothing"

case_ "live: same SNI, ALPN, DCID, SCID and version as tshark"
TS="tshark -r $T/x.pcap -o tls.keylog_file:$T/keys.txt"
for p in $P1 $P2 $P3; do TS="$TS -d udp.port==$p,quic"; done
# First ClientHello per client port: port, DCID, SCID, SNI, ALPN (tshark joins coalesced values with commas).
$TS -Y 'tls.handshake.type == 1' -T fields -e udp.srcport -e quic.dcid -e quic.scid \
    -e tls.handshake.extensions_server_name -e tls.handshake.extensions_alpn_str 2>/dev/null |
    awk -F'\t' '!seen[$1]++ { split($2, d, ","); split($3, s, ","); print $1 "\t" d[1] "\t" s[1] "\t" $4 "\t" $5 }' | sort >"$T/tshark-ch.tsv"
# After a Retry the ClientHello is sent again to the Retry's SCID: our original DCID is the first one.
jq -r 'select(.type=="flow" and .client_hello != null) | [.sport, .original_dcid, .client_cids[0], .sni, (.alpn|join(","))] | @tsv' \
    "$T/decode.jsonl" | sort >"$T/ours-ch.tsv"
# Every ClientHello tshark shows is ours, field for field. tshark 4.0 once showed none for
# one of the five connections (CI, under load; ours had it, and the five flows are checked
# above): one it misses is named and its capture kept, not failed on; it must show 4.
# kept FILE...: a directory with the capture, the key log and FILEs, to diagnose a mismatch.
kept() {
    local keep
    keep=$(mktemp -d /tmp/qp-live-mismatch.XXXXXX)
    cp "$T/x.pcap" "$T/keys.txt" "$@" "$keep/"
    echo "$keep"
}
ch_views=("$T/tshark-ch.tsv" "$T/ours-ch.tsv" "$T/decode.jsonl")
only_tshark=$(comm -23 "$T/tshark-ch.tsv" "$T/ours-ch.tsv")
[ -z "$only_tshark" ] || fail "ClientHello fields differ from tshark; capture kept in $(kept "${ch_views[@]}"): $(diff "$T/tshark-ch.tsv" "$T/ours-ch.tsv" | head -5)"
[ "$(wc -l <"$T/tshark-ch.tsv")" -ge 4 ] || fail "tshark found $(wc -l <"$T/tshark-ch.tsv") ClientHellos of 5; capture kept in $(kept "${ch_views[@]}")"
only_ours=$(comm -13 "$T/tshark-ch.tsv" "$T/ours-ch.tsv")
[ -z "$only_ours" ] || echo "note: tshark shows no ClientHello for $(echo "$only_ours" | cut -f1 | tr '\n' ' ')(ours: $only_ours); capture kept in $(kept "${ch_views[@]}")"
# The server's CID and the version it answered in: its first long header other than Retry and VN
# (plain header fields: tshark 4.0 cannot decrypt the v2 draft's Initials).
$TS -Y "(udp.srcport == $P1 or udp.srcport == $P2 or udp.srcport == $P3) and quic.version != 0 and not (quic.version == 1 and quic.long.packet_type == 3)" \
    -T fields -e udp.dstport -e quic.scid -e quic.version 2>/dev/null |
    awk -F'\t' '!seen[$1]++ { split($2, s, ","); split($3, v, ","); print $1 "\t" s[1] "\t" v[1] }' | sort >"$T/tshark-sh.tsv"
# server_cids ends with NEW_CONNECTION_ID CIDs: compare with the SCID of the server's first Initial instead.
jq -r 'select(.type=="flow" and (.server_cids | length) > 0) | [.sport, (if .retry then .server_cids[1] else .server_cids[0] end), .version] | @tsv' "$T/decode.jsonl" |
    sed 's/\tv1$/\t0x00000001/; s/\tv2-draft$/\t0x709a50c4/' | sort >"$T/ours-sh.tsv"
[ -s "$T/tshark-sh.tsv" ] || fail "tshark found no ServerHello"
cmp -s "$T/tshark-sh.tsv" "$T/ours-sh.tsv" || fail "ServerHello fields differ from tshark: $(diff "$T/tshark-sh.tsv" "$T/ours-sh.tsv" | head -5)"
# EncryptedExtensions (needs the key log on both sides): the ALPN the server chose.
$TS -Y 'tls.handshake.type == 8' -T fields -e udp.dstport -e tls.handshake.extensions_alpn_str 2>/dev/null |
    awk -F'\t' '!seen[$1]++' | sort >"$T/tshark-ee.tsv"
jq -r 'select(.type=="flow" and .alpn_selected != null and .version == "v1") | [.sport, .alpn_selected] | @tsv' "$T/decode.jsonl" | sort >"$T/ours-ee.tsv"
[ "$(wc -l <"$T/tshark-ee.tsv")" = 3 ] || fail "tshark decrypted 3 EncryptedExtensions (not the v2 draft's)"
cmp -s "$T/tshark-ee.tsv" "$T/ours-ee.tsv" || fail "chosen ALPN differs from tshark"

case_ "live: per-packet records agree with tshark's packet count (v1: tshark 4.0 misparses the v2 draft)"
run $Q decode --pcap "$T/x.pcap" -j --packets --port $P1,$P2,$P3 --keylog "$T/keys.txt"
# Per datagram, in capture order: "src dst count" from both (tshark lists the lengths
# of the coalesced packets of a datagram with commas).
jq -r --arg p ":$P3" 'select(.type=="quic_packet" and (.src | endswith($p) | not) and (.dst | endswith($p) | not))
    | [.ts_us, .src, .dst, .index] | @tsv' "$OUT" |
    awk -F'\t' '$4 == 0 { if (n) print k "\t" n; k = $2 "\t" $3; n = 0 } { n++ } END { if (n) print k "\t" n }' >"$T/ours-dg.tsv"
$TS -Y "quic and udp.port != $P3" -T fields -e ip.src -e udp.srcport -e ip.dst -e udp.dstport -e quic.packet_length 2>/dev/null |
    awk -F'\t' '{ print $1 ":" $2 "\t" $3 ":" $4 "\t" split($5, l, ",") }' >"$T/tshark-dg.tsv"
ours=$(awk -F'\t' '{ s += $3 } END { print s + 0 }' "$T/ours-dg.tsv")
theirs=$(awk -F'\t' '{ s += $3 } END { print s + 0 }' "$T/tshark-dg.tsv")
[ "$theirs" -gt 20 ] || fail "tshark found $theirs QUIC packets"
cmp -s "$T/ours-dg.tsv" "$T/tshark-dg.tsv" ||
    fail "QUIC packets per datagram differ (ours $ours, tshark $theirs); capture kept in $(kept "$T/ours-dg.tsv" "$T/tshark-dg.tsv" "$OUT"): $(diff "$T/tshark-dg.tsv" "$T/ours-dg.tsv" | head -6 | tr '\n' ' ')"
[ "$(jq -c 'select(.type=="quic_packet" and .decrypted == false and .packet_type != "Retry" and .packet_type != "VersionNegotiation" and .packet_type != "UnknownLong")' "$OUT" | wc -l)" = 0 ] ||
    fail "every protected packet decrypted"

# The benchmark's capture is made this way (tests/bench/quic-probe-decode): copies of a
# recorded connection, each with its own client address, CIDs, SNI and Initial keys.
case_ "replicated: copies of the recorded connections decode like them, each with its own CIDs and SNI"
REP=$TBIN/quic-probe-replicate-pcap
[ -x "$REP" ] || fail "$REP missing (build target quic-probe-replicate-pcap)"
"$REP" "$T/x.pcap" "$T/keys.txt" "$T/copies.pcap" --count 40 2>"$T/rep.err" || fail "replicate: $(cat "$T/rep.err")"
run $Q decode --pcap "$T/copies.pcap" -j --keylog "$T/keys.txt"
expect_rc 0
[ "$(flows | wc -l)" = 40 ] || fail "40 connections, got $(flows | wc -l)"
[ "$(flows | jq -r '.original_dcid' | sort -u | wc -l)" = 40 ] || fail "40 distinct original DCIDs"
[ "$(flows | jq -r '.sni' | sort -u | wc -l)" = 40 ] || fail "40 distinct server names"
[ "$(flows | jq -r '[.dport, .decrypt_failed, .undecryptable, (.handshake_decrypted > 0), (.onertt_decrypted > 0), .alpn_selected] | @tsv' | sort -u)" = \
    "$(printf '443\t0\t0\ttrue\ttrue\th3')" ] || fail "every copy decrypted whole with the recorded key log"
# Each copy has the shape of one of the recorded connections it can copy (all but the
# Retry one, which it skips and says so).
grep -q "skipping connection .*Retry" "$T/rep.err" || fail "the Retry connection is skipped with a word"
shape='select(.type=="flow") | [.client_packets, .server_packets, (.dcids | length), (.client_cids | length), (.server_cids | length)] | @tsv'
jq -r "select(.retry == false and .version_negotiation == false) | $shape" "$T/decode.jsonl" | sort -u >"$T/want-shapes"
flows | jq -r "$shape" | sort -u >"$T/copy-shapes"
[ -s "$T/copy-shapes" ] && [ -z "$(comm -23 "$T/copy-shapes" "$T/want-shapes")" ] ||
    fail "copies differ from the recorded connections: $(comm -23 "$T/copy-shapes" "$T/want-shapes" | head -3)"
# No CID is shared between copies (a shared one would link them into one connection).
[ "$(flows | jq -r '(.dcids + .scids + .client_cids + .server_cids) | unique | .[]' | sort | uniq -d | wc -l)" = 0 ] || fail "a CID appears in two copies"
run "$REP" "$T/x.pcap" /dev/null "$T/none.pcap" --count 2
expect_rc 1
expect_err "no secrets"
# Inputs and outputs it cannot use: a message and exit 2, not an abort.
run "$REP" "$T/missing.pcap" "$T/keys.txt" "$T/none.pcap"
expect_rc 2
expect_err "cannot open capture"
head -c 64 /dev/urandom >"$T/garbage.pcap"
run "$REP" "$T/garbage.pcap" "$T/keys.txt" "$T/none.pcap"
expect_rc 2
expect_err "not a pcap"
run "$REP" "$T/x.pcap" "$T/missing-keys.txt" "$T/none.pcap"
expect_rc 2
expect_err "cannot read key log"
run "$REP" "$T/x.pcap" "$T/keys.txt" "$T/no/such/dir/out.pcap"
expect_rc 2
expect_err "cannot write capture"

finish
