#!/usr/bin/env bash
# quic-probe decode --fields: every field equals the same field of the full flow record
# (on every synthetic scenario, with and without a key log, sharded or not), although
# with header/SNI/ALPN fields only the client's Initials up to the ClientHello are
# decrypted; TSV in text mode; bad field lists are usage errors.
. "$(dirname "$0")/lib.sh"
Q=quic-probe
GEN=$TBIN/quic-probe-gen-pcap
[ -x "$GEN" ] || { echo "FAIL: $GEN missing (build target quic-probe-gen-pcap)"; exit 1; }
"$GEN" "$T/syn.pcap" --keylog "$T/syn.keys" || { echo "FAIL: generator"; exit 1; }
"$GEN" "$T/grease.pcap" --scenario greasebit --scenario rebind --scenario retry --keylog "$T/grease.keys" ||
    { echo "FAIL: generator"; exit 1; }

# The fields that need nothing beyond the client's ClientHello, and the two that need every
# Initial decrypted.
LITE=src,sport,dst,dport,proto,flow,conn,client,server,roles_known,handshake_seen,version,versions
LITE=$LITE,version_negotiation,vn_versions,retry,retry_token_bytes,retry_tag_ok,original_dcid,dcids,scids
LITE=$LITE,client_cids,server_cids,sni,alpn,alpn_selected,client_datagrams,client_packets,client_bytes
LITE=$LITE,server_datagrams,server_packets,server_bytes,client_bytes_unvalidated,server_bytes_unvalidated
LITE=$LITE,amplification,first_ts_us,duration_us,vn_us,retry_us,server_initial_us,server_handshake_us
LITE=$LITE,client_handshake_us,client_1rtt_us,server_1rtt_us,handshake_done_us,keylog_found
LITE=$LITE,handshake_decrypted,onertt_decrypted,zero_rtt_packets,undecryptable,path_changes
FULL=initial_decrypted,decrypt_failed

# same FIELDS CAPTURE [ARGS...]: --fields -j equals the full records cut to those fields.
same() {
    local fields=$1 cap=$2
    shift 2
    run $Q decode --pcap "$cap" -j "$@"
    [ "$rc" = 0 ] || [ "$rc" = 2 ] || fail "full decode of $cap: exit $rc"
    local proj
    proj="{type: \"quic_connection\"} + {$(echo "$fields" | sed 's/\([a-z0-9_]*\)/\1: .\1/g')}"
    jq -c "select(.type==\"flow\") | $proj" "$OUT" >"$T/want.jsonl"
    run $Q decode --pcap "$cap" -j --fields "$fields" "$@"
    [ "$rc" = 0 ] || [ "$rc" = 2 ] || fail "--fields on $cap: exit $rc"
    [ -s "$OUT" ] || fail "--fields on $cap: no output"
    cmp -s "$OUT" "$T/want.jsonl" || fail "--fields $fields on $cap $*: $(diff "$T/want.jsonl" "$OUT" | head -c 400)"
}

case_ "every field equals the full record's, on every scenario (client-Hello-only decryption)"
same "$LITE" "$T/syn.pcap"
same "$LITE" "$T/grease.pcap"
same "$LITE" "$T/syn.pcap" --no-heuristics --port 8443
same "$FULL,sni" "$T/syn.pcap"
same "$FULL,$LITE" "$T/grease.pcap"

case_ "with --keylog (everything decrypted): still the full record's values"
same "$LITE,$FULL" "$T/syn.pcap" --keylog "$T/syn.keys"
same "$LITE,$FULL" "$T/grease.pcap" --keylog "$T/grease.keys"

case_ "client-Hello-only mode really skips the server Initials"
run $Q decode --pcap "$T/syn.pcap" -j --fields sni,initial_decrypted
[ "$(jq -r 'select(.sni=="example.com") | .initial_decrypted' "$OUT")" = 2 ] || fail "asked for: both Initials decrypted"
# Counting the decryptions needs them: the same field list without it must not change sni.
run $Q decode --pcap "$T/syn.pcap" --fields conn,sni
expect_rc 0
expect_out '^1	example\.com$'
# The corrupt Initial: no ClientHello, so null (empty in text); its DCID still shown.
run $Q decode --pcap "$T/syn.pcap" -j --fields sport,sni,original_dcid
[ "$(jq -c 'select(.sport==40023) | [.sni, (.original_dcid | length > 0)]' "$OUT")" = '[null,true]' ] ||
    fail "corrupt Initial: sni null, original_dcid kept"

case_ "text: tab-separated like tshark -T fields, lists comma-joined, nulls empty, no summary"
run $Q decode --pcap "$T/syn.pcap" --fields original_dcid,sni,alpn,retry_tag_ok
expect_rc 0
[ "$(wc -l <"$OUT")" = 10 ] || fail "one line per connection, no summary ($(wc -l <"$OUT") lines)"
expect_out '^8394c8f03e515708	example\.com	alpn	$'
run $Q decode --pcap "$T/syn.pcap" -j
jq -r 'select(.type=="flow") | [.original_dcid // "", .sni // "", (.alpn | join(",")), (.retry_tag_ok // "" | tostring)] | @tsv' \
    "$OUT" >"$T/want.tsv"
run $Q decode --pcap "$T/syn.pcap" --fields original_dcid,sni,alpn,retry_tag_ok
cmp -s "$OUT" "$T/want.tsv" || fail "TSV differs from the JSON records: $(diff "$T/want.tsv" "$OUT" | head -c 300)"
expect_err 'skipped 1 UDP datagrams not QUIC'

case_ "config file: fields in [decode]"
printf '[decode]\npcap = "%s"\nfields = ["original_dcid", "sni"]\n' "$T/syn.pcap" >"$T/q.toml"
run $Q -c "$T/q.toml" decode
expect_rc 0
expect_out '^8394c8f03e515708	example\.com$'

case_ "big capture, sharded over threads: same as the full records"
"$GEN" "$T/big.pcap" --scenario many --count 7000 --seed 5 || fail "generator many"
same "original_dcid,sni,conn,flow,client_cids,server_cids,duration_us" "$T/big.pcap"
"$GEN" "$T/big-rebind.pcap" --scenario many --count 7000 --scenario rebind --seed 5 || fail "generator rebind"
same "original_dcid,sni,conn,path_changes,dcids" "$T/big-rebind.pcap"

case_ "bad field lists"
run $Q decode --pcap "$T/syn.pcap" --fields sni,nope
expect_usage_error $Q
expect_err "unknown field 'nope': choose from src,sport"
run $Q decode --pcap "$T/syn.pcap" --fields client_hello
expect_usage_error $Q
run $Q decode --pcap "$T/syn.pcap" --fields ''
expect_usage_error $Q
run $Q decode --pcap "$T/syn.pcap" --fields sni --packets
expect_usage_error $Q
expect_err '\-\-fields and --packets'

finish
