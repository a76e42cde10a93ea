#!/usr/bin/env bash
# xdp-lb: configuration errors (exit 2, FILE:LINE), live commands without a balancer,
# and replay through the real BPF program: the same backend as maglev-calc for 10,000 flows.
. "$(dirname "$0")/lib.sh"

cat >"$T/lb.toml" <<'TOML'
[lb]
table_size = 65537
hash_key = "00112233445566778899aabbccddeeff"
[[service]]
vip = "203.0.113.10"
port = 80
proto = "tcp"
backends = ["10.0.1.11", "10.0.1.12", "10.0.1.13"]
[[service]]
vip = "203.0.113.10"
port = 443
proto = "tcp"
backends = ["10.0.1.11", "10.0.1.12", "10.0.1.13"]
[[service]]
vip = "203.0.113.10"
port = 443
proto = "udp"
backends = ["10.0.1.11", "10.0.1.12", "10.0.1.13"]
[[service]]
vip = "2001:db8::10"
port = 443
proto = "tcp"
backends = ["10.0.1.11", "10.0.1.12", "10.0.1.13"]
[[service]]
vip = "2001:db8::10"
port = 80
proto = "tcp"
backends = ["10.0.1.11", "10.0.1.12", "10.0.1.13"]
[[service]]
vip = "2001:db8::10"
port = 443
proto = "udp"
backends = ["10.0.1.11", "10.0.1.12", "10.0.1.13"]
TOML

bad() {  # bad NAME LINE-REGEX TOML...: a config error names the file and line, exit 2
    local name=$1 re=$2
    shift 2
    printf '%s\n' "$@" >"$T/$name.toml"
    run xdp-lb -c "$T/$name.toml" replay --pcap "$T/none.pcap"
    expect_usage_error xdp-lb
    expect_err "$name.toml:$re"
}

case_ "config errors: one line, FILE:LINE, exit 2"
svc=('[[service]]' 'vip = "203.0.113.10"' 'port = 80' 'backends = ["10.0.1.11"]')
bad prime '2: .*table_size: 65536 is not prime' '[lb]' 'table_size = 65536'
bad key '2: .*hash_key' '[lb]' 'hash_key = "xyz"'
bad lbkey '2: lb.tablesize: unknown key' '[lb]' 'tablesize = 7'
bad overlap '6: .*defined twice \(overlapping VIPs\)' "${svc[@]}" "${svc[@]}"
bad quic '4: .*quic.*UDP' '[[service]]' 'vip = "203.0.113.10"' 'port = 443' 'quic = true' 'backends = ["10.0.1.11"]'
bad addr '4: .*bad backend address' "${svc[@]:0:3}" 'backends = ["10.0.1.300"]'
bad vip '2: .*bad address' '[[service]]' 'vip = "203.0.113"' 'port = 80' 'backends = ["10.0.1.11"]'
bad dup '4: .*listed twice' "${svc[@]:0:3}" 'backends = ["10.0.1.11", "10.0.1.11"]'
bad weight '4: .*bad weight' "${svc[@]:0:3}" 'backends = ["10.0.1.11=x"]'
bad proto '4: .*expected "tcp" or "udp"' "${svc[@]:0:3}" 'proto = "sctp"' 'backends = ["10.0.1.11"]'
bad port '3: .*port' '[[service]]' 'vip = "203.0.113.10"' 'port = 70000' 'backends = ["10.0.1.11"]'
bad nobackend '1: .*at least one backend' '[[service]]' 'vip = "203.0.113.10"' 'port = 80'
bad sid '7: .*server_id: 70000 does not fit' "${svc[@]:0:3}" 'proto = "udp"' 'quic = true' '[[service.backend]]' 'server_id = 70000' 'address = "10.0.1.11"'
bad mac '5: .*MAC' "${svc[@]:0:3}" '[[service.backend]]' 'mac = "02:00"' 'address = "10.0.1.11"'
bad src6 '2: .*length 96..128' '[lb]' 'encap_source_v6 = "fd00::/64"'
bad daisy '5: .*daisy_chain.*tcp' "${svc[@]:0:3}" 'proto = "udp"' 'daisy_chain = true' 'backends = ["10.0.1.11"]'
bad daisybool '4: .*daisy_chain' "${svc[@]:0:3}" 'daisy_chain = "yes"' 'backends = ["10.0.1.11"]'

case_ "no config, no services"
run xdp-lb replay --pcap "$T/none.pcap"
expect_usage_error xdp-lb
expect_err 'no configuration: give -c'
printf '[lb]\ntable_size = 7\n' >"$T/empty.toml"
run xdp-lb -c "$T/empty.toml" replay --pcap "$T/none.pcap"
expect_usage_error xdp-lb
expect_err 'no \[\[service\]\]'

case_ "unknown interface and no running balancer: exit 2"
run xdp-lb status -i xlb-nosuch0
expect_usage_error xdp-lb
expect_err 'xlb-nosuch0'
run xdp-lb stats -i lo
expect_usage_error xdp-lb
expect_err 'no xdp-lb running on lo'
run xdp-lb -c "$T/lb.toml" run -i xlb-nosuch0
expect_usage_error xdp-lb
expect_err 'cannot use interface xlb-nosuch0: no such interface'
run xdp-lb decap -i xlb-nosuch0
expect_usage_error xdp-lb
run xdp-lb status
expect_usage_error xdp-lb

if [ "$(id -u)" != 0 ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: replay needs root (BPF_PROG_TEST_RUN) and CI=true"; exit 1; fi
    finish >/dev/null
    echo "SKIP: replay needs root (BPF_PROG_TEST_RUN); config checks passed"
    exit 77
fi

case_ "replay: missing and truncated captures"
run xdp-lb -c "$T/lb.toml" replay --pcap "$T/none.pcap"
expect_usage_error xdp-lb
"$TBIN/edge-gen-pcap" "$T/small.pcap" --flows 20 --packets 40 --ipv6-share 30 >/dev/null
head -c 1000 "$T/small.pcap" >"$T/cut.pcap"
run xdp-lb -c "$T/lb.toml" replay --pcap "$T/cut.pcap"
expect_rc 2

case_ "replay: per-flow and per-packet records, a summary, output pcap"
run xdp-lb -c "$T/lb.toml" -j replay --pcap "$T/small.pcap" --out "$T/out.pcap"
expect_rc 0
expect_jsonl
[ "$(jq -c 'select(.type=="flow")' "$OUT" | wc -l)" = 20 ] || fail "expected 20 flow records"
expect_out '"type":"replay_summary","frames":40,"flows":20'
jq -s -e 'map(select(.type=="flow")) | all(.verdict=="tx" and (.backend|test("^10\\.0\\.1\\.1[123]$")) and .out_bytes == .bytes + 20)' "$OUT" >/dev/null || fail "flows not encapsulated to a backend"
[ -s "$T/out.pcap" ] || fail "no output pcap"
run xdp-lb -c "$T/lb.toml" -j replay --pcap "$T/out.pcap"
expect_rc 0
expect_out '"verdicts":\{"pass":40\}'   # encapsulated packets are not for a VIP: the LB passes them
run xdp-lb -c "$T/lb.toml" -j replay --pcap "$T/small.pcap" --per-packet
[ "$(jq -c 'select(.type=="flow")' "$OUT" | wc -l)" = 40 ] || fail "expected 40 packet records"
run xdp-lb -c "$T/lb.toml" replay --pcap "$T/small.pcap"
expect_out '^40 frames, 20 flows: tx 40'

case_ "replay through the BPF program and maglev-calc lookup pick the same backend for 10,000 flows"
"$TBIN/edge-gen-pcap" "$T/big.pcap" --flows 10000 --packets 10000 --ipv6-share 20 --seed 7 >/dev/null
run xdp-lb -c "$T/lb.toml" -j replay --pcap "$T/big.pcap"
expect_rc 0
jq -r 'select(.type=="flow") | "\(.flow) \(.backend)"' "$OUT" | sort >"$T/xdp.txt"
run maglev-calc -j lookup --pcap "$T/big.pcap" -b 10.0.1.11,10.0.1.12,10.0.1.13 -m 65537 --hash-key 00112233445566778899aabbccddeeff
expect_rc 0
jq -r '"\(.flow) \(.backend)"' "$OUT" | sort >"$T/maglev.txt"
n=$(wc -l <"$T/xdp.txt")
[ "$n" -ge 9900 ] || fail "only $n flows replayed"
cmp -s "$T/xdp.txt" "$T/maglev.txt" || fail "xdp-lb and maglev-calc disagree: $(diff "$T/xdp.txt" "$T/maglev.txt" | head -3)"
# ...and the comparison can fail: another hash key moves flows.
run maglev-calc -j lookup --pcap "$T/big.pcap" -b 10.0.1.11,10.0.1.12,10.0.1.13 -m 65537
jq -r '"\(.flow) \(.backend)"' "$OUT" | sort >"$T/other.txt"
cmp -s "$T/xdp.txt" "$T/other.txt" && fail "the comparison cannot tell hash keys apart"

finish
