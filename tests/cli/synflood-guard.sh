#!/usr/bin/env bash
# synflood-guard detect on generated captures: normal traffic and a flash crowd (no alarm,
# exit 0), spoofed and single-source SYN floods over IPv4 and IPv6 (exit 1, the right
# flood and mitigation records), thresholds, stdin, truncated and bad input (exit 2);
# live commands without a running guard.
. "$(dirname "$0")/lib.sh"
GEN=$TBIN/synflood-gen-pcap
SFG=synflood-guard

$GEN "$T/normal.pcap" --flood none
$GEN "$T/spoofed.pcap" --flood spoofed --rate 5000
$GEN "$T/single.pcap" --flood single --rate 3000 --port 443
$GEN "$T/flash.pcap" --flood flash --rate 3000
$GEN "$T/spoofed6.pcap" --flood spoofed --rate 4000 --v6 --port 8443
$GEN "$T/small.pcap" --flood spoofed --rate 600

case_ "normal traffic: no flood, exit 0, a summary"
run $SFG -j detect --pcap "$T/normal.pcap"
expect_rc 0
expect_jsonl
[ "$(jq -s 'map(select(.type=="flood" or .type=="mitigation")) | length' "$OUT")" = 0 ] || fail "alarm on normal traffic"
jq -s -e 'map(select(.type=="summary"))[0] | .syn == 400 and .completed == 400 and .floods == 0
  and .flow_sample_rate == 1' "$OUT" >/dev/null || fail "summary"

case_ "a flash crowd (every handshake completes) is not a flood"
run $SFG -j detect --pcap "$T/flash.pcap"
expect_rc 0
jq -s -e 'map(select(.type=="summary"))[0].syn > 9000' "$OUT" >/dev/null || fail "flash crowd SYNs not counted"

case_ "spoofed SYN flood: exit 1, victim, port, spoofing signs, FlowSpec on the victim"
run $SFG -j detect --pcap "$T/spoofed.pcap"
expect_rc 1
expect_jsonl
jq -s -e 'map(select(.type=="flood")) | length == 1 and .[0].target == "destination" and .[0].dst == "203.0.113.10"
  and .[0].dst_port == 80 and .[0].spoofed and (.[0].spoofing_signs | index("many_sources")) != null
  and (.[0].spoofing_signs | index("ttl_spread")) != null
  and .[0].peak_syn_pps >= 4500 and .[0].distinct_sources > 13000 and .[0].completion_ratio < 0.1
  and .[0].half_open >= 14000 and .[0].start_s >= 3 and .[0].start_s <= 4 and .[0].duration_s <= 4' "$OUT" >/dev/null ||
    fail "flood record: $(grep '"flood"' "$OUT" | head -c 400)"
jq -s -e 'map(select(.type=="mitigation")) | length == 1 and .[0].action == "flowspec" and .[0].prefix == "203.0.113.10/32"
  and .[0].protocol == "tcp" and .[0].dst_port == 80 and .[0].tcp_flags == "syn&!ack" and .[0].rate_bytes_per_s == 0
  and (.[0] | has("source") | not) and .[0].reason == "syn_flood" and .[0].evidence.peak_syn_pps >= 4500' "$OUT" >/dev/null ||
    fail "mitigation record: $(grep '"mitigation"' "$OUT")"

case_ "text output names the flood and the rule"
run $SFG detect --pcap "$T/spoofed.pcap"
expect_rc 1
expect_out '^SYN flood on 203\.0\.113\.10 \(port 80\): peak [0-9]+ SYN/s.*spoofed'
expect_out '^mitigation: flowspec destination 203\.0\.113\.10/32 protocol tcp destination-port 80 tcp-flags syn&!ack rate 0'

case_ "single-source flood: a FlowSpec rule with the source; a source flood record"
run $SFG -j detect --pcap "$T/single.pcap"
expect_rc 1
jq -s -e 'map(select(.type=="flood" and .target=="source"))[0] | .src == "198.51.100.66" and .dst_port == 443' "$OUT" >/dev/null ||
    fail "no source flood"
jq -s -e 'map(select(.type=="flood" and .target=="destination"))[0] | (.spoofed | not) and .top_sources[0].src == "198.51.100.66"
  and .top_source_share > 0.9 and .top_prefixes[0].prefix == "198.51.100.0/24"' "$OUT" >/dev/null || fail "destination flood"
jq -s -e 'map(select(.type=="mitigation")) | length == 1 and .[0].source == "198.51.100.66/32" and .[0].dst_port == 443' "$OUT" >/dev/null ||
    fail "mitigation: $(grep mitigation "$OUT")"

case_ "--action rtbh: a /32 blackhole; auto switches to RTBH above --rtbh-bps"
run $SFG -j detect --pcap "$T/spoofed.pcap" --action rtbh --mitigation-duration 600
expect_rc 1
jq -s -e 'map(select(.type=="mitigation"))[0] | .action == "rtbh" and .prefix == "203.0.113.10/32" and .duration_s == 600
  and (has("dst_port") | not)' "$OUT" >/dev/null || fail "rtbh record"
run $SFG -j detect --pcap "$T/spoofed.pcap" --rtbh-bps 1000000
jq -s -e 'map(select(.type=="mitigation"))[0].action == "rtbh"' "$OUT" >/dev/null || fail "auto did not pick rtbh above 1 Mbit/s"

case_ "IPv6 spoofed flood: a /128 FlowSpec rule"
run $SFG -j detect --pcap "$T/spoofed6.pcap"
expect_rc 1
jq -s -e 'map(select(.type=="mitigation"))[0] | .prefix == "2001:db8::10/128" and .dst_port == 8443' "$OUT" >/dev/null ||
    fail "v6 mitigation: $(grep mitigation "$OUT")"

case_ "thresholds: a 600 SYN/s flood is below the default floor, above --floor-pps 300"
run $SFG -j detect --pcap "$T/small.pcap"
expect_rc 0
run $SFG -j detect --pcap "$T/small.pcap" --floor-pps 300
expect_rc 1
run $SFG -j detect --pcap "$T/spoofed.pcap" --baseline-pps 1000
expect_rc 0  # 8 x 1000 > 5000 SYN/s

case_ "--series: per-second counts of the victim"
run $SFG -j detect --pcap "$T/spoofed.pcap" --series
jq -s -e '[.[] | select(.type=="syn_second" and .dst=="203.0.113.10")] | length >= 10 and (map(.syn) | max) > 4500' "$OUT" >/dev/null ||
    fail "series"

case_ "stdin and --filter"
run_stdin "$T/spoofed.pcap" $SFG -j detect --pcap -
expect_rc 1
run $SFG -j detect --pcap "$T/spoofed.pcap" --filter 'not dst port 80'
expect_rc 0

case_ "the same records whichever way the capture is read (mapped file with look-ahead, stdin frame by frame)"
for c in spoofed single normal spoofed6; do
    run $SFG -j detect --pcap "$T/$c.pcap" --series
    cp "$OUT" "$T/$c.mapped"
    rc_mapped=$rc
    run_stdin "$T/$c.pcap" $SFG -j detect --pcap - --series
    [ "$rc" = "$rc_mapped" ] || fail "$c: exit $rc_mapped from the file, $rc from stdin"
    cmp -s "$OUT" "$T/$c.mapped" || fail "$c: records differ between file and stdin: $(diff "$T/$c.mapped" "$OUT" | head -c 600)"
done
jq -s -e 'map(select(.type=="flood")) | length >= 1' "$T/spoofed.mapped" >/dev/null || fail "no flood in the comparison"

case_ "bad input: truncated capture (exit 2, records still out), not a capture, missing file, bad options"
head -c 900000 "$T/spoofed.pcap" >"$T/cut.pcap"
run $SFG -j detect --pcap "$T/cut.pcap"
expect_rc 2
expect_err 'cut short'
expect_out '"type":"summary"'
echo "not a pcap" >"$T/text.pcap"
run $SFG detect --pcap "$T/text.pcap"
expect_usage_error $SFG
run $SFG detect --pcap "$T/missing.pcap"
expect_usage_error $SFG
run $SFG detect --pcap "$T/spoofed.pcap" --floor-pps 0
expect_usage_error $SFG
run $SFG detect --pcap "$T/spoofed.pcap" --action nuke
expect_usage_error $SFG
run $SFG detect --pcap "$T/spoofed.pcap" --filter 'dst port ('
expect_usage_error $SFG
run $SFG detect
expect_usage_error $SFG

case_ "live commands without a guard, bad prefixes: one line, exit 2"
run $SFG status -i sfg-none0
expect_usage_error $SFG
run $SFG stats -i sfg-none0
expect_usage_error $SFG
run $SFG block -i lo 10.0.0.1/8
expect_usage_error $SFG
run $SFG -c "$T/missing.toml" run -i lo
expect_usage_error $SFG
run $SFG ctl -s "$T/missing.sock" status
expect_usage_error $SFG
run $SFG ctl -s "$T/normal.pcap"
expect_usage_error $SFG
printf '[guard]\nmetrics = "nowhere"\n[[protect]]\nprefix = "203.0.113.0/24"\n' >"$T/badmetrics.toml"
run $SFG -c "$T/badmetrics.toml" run -i lo
expect_usage_error $SFG
expect_err 'metrics'
printf '[guard]\ncookie_options = "yes"\n' >"$T/badopt.toml"
run $SFG -c "$T/badopt.toml" run -i lo
expect_usage_error $SFG
expect_err 'badopt.toml:2'

case_ "run: config errors name FILE:LINE"
printf '[guard]\nfactor = 8\n[[protect]]\nprefix = "203.0.113.0/24"\nport = 99999\n' >"$T/bad.toml"
run $SFG -c "$T/bad.toml" run -i lo
expect_usage_error $SFG
expect_err 'bad.toml:5'
printf '[guard]\nurpf = "sideways"\n' >"$T/bad2.toml"
run $SFG -c "$T/bad2.toml" run -i lo
expect_usage_error $SFG
expect_err 'bad2.toml:2'

finish
