#!/usr/bin/env bash
# The composition issue 8 promises: for the same QUIC capture, the connections that
# `quic-probe decode -j | maglev-calc lookup -` maps to backends get the same backends
# when the capture goes through xdp-lb's real BPF program (`xdp-lb replay`).
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
    [ "${CI:-}" = true ] && { echo "FAIL: xdp-lb replay needs root (BPF_PROG_TEST_RUN) and CI=true"; exit 1; }
    echo "SKIP: xdp-lb replay needs root (BPF_PROG_TEST_RUN)"
    exit 77
fi

B=10.0.1.11,10.0.1.12,10.0.1.13
KEY=00112233445566778899aabbccddeeff
cat >"$T/lb.toml" <<CONF
[lb]
table_size = 65537
hash_key = "$KEY"
quic_server_id_bytes = 2

[[service]]
vip = "203.0.113.10"
port = 443
proto = "udp"
quic = true
[[service.backend]]
address = "10.0.1.11"
server_id = 0x0a01
[[service.backend]]
address = "10.0.1.12"
server_id = 0x0a02
[[service.backend]]
address = "10.0.1.13"
server_id = 0x0a03
CONF

case_ "decode | maglev-calc lookup and xdp-lb replay agree on every connection"
"$TBIN/quic-probe-gen-pcap" "$T/q.pcap" --scenario many --count 500 --seed 3 >/dev/null || fail "generator"
run quic-probe decode -j --pcap "$T/q.pcap"
expect_rc 0
cp "$OUT" "$T/decode.jsonl"
[ "$(jq -c 'select(.type=="flow")' "$T/decode.jsonl" | wc -l)" = 500 ] || fail "500 connections decoded"
run_stdin "$T/decode.jsonl" maglev-calc -j lookup -b "$B" --hash-key "$KEY" -
expect_rc 0
jq -r '"\(.flow) \(.backend)"' "$OUT" | sort >"$T/maglev.txt"
run xdp-lb -c "$T/lb.toml" -j replay --pcap "$T/q.pcap"
expect_rc 0
jq -r 'select(.type=="flow" and .verdict=="tx") | "\(.flow) \(.backend)"' "$OUT" | sort >"$T/xdp.txt"
[ "$(wc -l <"$T/xdp.txt")" = 500 ] || fail "500 client flows encapsulated ($(wc -l <"$T/xdp.txt"))"
cmp -s "$T/maglev.txt" "$T/xdp.txt" || fail "backends differ: $(diff "$T/maglev.txt" "$T/xdp.txt" | head -4)"
[ "$(cut -d' ' -f2 "$T/xdp.txt" | sort -u | wc -l)" = 3 ] || fail "all three backends used"

case_ "and the comparison can fail: another hash key gives other backends"
run_stdin "$T/decode.jsonl" maglev-calc -j lookup -b "$B" -
jq -r '"\(.flow) \(.backend)"' "$OUT" | sort >"$T/other.txt"
cmp -s "$T/other.txt" "$T/xdp.txt" && fail "comparison cannot tell hash keys apart"

finish
