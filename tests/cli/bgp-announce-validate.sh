#!/usr/bin/env bash
# bgp-announce validate: RFC 6811 origin validation (valid / invalid / not found) with ROAs
# in rpki-client/Routinator JSON and CSV, and --monitor alerts (origin hijack, sub-prefix
# hijack, unexpected upstream, AS-path rules), each with evidence; exit codes; bad input.
. "$(dirname "$0")/lib.sh"

cat >"$T/roas.json" <<'EOF'
{"metadata":{"buildtime":"2026-11-30T00:00:00Z"},"roas":[
 {"asn":"AS65001","prefix":"192.0.2.0/24","maxLength":24,"ta":"test"},
 {"asn":65003,"prefix":"198.51.100.0/22","maxLength":23,"ta":"test"},
 {"asn":"AS65002","prefix":"2001:db8::/32","maxLength":48,"ta":"test"},
 {"asn":"AS0","prefix":"203.0.113.0/24","maxLength":32,"ta":"test"}
]}
EOF
cat >"$T/roas.csv" <<'EOF'
ASN,IP Prefix,Max Length,Trust Anchor
AS65001,192.0.2.0/24,24,test
AS65003,198.51.100.0/22,23,test
AS65002,2001:db8::/32,48,test
AS0,203.0.113.0/24,32,test
EOF
# routes as decode --routes prints them
r() { printf '{"type":"bgp_route","ts_us":1700000000000000,"source":"mrt","peer":"192.0.2.250","peer_as":%s,"action":"%s","prefix":"%s","as_path":"%s"}\n' "$@"; }
{
    r 65010 announce 192.0.2.0/24 "65010 65001"              # valid
    r 65010 announce 198.51.100.0/23 "65010 65003 65003"     # valid (prepended origin)
    r 65010 announce 198.51.100.0/24 "65010 65003"           # invalid: longer than maxLength
    r 65010 announce 198.51.101.0/24 "65010 65666"           # invalid: wrong origin
    r 65010 announce 203.0.113.0/24 "65010 65005"            # invalid: AS0
    r 65010 announce 192.0.2.0/24 "65010 {65001,65002}"      # invalid: AS_SET origin is NONE
    r 65010 announce 10.0.0.0/8 "65010 65009"                # not found
    r 65010 announce 2001:db8:1::/48 "65010 65002"           # valid
    r 65010 withdraw 192.0.2.0/24 ""                         # ignored
    echo '{"type":"bgp_session","state":"established"}'     # other types are skipped
} >"$T/routes.jsonl"

case_ "RFC 6811 states (JSON ROAs)"
run bgp-announce -j validate --roas "$T/roas.json" --all "$T/routes.jsonl"
expect_rc 1
expect_jsonl
st() { jq -r "select(.type==\"rov\" and .prefix==\"$1\" and .as_path==\"$2\") | .state + \"/\" + (.reason // \"\")" "$OUT"; }
[ "$(st 192.0.2.0/24 '65010 65001')" = "valid/" ] || fail "192.0.2.0/24 should be valid"
[ "$(st 198.51.100.0/23 '65010 65003 65003')" = "valid/" ] || fail "prepended origin should be valid"
[ "$(st 198.51.100.0/24 '65010 65003')" = "invalid/max_length" ] || fail "maxLength case"
[ "$(st 198.51.101.0/24 '65010 65666')" = "invalid/origin_as" ] || fail "wrong origin case"
[ "$(st 203.0.113.0/24 '65010 65005')" = "invalid/origin_as" ] || fail "AS0 case"
[ "$(st 192.0.2.0/24 '65010 {65001,65002}')" = "invalid/no_origin" ] || fail "AS_SET case"
[ "$(st 10.0.0.0/8 '65010 65009')" = "not_found/" ] || fail "not found case"
[ "$(st 2001:db8:1::/48 '65010 65002')" = "valid/" ] || fail "IPv6 valid case"
expect_out '"type":"rov_summary","routes":8,"roas":4,"valid":3,"invalid":4,"not_found":1'
expect_out '"state":"invalid","reason":"max_length".*"roas":\["AS65003 198.51.100.0/22 max 23"\]'

case_ "CSV ROAs give the same answers; default prints only invalids"
run bgp-announce -j validate --roas "$T/roas.csv" --all "$T/routes.jsonl"
cp "$OUT" "$T/json-roas"
run bgp-announce -j validate --roas "$T/roas.json" --all "$T/routes.jsonl"
cmp -s "$OUT" "$T/json-roas" || fail "CSV and JSON ROAs disagree"
run bgp-announce -j validate --roas "$T/roas.csv" "$T/routes.jsonl"
expect_rc 1
[ "$(jq -r 'select(.type=="rov") | .state' "$OUT" | sort -u)" = invalid ] || fail "default output should list invalids only"

case_ "stdin and text output"
run_stdin "$T/routes.jsonl" bgp-announce validate --roas "$T/roas.json"
expect_rc 1
expect_out '^invalid 198\.51\.100\.0/24 origin AS65003 \(max_length: AS65003 198\.51\.100\.0/22 max 23\)'

case_ "all valid: exit 0"
{ r 65010 announce 192.0.2.0/24 "65010 65001"; r 65010 announce 10.0.0.0/8 "65009"; } >"$T/ok.jsonl"
run bgp-announce -j validate --roas "$T/roas.json" "$T/ok.jsonl"
expect_rc 0
expect_out '"valid":1,"invalid":0,"not_found":1'

case_ "decode | validate"
python3 "$SRC/tests/support/bgpi_mrt.py" edge "$T/e"
bgp-announce -j decode --mrt "$T/e/all.mrt" --routes 2>/dev/null >"$T/dec.jsonl"
run bgp-announce -j validate --roas "$T/roas.json" --all "$T/dec.jsonl"
expect_rc 1
expect_out '"prefix":"2001:db8:1::/48","origin_as":65002,"state":"valid"'
expect_out '"prefix":"198.51.103.0/24","origin_as":4200000002,"state":"invalid"'
bgp-announce -j decode --mrt "$T/e/all.mrt" 2>/dev/null >"$T/msg.jsonl"
run bgp-announce -j validate --roas "$T/roas.json" --all "$T/msg.jsonl"
expect_rc 1
expect_out '"prefix":"198.51.121.0/24",.*"state":"not_found"'

# ---- monitor -------------------------------------------------------------------------------
cat >"$T/mon.toml" <<'EOF'
[[prefix]]
name = "web"
prefix = "192.0.2.0/24"
origins = [65001]
upstreams = [65010, "AS65020"]
more_specifics = false
forbidden_asns = [64496]
max_path_length = 4

[[prefix]]
prefix = "2001:db8:53::/48"
origins = ["AS65001"]
more_specifics = true
path_regex = "^650[0-9][0-9] "
EOF
{
    r 65010 announce 192.0.2.0/24 "65010 65001"                  # fine
    r 65010 announce 192.0.2.0/24 "65010 65666"                  # origin hijack
    r 65010 announce 192.0.2.128/25 "65010 65666"                # sub-prefix hijack (other origin)
    r 65010 announce 192.0.2.0/25 "65010 65001"                  # sub-prefix: more-specifics not allowed
    r 65030 announce 192.0.2.0/24 "65030 65031 65001 65001"      # unexpected upstream 65031
    r 65010 announce 192.0.2.0/24 "65010 64496 65020 65001"      # forbidden AS in path
    r 65010 announce 192.0.2.0/24 "65010 65011 65012 65020 65001" # path too long
    r 65010 announce 2001:db8:53::/64 "65010 65001"              # fine: more-specific allowed
    r 65010 announce 2001:db8:53::/48 "3356 65001"               # path regex violated
    r 65010 announce 198.51.100.0/24 "65010 65666"               # not monitored
} >"$T/mon.jsonl"

case_ "monitor: every alert class with its evidence"
run bgp-announce -j validate --monitor "$T/mon.toml" "$T/mon.jsonl"
expect_rc 1
expect_jsonl
al() { jq -r "select(.type==\"bgp_alert\" and .alert==\"$1\") | .prefix + \" \" + .as_path" "$OUT" | tr '\n' ';'; }
[ "$(al origin_hijack)" = "192.0.2.0/24 65010 65666;" ] || fail "origin hijack: $(al origin_hijack)"
[ "$(al sub_prefix_hijack)" = "192.0.2.128/25 65010 65666;192.0.2.0/25 65010 65001;" ] || fail "sub-prefix: $(al sub_prefix_hijack)"
[ "$(al unexpected_upstream)" = "192.0.2.0/24 65030 65031 65001 65001;" ] || fail "upstream: $(al unexpected_upstream)"
[ "$(al as_path_violation)" = "192.0.2.0/24 65010 64496 65020 65001;192.0.2.0/24 65010 65011 65012 65020 65001;2001:db8:53::/48 3356 65001;" ] ||
    fail "path rules: $(al as_path_violation)"
expect_out '"alert":"origin_hijack","prefix":"192.0.2.0/24","monitored":"192.0.2.0/24","name":"web","origin_as":65666,"expected_origins":\["65001"\]'
expect_out '"detail":"upstream AS65031 of origin AS65001 is not an allowed neighbour"'
expect_out '"detail":"path contains forbidden AS64496"'
expect_out '"rule":"[^"]*mon.toml:1'
expect_out '"alerts":7'

case_ "monitor and ROAs together; the example file loads"
run bgp-announce -j validate --monitor "$SRC/examples/bgp-monitor.toml" --roas "$T/roas.json" "$T/ok.jsonl"
expect_rc 0
expect_out '"alerts":0'

# ---- bad input -----------------------------------------------------------------------------------
case_ "bad ROA files"
printf 'AS65001,192.0.2.0/24,24\nAS65001,192.0.2.1/24,24\n' >"$T/bad1.csv"
run bgp-announce validate --roas "$T/bad1.csv" "$T/ok.jsonl"
expect_usage_error bgp-announce
expect_err 'bad1.csv:2: bad prefix'
printf '1,192.0.2.0/24,24\nASX,192.0.2.0/24,24\n' >"$T/bad2.csv"
run bgp-announce validate --roas "$T/bad2.csv" "$T/ok.jsonl"
expect_usage_error bgp-announce
expect_err 'bad2.csv:2: bad ASN'
printf 'AS65001,192.0.2.0/24,16\n' >"$T/bad3.csv"
run bgp-announce validate --roas "$T/bad3.csv" "$T/ok.jsonl"
expect_usage_error bgp-announce
expect_err 'bad3.csv:1: maxLength 16 outside 24..32'
echo '{"roas":[{"asn":"AS1","prefix":"192.0.2.0/24","maxLength":24},{"prefix":"10.0.0.0/8"}]}' >"$T/bad.json"
run bgp-announce validate --roas "$T/bad.json" "$T/ok.jsonl"
expect_usage_error bgp-announce
expect_err 'bad.json: roas\[1\]: missing "asn"'
echo '{"roas":[' >"$T/bad2.json"
run bgp-announce validate --roas "$T/bad2.json" "$T/ok.jsonl"
expect_usage_error bgp-announce
expect_err 'not valid JSON'
: >"$T/empty.csv"
run bgp-announce validate --roas "$T/empty.csv" "$T/ok.jsonl"
expect_usage_error bgp-announce
run bgp-announce validate --roas "$T/missing.json" "$T/ok.jsonl"
expect_usage_error bgp-announce

case_ "bad monitor files name FILE:LINE"
printf '[[prefix]]\nprefix = "192.0.2.0/24"\norigins = [65001]\nmore_specific = true\n' >"$T/m1.toml"
run bgp-announce validate --monitor "$T/m1.toml" "$T/ok.jsonl"
expect_usage_error bgp-announce
expect_err 'm1.toml:[0-9]+.*more_specific'
printf '[[prefix]]\nprefix = "192.0.2.0/24"\n\norigins = ["ASX"]\n' >"$T/m2.toml"
run bgp-announce validate --monitor "$T/m2.toml" "$T/ok.jsonl"
expect_usage_error bgp-announce
expect_err 'm2.toml:4'
printf '[[prefix]]\nprefix = "192.0.2.1/24"\norigins = [1]\n' >"$T/m3.toml"
run bgp-announce validate --monitor "$T/m3.toml" "$T/ok.jsonl"
expect_usage_error bgp-announce
expect_err 'm3.toml:[0-9]+'
printf '[[prefix]]\nprefix = "192.0.2.0/24"\norigins = [1]\npath_regex = "(("\n' >"$T/m4.toml"
run bgp-announce validate --monitor "$T/m4.toml" "$T/ok.jsonl"
expect_usage_error bgp-announce
expect_err 'path_regex'
printf 'prefix = [\n' >"$T/m5.toml"
run bgp-announce validate --monitor "$T/m5.toml" "$T/ok.jsonl"
expect_usage_error bgp-announce
expect_err 'm5.toml:[0-9]+'

case_ "garbage routes input"
printf 'not json\nalso not\n' >"$T/garbage.jsonl"
run bgp-announce validate --roas "$T/roas.json" "$T/garbage.jsonl"
expect_usage_error bgp-announce
expect_err 'garbage.jsonl:1'
{ cat "$T/ok.jsonl"; echo 'broken'; } >"$T/mixed.jsonl"
run bgp-announce -j validate --roas "$T/roas.json" "$T/mixed.jsonl"
expect_rc 0
expect_err '1 bad line'

case_ "usage"
run bgp-announce validate "$T/ok.jsonl"
expect_usage_error bgp-announce

finish
