#!/usr/bin/env bash
# bgp-announce decode on hand-built MRT dumps (tests/support/bgpi_mrt.py: one file per edge
# case) and a synthetic BGP capture: -m must equal `bgpdump -m` byte for byte, record by
# record; JSON Lines fields; gzip/bzip2/stdin; bad input. No root, no network.
. "$(dirname "$0")/lib.sh"

GEN="$SRC/tests/support/bgpi_mrt.py"
python3 "$GEN" edge "$T/e" || { echo "FAIL: generator"; exit 1; }
python3 "$GEN" bad "$T/b" || { echo "FAIL: generator"; exit 1; }
python3 "$GEN" pcap "$T/s.pcap" || { echo "FAIL: generator"; exit 1; }

HAVE_BGPDUMP=0
if command -v bgpdump >/dev/null; then HAVE_BGPDUMP=1
elif [ "${CI:-}" = true ]; then echo "FAIL: bgpdump missing under CI"; exit 1
else echo "note: bgpdump not installed: parity checks against it are skipped"; fi

# Each edge case alone, then all of them in one file: record-by-record parity with bgpdump.
for f in "$T"/e/*.mrt; do
    c=$(basename "$f" .mrt)
    case_ "-m parity: $c"
    run bgp-announce decode --mrt "$f" -m
    if [ "$c" = malformed ] || [ "$c" = all ]; then expect_rc 0; expect_err 'malformed AS_PATH'; else expect_rc 0; fi
    if [ $HAVE_BGPDUMP = 1 ]; then
        bgpdump -m "$f" 2>/dev/null >"$T/exp"
        cmp -s "$OUT" "$T/exp" || fail "differs from bgpdump -m: $(diff "$T/exp" "$OUT" | head -4)"
    fi
done

# Expected shapes, independent of bgpdump (so the test means something without it).
case_ "-m shapes"
run bgp-announce decode --mrt "$T/e/all.mrt" -m
expect_rc 0
expect_out '^BGP4MP\|1700000000\|W\|192\.0\.2\.1\|65001\|10\.0\.0\.0/24$'
expect_out '\|65001 65002 65003\|IGP\|192\.0\.2\.1\|200\|10\|65001:100 no-export no-advertise local-AS 65535:666 0:0\|NAG\|\|$'
expect_out '\|65001 65002 \{65003,65004,65005\}\|IGP\|'
expect_out '\|\(64512 64513\) \[64514,64515\] 65001 65002\|'
expect_out '\|198\.51\.103\.0/24\|65001 4200000001 4200000002\|'
expect_out '\|AG\|4200000009 192\.0\.2\.9\|$'
expect_out '\|EGP\|'
expect_out '\|192\.0\.3\.0/24\|65001\|INCOMPLETE\|'
expect_out '^BGP4MP_ET\|1700000011\.123456\|A\|'
expect_out '^BGP4MP_AP\|1700000010\|A\|192\.0\.2\.1\|65001\|198\.51\.109\.0/24\|2\|65001\|'
expect_out '^BGP4MP_LOCAL\|'
expect_out '^BGP4MP\|1700000012\|STATE\|2001:db8::1\|65001\|5\|6$'
expect_out '^TABLE_DUMP2\|1700000020\|B\|2001:db8::2\|4200000002\|2001:db8:10::/48\|4200000002 65030\|IGP\|2001:db8::2\|'
expect_out '^TABLE_DUMP2_AP\|'
expect_out '^TABLE_DUMP\|1700000030\|B\|'
expect_out '\|! Error !\|'
expect_out '\|192\.0\.2\.77\|-1\|-1294967296\|'
n=$(grep -c '|100\.[0-9]*\.[0-9]*\.0/24|' "$OUT")
[ "$n" = 1500 ] || fail "long message: $n of 1500 prefixes"
grep -q '\.\.\.|IGP|' "$OUT" || fail "long AS path not cut like bgpdump"

case_ "gzip, bzip2 and stdin give the same lines"
run bgp-announce decode --mrt "$T/e/all.mrt" -m
cp "$OUT" "$T/plain"
gzip -c "$T/e/all.mrt" >"$T/all.gz"
bzip2 -c "$T/e/all.mrt" >"$T/all.bz2"
cat "$T/all.gz" "$T/all.gz" >"$T/twice.gz"
for f in all.gz all.bz2; do
    run bgp-announce decode --mrt "$T/$f" -m
    expect_rc 0
    cmp -s "$OUT" "$T/plain" || fail "$f differs from the plain file"
done
run_stdin "$T/all.gz" bgp-announce decode --mrt - -m
cmp -s "$OUT" "$T/plain" || fail "stdin differs"
run bgp-announce decode --mrt "$T/twice.gz" -m
[ "$(wc -l <"$OUT")" = $(( $(wc -l <"$T/plain") * 2 )) ] || fail "concatenated gzip members not both read"

case_ "JSON Lines: one record per message"
run bgp-announce -j decode --mrt "$T/e/all.mrt"
expect_rc 0
expect_jsonl
expect_out '"type":"bgp_message".*"mrt_subtype":"MESSAGE_AS4".*"message":"update","withdrawn":\["10.0.0.0/24","10.0.1.0/24"\]'
expect_out '"as_path":"65001 4200000001 4200000002","origin_as":4200000002,"as4_path_merged":true'
expect_out '"message":"open","asn":65001,.*"add_path":\["ipv4-unicast:both"\]'
expect_out '"message":"notification","code":6,"subcode":2,.*"shutdown_message":"shutdown"'
expect_out '"message":"state_change","old_state":"open_confirm","new_state":"established"'
expect_out '"type":"mrt_peer_index".*"view":"bgpi"'
expect_out '"type":"bgp_rib".*"mrt_subtype":"RIB_IPV4_MULTICAST"'
expect_out '"announced":\[\{"prefix":"198.51.109.0/24","path_id":1\}'
expect_out '"unknown_attributes":\[\{"code":99,"flags":192,"value_hex":"deadbeef"\}\]'
expect_out '"large_communities":\["65001:1:2"\],"ext_communities":\["rt:65001:1"\]'
expect_out '"rfc7606":"treat_as_withdraw","warnings":\["malformed AS_PATH'
expect_out '"as_path":"\(64512 64513\) \(\{64514,64515\}\) 65001 65002"'
expect_out '"withdrawn":\[\],"announced":\[\],"end_of_rib":"ipv6-unicast"'
expect_out '"withdrawn":\[\],"announced":\[\],"end_of_rib":"ipv4-unicast"'
n=$(jq -r 'select(.type=="bgp_message") | .message' "$OUT" | sort | uniq -c | tr -s ' ' | tr '\n' ';')
case "$n" in *" 4 state_change;"*) ;; *) fail "state changes: $n" ;; esac
expect_err 'record [0-9]+: malformed AS_PATH'

case_ "JSON Lines: --routes, one record per prefix"
run bgp-announce -j decode --mrt "$T/e/all.mrt" --routes
expect_rc 0
expect_jsonl
n=$(jq -r 'select(.type=="bgp_route" and .action=="announce") | .prefix' "$OUT" | grep -c '^100\.')
[ "$n" = 1500 ] || fail "long message routes: $n"
expect_out '"action":"withdraw","prefix":"2001:db8:ff::/64"'
expect_out '"action":"rib","prefix":"198.51.100.0/24".*"as_path":"65001 65010","origin_as":65010'
expect_out '"action":"announce","prefix":"2001:db8:1::/48".*"next_hop":"2001:db8::1"'
jq -e 'select(.type!="bgp_route")' "$OUT" >/dev/null && fail "--routes printed other record types"

case_ "text output names the record type"
run bgp-announce decode --mrt "$T/e/basic.mrt"
expect_rc 0
expect_out '^bgp_message .*as_path=65001 65002 65003'

# ---- pcap: reassembly, retransmission, reordering, two sessions -------------------------------
case_ "pcap: messages across segments, reordered and retransmitted"
run bgp-announce -j decode --pcap "$T/s.pcap" --port 1790
expect_rc 0
expect_jsonl
n=$(jq -r 'select(.session==1) | .message' "$OUT" | tr '\n' ' ')
[ "$n" = "open open keepalive keepalive update update update update " ] || fail "session 1 messages: $n"
expect_out '"session":1,.*"announced":\["198.51.100.0/24","198.51.101.0/24"\].*"as_path":"65001 4200000005"'
expect_out '"session":1,.*"withdrawn":\["198.51.101.0/24"\]'
expect_out '"session":1,.*"as_path":"65001 \{65002,65003\}".*"origin":"incomplete"|"origin":"incomplete","as_path":"65001 \{65002,65003\}"'
# session 2: 2-octet AS (AS4_PATH merged) with ADD-PATH learnt from the OPENs
expect_out '"session":2,.*"announced":\[\{"prefix":"198.51.102.0/24","path_id":1\},\{"prefix":"198.51.102.0/24","path_id":2\}\].*"as_path":"65003 4200000007"'
expect_out '"session":2,.*"message":"notification"'
expect_no_err

case_ "pcap: -m lines"
run bgp-announce decode --pcap "$T/s.pcap" --port 1790 -m
expect_rc 0
expect_out '^BGP4MP_ET\|1700000000\.[0-9]{6}\|A\|127\.0\.0\.2\|65001\|198\.51\.100\.0/24\|65001 4200000005\|IGP\|192\.0\.2\.1\|0\|0\|65001:1\|NAG\|\|$'
expect_out '^BGP4MP_ET\|[0-9.]+\|W\|127\.0\.0\.2\|65001\|198\.51\.101\.0/24$'
expect_out '^BGP4MP_ET_AP\|[0-9.]+\|A\|127\.0\.0\.3\|65003\|198\.51\.102\.0/24\|2\|65003 4200000007\|'
[ "$(wc -l <"$OUT")" = 7 ] || fail "expected 7 lines, got $(wc -l <"$OUT")"

case_ "pcap: without --port only port 179 is BGP"
run bgp-announce -j decode --pcap "$T/s.pcap"
expect_rc 0
jq -e 'select(.session==2)' "$OUT" >/dev/null && fail "port 1790 decoded without --port"

case_ "pcap from stdin"
run_stdin "$T/s.pcap" bgp-announce decode --pcap - --port 1790 -m
expect_rc 0
[ "$(wc -l <"$OUT")" = 7 ] || fail "stdin pcap"

# ---- capture formats: read without libpcap (pcap/file_reader) -----------------------------------
# The same capture rewritten as pcapng (two sections, nanosecond and microsecond interfaces, a
# statistics block between packets, enhanced and obsolete packet blocks), as a nanosecond pcap
# and as a big-endian pcap: every one must decode exactly like the original.
cat >"$T/conv.py" <<'PY'
import struct, sys
src, kind, out = sys.argv[1], sys.argv[2], sys.argv[3]
d = open(src, 'rb').read()
magic, _, _, _, _, snap, lt = struct.unpack('<IHHiIII', d[:24])
assert magic == 0xa1b2c3d4
pk = []
o = 24
while o < len(d):
    s, us, cl, wl = struct.unpack('<IIII', d[o:o + 16])
    pk.append((s, us, d[o + 16:o + 16 + cl], wl))
    o += 16 + cl
def blk(t, body, e='<'):
    body += b'\0' * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(e + 'II', t, n) + body + struct.pack(e + 'I', n)
def shb(e='<'):
    return blk(0x0A0D0D0A, struct.pack(e + 'IHHq', 0x1A2B3C4D, 1, 0, -1), e)
def idb(ns, e='<'):
    opt = struct.pack(e + 'HHB3x', 9, 1, 9) if ns else b''
    return blk(1, struct.pack(e + 'HHI', lt, 0, snap) + opt + (struct.pack(e + 'HH', 0, 0) if opt else b''), e)
if kind == 'ng':
    w = shb() + idb(False) + idb(True)
    half = len(pk) // 2
    for i, (s, us, data, wl) in enumerate(pk):
        if i == half:  # a new section: interfaces start afresh
            w += shb() + idb(True)
        e = '<'
        if i < half and i % 3 == 1:  # obsolete packet block, interface 0 (microseconds)
            ts = s * 1000000 + us
            w += blk(2, struct.pack(e + 'HHIIII', 0, 0, ts >> 32, ts & 0xffffffff, len(data), wl) + data, e)
        else:
            iface = 1 if i < half else 0
            ts = (s * 1000000 + us) * 1000  # both are nanosecond interfaces here
            w += blk(6, struct.pack(e + 'IIIII', iface, ts >> 32, ts & 0xffffffff, len(data), wl) + data, e)
        if i == 2:
            w += blk(5, struct.pack(e + 'I', 0), e)  # interface statistics: skipped
elif kind == 'ns':
    w = struct.pack('<IHHiIII', 0xa1b23c4d, 2, 4, 0, 0, snap, lt)
    for s, us, data, wl in pk:
        w += struct.pack('<IIII', s, us * 1000, len(data), wl) + data
else:  # big-endian
    w = struct.pack('>IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, snap, lt)
    for s, us, data, wl in pk:
        w += struct.pack('>IIII', s, us, len(data), wl) + data
open(out, 'wb').write(w)
PY
for k in ng ns be; do python3 "$T/conv.py" "$T/s.pcap" $k "$T/s.$k" || fail "converter ($k)"; done
for k in ng ns be; do
    case_ "capture formats: $k decodes like the classic pcap"
    for m in -m -j; do
        if [ $m = -j ]; then
            run bgp-announce -j decode --pcap "$T/s.pcap" --port 1790
        else
            run bgp-announce decode --pcap "$T/s.pcap" --port 1790 -m
        fi
        cp "$OUT" "$T/ref.out"
        if [ $m = -j ]; then
            run bgp-announce -j decode --pcap "$T/s.$k" --port 1790
        else
            run bgp-announce decode --pcap "$T/s.$k" --port 1790 -m
        fi
        expect_rc 0
        expect_no_err
        cmp -s "$OUT" "$T/ref.out" || fail "$k $m differs: $(diff "$T/ref.out" "$OUT" | head -4)"
    done
    run_stdin "$T/s.$k" bgp-announce decode --pcap - --port 1790 -m
    expect_rc 0
    [ "$(wc -l <"$OUT")" = 7 ] || fail "$k from stdin: $(wc -l <"$OUT") lines"
done

case_ "capture formats: a pcapng cut short or with a corrupt block: what came before, exit 2"
n=$(stat -c %s "$T/s.ng")
head -c $((n - 50)) "$T/s.ng" >"$T/cut.ng"
run bgp-announce decode --pcap "$T/cut.ng" --port 1790 -m
expect_rc 2
expect_err 'cut short \(truncated pcapng dump file'
[ -s "$OUT" ] || fail "nothing decoded before the cut"
python3 - "$T/s.ng" "$T/bad.ng" <<'PY'
import sys
d = bytearray(open(sys.argv[1], 'rb').read())
d[-4] ^= 0x40  # the last block's trailing length no longer matches its header
open(sys.argv[2], 'wb').write(d)
PY
run bgp-announce decode --pcap "$T/bad.ng" --port 1790 -m
expect_rc 2
expect_err "header and trailer don't match"
head -c 20 "$T/s.ng" >"$T/short.ng"
run bgp-announce decode --pcap "$T/short.ng"
expect_usage_error bgp-announce
printf '\x0a\x0d\x0d\x0aXXXXXXXXXXXXXXXXXXXXXXXX' >"$T/garbage.ng"
run bgp-announce decode --pcap "$T/garbage.ng"
expect_usage_error bgp-announce
run_stdin /dev/null bgp-announce decode --pcap -
expect_usage_error bgp-announce

# ---- bad input ----------------------------------------------------------------------------------
case_ "pcap: UPDATEs packed across full segments decode as when sent one per segment"
# The same 3000 UPDATEs: split anywhere (headers included) across 1400-byte segments, and
# one per segment; the lines must agree but for the packet times.
python3 "$GEN" bench-pcap "$T/packed.pcap" 3000 packed && python3 "$GEN" bench-pcap "$T/single.pcap" 3000 single ||
    fail "generator"
run bgp-announce decode --pcap "$T/packed.pcap" -m
expect_rc 0
cut -d'|' -f3- "$OUT" >"$T/packed.routes"
run bgp-announce decode --pcap "$T/single.pcap" -m
expect_rc 0
cut -d'|' -f3- "$OUT" >"$T/single.routes"
[ "$(wc -l <"$T/single.routes")" = 3000 ] || fail "expected 3000 lines, got $(wc -l <"$T/single.routes")"
cmp -s "$T/packed.routes" "$T/single.routes" || fail "packed and single differ: $(diff "$T/single.routes" "$T/packed.routes" | head -4)"
run bgp-announce -j decode --pcap "$T/packed.pcap"
expect_rc 0
[ "$(grep -c '"message":"update"' "$OUT")" = 3000 ] || fail "JSON: not 3000 update records"

case_ "large output (written in 64 KiB blocks as it is formatted): in order, complete"
# 20000 UPDATEs make ~2.2 MB of -m: many partial writes with a remainder carried over. Line
# i must carry the generator's i-th prefix, to a file and through a pipe alike; -j and
# --routes too.
python3 "$GEN" bench-pcap "$T/big.pcap" 20000 packed || fail "generator"
run bgp-announce decode --pcap "$T/big.pcap" -m
expect_rc 0
expect_no_err
awk -F'|' '{ i = NR - 1; p = sprintf("%d.%d.%d.0/24", (i * 7) % 223 + 1, int(i / 256) % 256, i % 256)
             if ($6 != p) { print "line " NR ": " $6 " instead of " p; bad = 1; exit } }
           END { if (!bad && NR != 20000) print NR " lines instead of 20000" }' "$OUT" >"$T/big.bad"
[ -s "$T/big.bad" ] && fail "$(cat "$T/big.bad")"
cp "$OUT" "$T/big.m"
timeout 60 "$BIN/bgp-announce" decode --pcap "$T/big.pcap" -m </dev/null 2>"$ERR" | cat >"$T/big.pipe"
cmp -s "$T/big.m" "$T/big.pipe" || fail "through a pipe: differs from the file"
run bgp-announce -j decode --pcap "$T/big.pcap"
expect_rc 0
[ "$(grep -c '"message":"update"' "$OUT")" = 20000 ] || fail "JSON: not 20000 update records"
run bgp-announce -j decode --pcap "$T/big.pcap" --routes
expect_rc 0
grep -o '"prefix":"[^"]*"' "$OUT" | cut -d'"' -f4 >"$T/big.jp"
cut -d'|' -f6 "$T/big.m" | cmp -s - "$T/big.jp" || fail "--routes: prefixes differ from -m's"

case_ "-m lines made on several threads: the same bytes and warnings, in the same order, as one thread"
# From the 4096th message on, a capture's -m lines are made by worker threads; what changes
# a line (a new OPEN), warns (malformed MED, garbage in a stream) or needs the reassembly
# buffers (split, reordered, retransmitted segments) comes after that point in pool.pcap.
python3 "$GEN" pool-pcap "$T/pool.pcap" || fail "generator"
run bgp-announce decode --pcap "$T/pool.pcap" -m -t 1
expect_rc 0
cp "$OUT" "$T/pool.1"
cp "$ERR" "$T/pool.1.err"
[ "$(wc -l <"$T/pool.1")" = 12000 ] || fail "expected 12000 lines, got $(wc -l <"$T/pool.1")"
grep -q '^BGP4MP_ET|[0-9.]*|A|127\.0\.0\.2|65011|' "$T/pool.1" || fail "no lines from the peer's second OPEN (AS 65011)"
grep -q '^BGP4MP_ET|[0-9.]*|A|127\.0\.0\.3|65002|.*|65002 ' "$T/pool.1" || fail "no lines from the 2-octet session"
sed 's/^.*pool.pcap: //' "$T/pool.1.err" >"$T/pool.w"
printf '%s\n' "session 1 127.0.0.2:40001: malformed MULTI_EXIT_DISC attribute (length 3)" \
    "session 1 127.0.0.2:40001: malformed MULTI_EXIT_DISC attribute (length 3)" \
    "session 2: 127.0.0.3:40002: not at a BGP message boundary; skipping to the next marker" \
    "session 1 127.0.0.2:40001: malformed MULTI_EXIT_DISC attribute (length 3)" | cmp -s - "$T/pool.w" ||
    fail "warnings: $(cat "$T/pool.w")"
for t in 0 2 3 4; do
    run bgp-announce decode --pcap "$T/pool.pcap" -m -t "$t"
    expect_rc 0
    cmp -s "$OUT" "$T/pool.1" || fail "-t $t: lines differ from -t 1: $(diff "$T/pool.1" "$OUT" | head -4)"
    cmp -s "$ERR" "$T/pool.1.err" || fail "-t $t: warnings differ from -t 1: $(cat "$ERR")"
done
# From a pipe nothing stays mapped: every message is copied for the workers.
run_stdin "$T/pool.pcap" bgp-announce decode --pcap - -m -t 3
expect_rc 0
cmp -s "$OUT" "$T/pool.1" || fail "stdin: lines differ from the file's"
[ "$(grep -c 'warning' "$ERR")" = 4 ] || fail "stdin: expected 4 warnings: $(cat "$ERR")"
timeout 60 "$BIN/bgp-announce" decode --pcap "$T/pool.pcap" -m -t 3 </dev/null >/dev/full 2>"$ERR"
rc=$?
expect_rc 1
expect_err '^bgp-announce: cannot write the output: No space left on device$'
run bgp-announce decode --pcap "$T/pool.pcap" -m -t 65
expect_usage_error bgp-announce

case_ "write errors: a full disk or a closed pipe is exit 1 with the reason, small or large output"
for f in "$T/s.pcap" "$T/big.pcap"; do
    timeout 60 "$BIN/bgp-announce" decode --pcap "$f" --port 1790 -m </dev/null >/dev/full 2>"$ERR"
    rc=$?
    expect_rc 1
    expect_err '^bgp-announce: cannot write the output: No space left on device$'
    expect_err_lines 1
    timeout 60 "$BIN/bgp-announce" -j decode --pcap "$f" --port 1790 </dev/null >/dev/full 2>"$ERR"
    rc=$?
    expect_rc 1
    expect_err 'No space left on device'
done
timeout 60 "$BIN/bgp-announce" decode --mrt "$T/e/all.mrt" -m </dev/null >/dev/full 2>"$ERR"
rc=$?
expect_rc 1
expect_err '^bgp-announce: cannot write the output: No space left on device$'
# SIGPIPE ignored (as some supervisors leave it): EPIPE is an error too, not a silent exit 0.
(
    trap '' PIPE
    timeout 60 "$BIN/bgp-announce" decode --pcap "$T/big.pcap" -m </dev/null 2>"$ERR" | head -c 1000 >/dev/null
    echo "${PIPESTATUS[0]}" >"$T/pipe.rc"
)
rc=$(cat "$T/pipe.rc")
expect_rc 1
expect_err 'cannot write the output: Broken pipe'
# SIGPIPE at its default: killed by it, as any filter in a pipeline (when this shell was
# started with SIGPIPE ignored it cannot restore it: then the EPIPE error above).
timeout 60 "$BIN/bgp-announce" decode --pcap "$T/big.pcap" -m </dev/null 2>"$ERR" | head -c 1000 >/dev/null
rc=${PIPESTATUS[0]}
if [ "$rc" != 141 ]; then
    expect_rc 1
    expect_err 'cannot write the output: Broken pipe'
fi

case_ "truncated MRT: records before it kept, exit 2"
run bgp-announce decode --mrt "$T/b/truncated.mrt" -m
expect_rc 2
expect_err '^bgp-announce: .*truncated.mrt: truncated BGP4MP record .*after 3 complete records'
expect_err_lines 1
[ "$(wc -l <"$OUT")" = 8 ] || fail "lines before the cut were not kept"
run bgp-announce decode --mrt "$T/b/truncated_header.mrt" -j
expect_rc 2
expect_err 'truncated MRT header'
[ "$(wc -l <"$OUT")" = 3 ] || fail "records before the cut were not kept"

case_ "truncated gzip"
head -c 600 "$T/all.gz" >"$T/cut.gz"
run bgp-announce decode --mrt "$T/cut.gz" -m
expect_rc 2
expect_err 'compressed data cut short'

case_ "garbage and corrupt lengths"
run bgp-announce decode --mrt "$T/b/garbage.mrt"
expect_usage_error bgp-announce
expect_err 'not an MRT file'
run bgp-announce decode --mrt "$T/b/badlen.mrt" -m
expect_rc 2
expect_err 'corrupt MRT record at byte 396'
run bgp-announce decode --mrt "$T/s.pcap"
expect_usage_error bgp-announce
expect_err 'needs --pcap'
run bgp-announce decode --pcap "$T/e/all.mrt"
expect_usage_error bgp-announce

case_ "empty file: nothing, exit 0"
run bgp-announce decode --mrt "$T/b/empty.mrt" -m
expect_rc 0
expect_no_out

case_ "usage errors"
run bgp-announce decode
expect_usage_error bgp-announce
run bgp-announce decode --mrt "$T/e/all.mrt" --pcap "$T/s.pcap"
expect_usage_error bgp-announce
run bgp-announce decode --mrt "$T/nope.mrt"
expect_usage_error bgp-announce
expect_err 'nope.mrt'
run bgp-announce decode --mrt "$T/e/all.mrt" -m --routes
expect_usage_error bgp-announce

case_ "truncated pcap"
head -c 1500 "$T/s.pcap" >"$T/cut.pcap"
run bgp-announce decode --pcap "$T/cut.pcap" -j
expect_rc 2
expect_err 'cut short'

finish
