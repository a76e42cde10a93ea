#!/usr/bin/env bash
# synflood-guard bench (short): every case takes its path (the bench itself fails on a
# wrong verdict), one record per case with a positive ns/packet and a ratio to the null
# program; bad options are usage errors. Needs root (BPF_PROG_TEST_RUN, a namespace).
. "$(dirname "$0")/lib.sh"
SFG=synflood-guard

case_ "sfg-bench: bad options (no root needed)"
run $SFG bench --rounds 0
expect_usage_error $SFG
run $SFG bench --repeat 5
expect_usage_error $SFG

if [ "$(id -u)" != 0 ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: synflood-guard bench needs root and CI=true"; exit 1; fi
    finish >/dev/null
    echo "SKIP: synflood-guard bench needs root (BPF_PROG_TEST_RUN, network namespace)"
    exit 77
fi

case_ "sfg-bench: a short run reports every case"
run $SFG -j bench --repeat 2000 --rounds 1 --singles 20
expect_rc 0
expect_jsonl
n=$(jq -s '[.[] | select(.type=="guard_bench" and .ns_per_packet > 0 and .ratio_to_null > 0)] | length' "$OUT")
[ "$n" = 9 ] || fail "expected 9 bench records with ns and ratio, got $n"
for c in null non_syn_pass syn_pass cookie_ack forged_ack_drop deny_drop rate_drop null_single syn_cookie; do
    jq -s -e --arg c "$c" 'map(select(.case==$c)) | length == 1' "$OUT" >/dev/null || fail "no record for case $c"
done
jq -s -e 'map(select(.case=="syn_cookie"))[0] | .timing == "single" and .target_ratio == 10 and (.target_met | type) == "boolean"' \
    "$OUT" >/dev/null || fail "syn_cookie record"
jq -s -e 'map(select(.case=="null"))[0].ratio_to_null == 1' "$OUT" >/dev/null || fail "null ratio is not 1"

case_ "sfg-bench: text output"
run $SFG bench --repeat 2000 --rounds 1 --singles 20
expect_rc 0
expect_out '^syn_cookie +[0-9.]+ ns/packet'
expect_out 'deny_drop .*target <= 2x'

finish
