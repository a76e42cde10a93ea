#!/usr/bin/env bash
# quic-probe decode on synthetic captures (built by quic-probe-gen-pcap with the real
# packet protection; no root needed): every scenario, JSON and text, --packets,
# --keylog, filters and ports, bad input of every kind, and the pipe into maglev-calc.
# Real peers (gtlsserver/gtlsclient + tcpdump + tshark) are in quic-probe-decode-live.sh.
. "$(dirname "$0")/lib.sh"
Q=quic-probe
GEN=$TBIN/quic-probe-gen-pcap
[ -x "$GEN" ] || { echo "FAIL: $GEN missing (build target quic-probe-gen-pcap)"; exit 1; }
"$GEN" "$T/syn.pcap" --keylog "$T/syn.keys" || { echo "FAIL: generator"; exit 1; }
flows() { jq -c 'select(.type=="flow")' "$OUT"; }
conn() { jq -c --arg s "$1" 'select(.type=="flow" and .sni==$s)' "$OUT"; }
has() {  # has JQ-EXPR-ON-CONN SNI: the connection with this SNI satisfies the expression
    [ "$(conn "$2" | jq -r "$1")" = true ] || fail "connection $2: $1 (got $(conn "$2" | head -c 300))"
}

case_ "text: one block per connection, summary, skips on stderr"
run $Q decode --pcap "$T/syn.pcap"
expect_rc 0
expect_out '^#1 192\.0\.2\.2:40002 -> 203\.0\.113\.10:443 udp v1  sni=example\.com  alpn=alpn'
expect_out '^  original dcid: 8394c8f03e515708$'
expect_out '^  server cids: f067a5502a4262b5$'
expect_out 'retry: token 48 bytes, integrity tag ok'
expect_out 'version negotiation: server offers .*v1,v2'
expect_out '^#[0-9]+ \[2001:db8::1\]:40009 -> \[2001:db8::10\]:443 udp v1  sni=v6\.example'
expect_out 'udp v2-draft \(versions v1,v2-draft\)  sni=v2draft\.example'
expect_out 'use --keylog'
expect_out '^10 QUIC connections \(9 with a ClientHello\)'
expect_err 'skipped 1 UDP datagrams not QUIC, 3 datagrams on QUIC ports that do not parse as QUIC'
expect_err '1 QUIC packets failed to decrypt'

case_ "JSON: flow records with the QUIC fields, per scenario"
run $Q decode --pcap "$T/syn.pcap" -j
expect_rc 0
expect_jsonl
[ "$(flows | wc -l)" = 10 ] || fail "10 flow records"
# RFC 9001 A.2/A.3 packets, byte for byte as printed in the RFC.
has '.original_dcid=="8394c8f03e515708" and .server_cids==["f067a5502a4262b5"] and .alpn==["alpn"]' example.com
has '.flow=="192.0.2.2:40002-203.0.113.10:443/udp" and .proto=="udp" and .server_hello.cipher_suite=="TLS_AES_128_GCM_SHA256"' example.com
has '.client_hello.transport_params.initial_max_data==4611686018427387903 and .client_hello.cipher_suites==["TLS_AES_128_GCM_SHA256","TLS_AES_256_GCM_SHA384"]' example.com
has '.server_initial_us==250 and .initial_decrypted==2 and .decrypt_failed==0' example.com
# Coalesced server Initial+Handshake; Handshake/1-RTT not decrypted without a key log.
has '.server_datagrams==2 and .server_packets==3 and .client_packets==5 and .undecryptable==5 and .alpn_selected==null' basic.example
has '.server_initial_us==300 and .client_handshake_us==800 and .client_1rtt_us==850 and (.server_cids|length)==1' basic.example
has '.client_hello != null and .client_datagrams==5 and .initial_decrypted==4' split.example
has '.retry and .retry_tag_ok and .retry_token_bytes==48 and .retry_us==300 and (.server_cids|length)==2' retry.example
has '.version_negotiation and .versions==["grease(0x1a2a3a4a)","v1"] and .vn_versions==["grease(0x3a4a5a6a)","v1","v2"] and .vn_us==200' vn.example
has '.version=="v2" and .versions==["v2"] and .server_hello != null' v2.example
has '.version=="v2-draft" and .versions==["v1","v2-draft"] and .server_hello != null' v2draft.example
has '.src=="2001:db8::1" and .dst=="2001:db8::10" and .flow=="[2001:db8::1]:40009-[2001:db8::10]:443/udp"' v6.example
has '.dport==8443' port8443.example
[ "$(jq -c 'select(.type=="flow" and .sport==40023) | [.decrypt_failed, .handshake_seen, .sni]' "$OUT")" = '[1,true,null]' ] ||
    fail "the corrupt Initial is a connection with one decryption failure"
[ "$(jq -c 'select(.type=="quic_decode") | [.connections, .skipped_not_quic, .skipped_garbage, .decrypt_failed]' "$OUT")" = '[10,1,3,1]' ] ||
    fail "summary record counts"

case_ "--keylog: Handshake and 1-RTT decrypted, ALPN chosen, HANDSHAKE_DONE, NEW_CONNECTION_ID, close"
run $Q decode --pcap "$T/syn.pcap" -j --keylog "$T/syn.keys"
expect_rc 0
has '.keylog_found and .handshake_decrypted==2 and .onertt_decrypted==3 and .undecryptable==0 and .alpn_selected=="h3"' basic.example
has '.handshake_done_us==1250 and (.server_cids|length)==2 and .close.by=="client" and .close.reason=="bye" and .close.error_code==256' basic.example
has '.server_transport_params.original_destination_connection_id==.original_dcid' v2draft.example
has '.keylog_found==false and .undecryptable==0' example.com
expect_err 'key log .*syn\.keys has secrets for 8 of 9 connections'

case_ "--packets: per-packet records, coalesced packets marked"
run $Q decode --pcap "$T/syn.pcap" -j --packets --keylog "$T/syn.keys"
expect_rc 0
n=$(jq -c 'select(.type=="quic_packet")' "$OUT" | wc -l)
[ "$n" -gt 60 ] || fail "quic_packet records ($n)"
[ "$n" = "$(jq -r 'select(.type=="quic_decode") | .quic_packets' "$OUT")" ] || fail "one record per packet in the summary"
[ "$n" = "$(jq -s '[.[] | select(.type=="flow") | .client_packets + .server_packets] | add' "$OUT")" ] ||
    fail "packets per connection add up to the packet records"
[ "$(jq -c 'select(.type=="quic_packet" and .conn==1) | [.from, .packet_type, .version, .packet_number, .frames]' "$OUT" | head -1)" = \
    '["client","Initial","v1",2,["CRYPTO","PADDING"]]' ] || fail "RFC client Initial, packet number 2"
[ "$(jq -c 'select(.type=="quic_packet" and .index==1)' "$OUT" | wc -l)" -ge 9 ] || fail "coalesced packets have index 1"
run $Q decode --pcap "$T/syn.pcap" --packets
expect_out '^ +0\.000000 #1 c>s   Initial   v1 +dcid=8394c8f03e515708 scid=- 1200B pn=2 \[CRYPTO,PADDING\]$'
expect_out 's>c \+ Handshake'
expect_out 'Retry .*token=48B'

case_ "greased fixed bit: a coalesced 1-RTT packet whose protected first byte is 0x00 is not padding"
"$GEN" "$T/grease.pcap" --scenario greasebit --keylog "$T/grease.keys" || fail "generator greasebit"
run $Q decode --pcap "$T/grease.pcap" -j --packets --keylog "$T/grease.keys"
expect_rc 0
[ "$(jq -c 'select(.type=="quic_packet" and .from=="client" and .packet_type=="1-RTT" and .index==1) | [.decrypted, .frames]' "$OUT")" = \
    '[true,["STREAM"]]' ] || fail "the 1-RTT packet after the client's Handshake packet, decrypted"
has '.onertt_decrypted==3 and .decrypt_failed==0 and .client_packets==6' greasebit.example
[ "$(jq -r 'select(.type=="quic_decode") | .quic_packets' "$OUT")" = 9 ] || fail "9 QUIC packets"

case_ "big captures: sharded over threads, same records as one thread (--packets decodes on one)"
"$GEN" "$T/big.pcap" --scenario many --count 7000 --seed 5 || fail "generator many"
[ "$(stat -c %s "$T/big.pcap")" -ge $((16 << 20)) ] || fail "capture under the 16 MiB sharding threshold"
run $Q -v decode --pcap "$T/big.pcap" -j
expect_rc 0
cp "$OUT" "$T/big-sharded.jsonl"
! grep -q 'decoding on one thread' "$ERR" || fail "no CID crosses address pairs here: no fallback expected"
run $Q decode --pcap "$T/big.pcap" -j --packets
jq -c 'select(.type != "quic_packet")' "$OUT" >"$T/big-one.jsonl"
cmp -s "$T/big-sharded.jsonl" "$T/big-one.jsonl" || fail "sharded and one-thread records differ: $(diff "$T/big-sharded.jsonl" "$T/big-one.jsonl" | head -c 300)"
[ "$(jq -r 'select(.type=="flow") | .conn' "$T/big-sharded.jsonl" | head -3 | tr '\n' ' ')" = "1 2 3 " ] || fail "connections numbered in capture order"
# NAT rebinding to address pairs of other shards: found by CID only on one thread.
"$GEN" "$T/big-rebind.pcap" --scenario many --count 7000 --scenario rebind --seed 5 || fail "generator rebind"
run $Q -v decode --pcap "$T/big-rebind.pcap" -j
expect_rc 0
cp "$OUT" "$T/big-rebind.jsonl"
if [ "$(nproc)" -ge 2 ]; then expect_err 'connection IDs link address pairs of different shards: decoding on one thread'; fi
[ "$(jq -c 'select(.type=="flow" and (.sni // "" | startswith("rebind"))) | .path_changes' "$T/big-rebind.jsonl" | sort | uniq -c | awk '{print $1, $2}')" = "8 1" ] ||
    fail "8 rebinding connections, one packet on a new path each"
run $Q decode --pcap "$T/big-rebind.pcap" -j --packets
jq -c 'select(.type != "quic_packet")' "$OUT" | cmp -s - "$T/big-rebind.jsonl" || fail "rebind: records differ from one thread"

case_ "ports and heuristics: 8443 found by its long header, or only with --port"
run $Q decode --pcap "$T/syn.pcap" -j --no-heuristics
expect_rc 0
[ "$(conn port8443.example | wc -l)" = 0 ] || fail "--no-heuristics ignores port 8443"
run $Q decode --pcap "$T/syn.pcap" -j --no-heuristics --port 8443
[ "$(conn port8443.example | wc -l)" = 1 ] || fail "--port 8443"
run $Q decode --pcap "$T/syn.pcap" --port 70000
expect_usage_error $Q
run $Q decode --pcap "$T/syn.pcap" --port 0
expect_usage_error $Q

case_ "filter, stdin, pcapng, config file"
run $Q decode --pcap "$T/syn.pcap" -j -f 'host 192.0.2.1'
expect_rc 0
[ "$(flows | jq -r .sni)" = basic.example ] || fail "filter keeps one connection"
run $Q decode --pcap "$T/syn.pcap" -f 'no such filter'
expect_usage_error $Q
run_stdin "$T/syn.pcap" $Q decode --pcap - -j
expect_rc 0
[ "$(flows | wc -l)" = 10 ] || fail "stdin"
if command -v editcap >/dev/null; then
    editcap -F pcapng "$T/syn.pcap" "$T/syn.pcapng"
    run $Q decode --pcap "$T/syn.pcapng" -j
    expect_rc 0
    [ "$(flows | wc -l)" = 10 ] || fail "pcapng"
fi
printf 'json = true\n[decode]\npcap = "%s"\nkeylog = "%s"\n' "$T/syn.pcap" "$T/syn.keys" >"$T/q.toml"
run $Q -c "$T/q.toml" decode
expect_rc 0
has '.alpn_selected=="h3"' basic.example

case_ "bad input: truncated capture, not a capture, missing file, bad key log"
size=$(stat -c %s "$T/syn.pcap")
head -c $((size - 700)) "$T/syn.pcap" >"$T/cut.pcap"
run $Q decode --pcap "$T/cut.pcap" -j
expect_rc 2
expect_err 'cut short'
[ "$(flows | wc -l)" -ge 9 ] || fail "what was read is still reported"
head -c 20 "$T/syn.pcap" >"$T/hdr.pcap"
run $Q decode --pcap "$T/hdr.pcap"
expect_usage_error $Q
printf 'not a capture at all, just text\n' >"$T/text.pcap"
run $Q decode --pcap "$T/text.pcap"
expect_usage_error $Q
expect_err 'not a pcap or pcapng'
run $Q decode --pcap "$T/missing.pcap"
expect_usage_error $Q
run $Q decode
expect_usage_error $Q
run $Q decode --pcap "$T/syn.pcap" --keylog "$T/missing.keys"
expect_usage_error $Q
printf 'garbage\n' >"$T/bad.keys"
run $Q decode --pcap "$T/syn.pcap" --keylog "$T/bad.keys"
expect_usage_error $Q
expect_err 'no TLS 1.3 secrets'
{ cat "$T/syn.keys"; printf 'CLIENT_TRAFFIC_SECRET_0 zz 00\n'; } >"$T/mixed.keys"
run $Q decode --pcap "$T/syn.pcap" --keylog "$T/mixed.keys"
expect_rc 0
expect_err 'mixed\.keys:33: skipped 1 malformed key log line'

case_ "every byte of a capture flipped or cut: never a crash"
for cut in 100 1000 5000 20000; do
    head -c $cut "$T/syn.pcap" >"$T/c.pcap"
    run $Q decode --pcap "$T/c.pcap" --packets --keylog "$T/syn.keys"
    [ "$rc" = 0 ] || [ "$rc" = 2 ] || fail "cut at $cut: exit $rc"
done
python3 - "$T/syn.pcap" "$T/flip.pcap" <<'EOF'
import random, sys
b = bytearray(open(sys.argv[1], 'rb').read())
r = random.Random(5)
for _ in range(400):
    i = r.randrange(40, len(b))
    b[i] ^= 1 << r.randrange(8)
open(sys.argv[2], 'wb').write(b)
EOF
run $Q decode --pcap "$T/flip.pcap" --packets --keylog "$T/syn.keys"
[ "$rc" = 0 ] || [ "$rc" = 2 ] || fail "flipped bits: exit $rc"

case_ "decode -j | maglev-calc lookup -: same backends as a direct lookup and as the capture's packets"
"$GEN" "$T/many.pcap" --scenario many --count 300 --seed 9 || fail "generator"
run $Q decode --pcap "$T/many.pcap" -j
expect_rc 0
cp "$OUT" "$T/many.jsonl"
[ "$(jq -c 'select(.type=="flow")' "$T/many.jsonl" | wc -l)" = 300 ] || fail "300 connections"
run_stdin "$T/many.jsonl" maglev-calc lookup -b a,b,c -j -
expect_rc 0
jq -r '[.flow, .backend] | @tsv' "$OUT" | sort >"$T/piped.tsv"
[ "$(wc -l <"$T/piped.tsv")" = 300 ] || fail "300 lookups through the pipe"
expect_err 'ignored 1 records of other types'
# shellcheck disable=SC2046
run maglev-calc lookup -b a,b,c -j $(jq -r 'select(.type=="flow") | .flow' "$T/many.jsonl")
jq -r '[.flow, .backend] | @tsv' "$OUT" | sort >"$T/direct.tsv"
cmp -s "$T/piped.tsv" "$T/direct.tsv" || fail "piped and direct lookups differ"
run maglev-calc lookup -b a,b,c -j --pcap "$T/many.pcap" -f 'udp dst port 443'
jq -r '[.flow, .backend] | @tsv' "$OUT" | sort >"$T/pcap.tsv"
cmp -s "$T/piped.tsv" "$T/pcap.tsv" || fail "decode's flows are not the capture's client->server flows"
[ "$(cut -f2 "$T/piped.tsv" | sort -u | wc -l)" = 3 ] || fail "all three backends used"

finish
