#!/usr/bin/env bash
# maglev-calc from the outside: every command, JSON output, composition, bad input.
. "$(dirname "$0")/lib.sh"
M=maglev-calc

case_ "table: text"
run $M table -b a,b,c
expect_rc 0
expect_out '^a +1 +2184[56] '
expect_out 'imbalance \(max/fair share\) 1\.0000'
expect_no_err

case_ "table: JSON Lines, weights"
run $M table -b a,b=2,c -j
expect_rc 0
expect_jsonl
[ "$(jq -r 'select(.type=="maglev_backend" and .backend=="b") | .entries' "$OUT")" = 32769 ] || fail "weight 2 gets half"
[ "$(jq -r 'select(.type=="maglev_table") | .size' "$OUT")" = 65537 ] || fail "size"

case_ "table: --dump covers every entry"
run $M table -b x,y -m 7 --dump
expect_rc 0
[ "$(wc -l <"$OUT")" = 7 ] || fail "7 lines"
expect_out '^0 [xy]$'

case_ "table: backends from a file and from stdin"
printf '# pool\nweb-1 1\nweb-2   3\n\nweb-3\n' >"$T/b.txt"
run $M table --backends "$T/b.txt" -j
expect_rc 0
[ "$(jq -r 'select(.backend=="web-2") | .weight' "$OUT")" = 3 ] || fail "weight from file"
run_stdin "$T/b.txt" $M table --backends - -j
expect_rc 0
[ "$(jq -r 'select(.type=="maglev_table") | .backends' "$OUT")" = 3 ] || fail "stdin backends"

case_ "table: same table as --dump through config file"
printf 'json = true\n[table]\nbackend-list = "a,b"\nsize = 7\ndump = true\n' >"$T/c.toml"
run $M -c "$T/c.toml" table
expect_rc 0
[ "$(wc -l <"$OUT")" = 7 ] || fail "config sets size 7 and dump"
expect_jsonl

case_ "examples/ work as documented"
cd "$SRC"
run $M -c examples/maglev-calc.toml table
expect_rc 0
expect_out '^10\.0\.1\.14 +2 +26215 '
run_stdin examples/flows.jsonl $M -c examples/maglev-calc.toml lookup -
cd - >/dev/null
expect_rc 0
[ "$(wc -l <"$OUT")" = 3 ] || fail "three example flows"
expect_out '^\[2001:db8::7\]:5555-\[2001:db8::10\]:443/udp -> 10\.0\.1\.1[1-4]$'

case_ "lookup: flow arguments, IPv4 and IPv6"
run $M lookup -b a,b,c 198.51.100.7:5555-203.0.113.10:443/tcp '[2001:db8::1]:5555-[2001:db8::2]:443/udp'
expect_rc 0
expect_out '^198\.51\.100\.7:5555-203\.0\.113\.10:443/tcp -> [abc]$'
expect_out '^\[2001:db8::1\]:5555-\[2001:db8::2\]:443/udp -> [abc]$'

case_ "lookup: JSON output pipes back into lookup -"
run $M lookup -j -b a,b,c 198.51.100.7:5555-203.0.113.10:443/tcp 10.0.0.1:1-10.0.0.2:80/tcp
expect_rc 0
expect_jsonl
cp "$OUT" "$T/flows.jsonl"
first=$(jq -r .backend "$T/flows.jsonl" | tr '\n' ' ')
run_stdin "$T/flows.jsonl" $M lookup -j -b a,b,c -
expect_rc 0
[ "$(jq -r .backend "$OUT" | tr '\n' ' ')" = "$first" ] || fail "same backends through the pipe"

case_ "lookup: the hash key changes the mapping, and is validated"
run $M lookup -j -b a,b,c,d,e,f,g,h --hash-key 00112233445566778899aabbccddeeff 198.51.100.7:5555-203.0.113.10:443/tcp
expect_rc 0
run $M lookup -b a,b --hash-key xyz 198.51.100.7:5555-203.0.113.10:443/tcp
expect_usage_error $M
expect_err 'hash-key'

case_ "lookup: separate-field flow records and other record types"
printf '%s\n' '{"type":"flow","src":"10.0.0.1","sport":1,"dst":"10.0.0.2","dport":80,"proto":"tcp"}' \
    '{"type":"mitigation","prefix":"10.0.0.0/24"}' '' >"$T/mixed.jsonl"
run_stdin "$T/mixed.jsonl" $M lookup -b a,b -
expect_rc 0
expect_out '^10\.0\.0\.1:1-10\.0\.0\.2:80/tcp -> '
expect_err 'ignored 1 records of other types'

case_ "lookup: garbage lines are counted, reported and exit 2; good lines still answered"
printf '%s\n' 'not json' '{"type":"flow","flow":"10.0.0.1:1-10.0.0.2:80/tcp"}' '[1,2]' \
    '{"type":"flow","src":"10.0.0.1"}' '{"type":"flow","flow":"bad"}' $'\xff\xfe{' >"$T/bad.jsonl"
run_stdin "$T/bad.jsonl" $M lookup -b a,b -
expect_rc 2
expect_out '^10\.0\.0\.1:1-10\.0\.0\.2:80/tcp -> '
expect_err '<stdin>:1: skipped: not JSON'
expect_err '<stdin>:3: skipped: not a JSON object'
expect_err '<stdin>:4: skipped: missing "dst" field'
expect_err '<stdin>:5: skipped: field "flow"'
expect_err 'skipped 5 bad lines of 6'

case_ "lookup: random bytes on stdin"
head -c 65536 /dev/urandom >"$T/random.bin"
run_stdin "$T/random.bin" $M lookup -b a,b -
expect_rc 2
expect_err 'bad lines'

case_ "lookup: malformed flow strings"
for f in 'bad' '1.2.3.4:5-6.7.8.9/tcp' '1.2.3.4:70000-6.7.8.9:1/tcp' '1.2.3.4:1-[::1]:1/tcp' '1.2.3.4:1-5.6.7.8:1/bogus' ''; do
    run $M lookup -b a,b "$f"
    expect_usage_error $M
    expect_err 'bad flow'
done

case_ "bad tables: non-prime, tiny, duplicates, weights, empty"
run $M table -b a,b -m 65536
expect_usage_error $M
expect_err 'not prime.*65521 and 65537'
run $M table -b a,b -m 3
expect_usage_error $M
expect_err 'out of range'
run $M table -b a,a
expect_usage_error $M
expect_err "duplicate backend name 'a'"
for w in 0 -1 x 1.5 99999999; do
    run $M table -b "a=$w,b"
    expect_usage_error $M
    expect_err 'weight'
done
run $M table
expect_usage_error $M
expect_err 'no backends given'
run $M table -b ','
expect_usage_error $M
printf '# nothing\n\n' >"$T/empty.txt"
run $M table --backends "$T/empty.txt"
expect_usage_error $M
expect_err 'no backends in the file'
printf 'a 1\nb 2 3\n' >"$T/badline.txt"
run $M table --backends "$T/badline.txt"
expect_usage_error $M
expect_err 'badline.txt:2: '
printf 'a\na\n' >"$T/dup.txt"
run $M table --backends "$T/dup.txt"
expect_usage_error $M
expect_err "dup.txt:2: duplicate backend name 'a'"
run $M table --backends "$T/missing.txt"
expect_usage_error $M
expect_err 'No such file'
run $M table -b a --backends "$T/b.txt"
expect_usage_error $M
expect_err 'not both'

case_ "diff: removing one backend"
run $M diff -b a,b,c,d --to a,b,c -j
expect_rc 0
expect_jsonl
share=$(jq -r 'select(.type=="maglev_diff") | .moved_share' "$OUT")
awk -v s="$share" 'BEGIN { exit !(s > 0.25 && s < 0.27) }' || fail "moved share $share should be just above 25%"
[ "$(jq -r 'select(.backend=="d") | .change' "$OUT")" = removed ] || fail "d removed"
run $M diff -b a,b
expect_usage_error $M
expect_err 'no new backend set'

case_ "pcap: per-backend counts add up"
"$TBIN/edge-gen-pcap" "$T/cap.pcap" --flows 500 --packets 5000 --seed 7 || fail "generator"
run $M pcap -b a,b,c --pcap "$T/cap.pcap" -j
expect_rc 0
expect_jsonl
[ "$(jq -r 'select(.type=="maglev_pcap") | .packets' "$OUT")" = 5000 ] || fail "5000 packets"
[ "$(jq -r 'select(.type=="maglev_pcap") | .flows' "$OUT")" = 500 ] || fail "500 flows"
[ "$(jq -s '[.[] | select(.type=="maglev_pcap_backend") | .packets] | add' "$OUT")" = 5000 ] || fail "sum"

case_ "pcap: worker threads give the same answer as one thread"
run $M pcap -b a,b,c --pcap "$T/cap.pcap" -j -t 1
cp "$OUT" "$T/t1.jsonl"
for t in 2 3; do
    run $M pcap -b a,b,c --pcap "$T/cap.pcap" -j -t $t
    expect_rc 0
    cmp -s "$OUT" "$T/t1.jsonl" || fail "-t $t differs from -t 1"
done

case_ "pcap: from stdin, with a filter"
run_stdin "$T/cap.pcap" $M pcap -b a,b,c --pcap - -f 'udp' -j
expect_rc 0
udp=$(jq -r 'select(.type=="maglev_pcap") | .packets' "$OUT")
[ "$udp" -gt 0 ] && [ "$udp" -lt 5000 ] || fail "filter keeps some packets ($udp)"
run $M pcap -b a --pcap "$T/cap.pcap" -f 'not a filter ((('
expect_usage_error $M
expect_err 'bad filter'

case_ "lookup --pcap agrees with lookup of the same flows"
run $M lookup -j -b a,b,c --pcap "$T/cap.pcap"
expect_rc 0
[ "$(wc -l <"$OUT")" = 500 ] || fail "one record per flow"
cp "$OUT" "$T/pcapflows.jsonl"
run_stdin "$T/pcapflows.jsonl" $M lookup -j -b a,b,c -
cmp -s <(jq -r .backend "$T/pcapflows.jsonl") <(jq -r .backend "$OUT") || fail "pcap and flow-record lookups differ"

case_ "diff --pcap: share of flows that move"
run $M diff -b a,b,c,d --to a,b,c --pcap "$T/cap.pcap" -j
expect_rc 0
moved=$(jq -r 'select(.type=="maglev_diff_pcap") | .flows_moved_share' "$OUT")
awk -v s="$moved" 'BEGIN { exit !(s > 0.15 && s < 0.35) }' || fail "about a quarter of flows move ($moved)"

case_ "bad captures: empty, not a capture, truncated, missing, directory"
: >"$T/empty.pcap"
run $M pcap -b a --pcap "$T/empty.pcap"
expect_usage_error $M
expect_err 'empty'
head -c 5000 /dev/urandom >"$T/random.pcap"
run $M pcap -b a --pcap "$T/random.pcap"
expect_usage_error $M
expect_err 'not a pcap or pcapng capture'
head -c 10 "$T/cap.pcap" >"$T/hdr.pcap"
run $M pcap -b a --pcap "$T/hdr.pcap"
expect_usage_error $M
expect_err 'truncated'
size=$(stat -c %s "$T/cap.pcap")
head -c $((size - 37)) "$T/cap.pcap" >"$T/cut.pcap"
run $M pcap -b a,b --pcap "$T/cut.pcap" -j
expect_rc 2
expect_err 'cut short after 4999 complete frames'
[ "$(jq -r 'select(.type=="maglev_pcap") | .packets' "$OUT")" = 4999 ] || fail "reports what was read"
run $M pcap -b a --pcap "$T/nope.pcap"
expect_usage_error $M
expect_err 'No such file'
run $M pcap -b a --pcap "$T"
expect_usage_error $M
expect_err 'is a directory'

case_ "bad captures: cut at every record boundary of a small capture"
"$TBIN/edge-gen-pcap" "$T/small.pcap" --flows 3 --packets 4 --seed 1
size=$(stat -c %s "$T/small.pcap")
for n in $(seq 0 3 "$size"); do
    head -c "$n" "$T/small.pcap" >"$T/cut.pcap"
    run $M pcap -b a --pcap "$T/cut.pcap"
    [ "$rc" = 0 ] || [ "$rc" = 2 ] || fail "cut at $n bytes: exit $rc"
    [ "$rc" -lt 128 ] || fail "crash at $n bytes"
done

case_ "unsupported link type"
printf '\xd4\xc3\xb2\xa1\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x00\x00\x69\x00\x00\x00' >"$T/wifi.pcap"
run $M pcap -b a --pcap "$T/wifi.pcap"
expect_usage_error $M
expect_err 'unsupported link type 105'

case_ "pcapng input"
if command -v editcap >/dev/null; then
    editcap -F pcapng "$T/cap.pcap" "$T/cap.pcapng"
    run $M pcap -b a,b,c --pcap "$T/cap.pcapng" -j
    expect_rc 0
    [ "$(jq -r 'select(.type=="maglev_pcap") | .packets' "$OUT")" = 5000 ] || fail "pcapng packets"
else
    fail "editcap (tshark) not installed: scripts/install-deps installs it"
fi

finish
