#!/usr/bin/env bash
# cache-proxy disk tier (--disk-cache): objects evicted from a small memory tier are written
# to files, served again from them (same bytes, ranges too), survive a restart, obey the disk
# byte limit, are removed by PURGE; damaged files are dropped at start. Ports 18420-18424.
. "$(dirname "$0")/lib.sh"
ORIGIN_BIN=$TBIN/cache-proxy-test-origin
[ -x "$ORIGIN_BIN" ] || { echo "FAIL: $ORIGIN_BIN not built"; exit 1; }
command -v curl >/dev/null || { echo "SKIP: curl not installed"; [ "${CI:-}" = true ] && exit 1; exit 77; }

PP=18420 AP=18421
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
for p in $PP $AP; do
    (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && { echo "FAIL: port $p is already in use"; exit 1; }
done
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}
"$ORIGIN_BIN" 0 >"$T/origin.port" 2>"$T/origin.err" &
PIDS+=($!)
OP=""
for _ in $(seq 100); do
    OP=$(awk '{print $2}' "$T/origin.port" 2>/dev/null)
    [ -n "$OP" ] && break
    sleep 0.05
done
[ -n "$OP" ] || { echo "FAIL: origin did not start"; exit 1; }
DC=$T/disk
start_proxy() {  # memory 1 MiB, disk 3 MiB
    cache-proxy --listen 127.0.0.1:$PP --admin 127.0.0.1:$AP --origin 127.0.0.1:$OP -t 2 --cache-size 1M \
        --disk-cache "$DC" --disk-cache-size 3M "$@" >>"$T/proxy.out" 2>>"$T/proxy.err" &
    CP=$!
    PIDS+=($CP)
    wait_port $PP || { echo "FAIL: proxy did not start: $(cat "$T/proxy.err")"; exit 1; }
}
stop_proxy() {
    kill -TERM $CP
    wait $CP 2>/dev/null
    rc=$?
    [ $rc = 0 ] || fail "proxy exit code $rc after SIGTERM"
}
metric() { curl -s -m 5 "http://127.0.0.1:$AP/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
hits() { curl -s -m 5 "http://127.0.0.1:$OP/__hits$1"; }
eq() { [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"; }
H=$T/h
Bd=$T/b
get() {
    local path=$1
    shift
    code=$(curl -s -m 10 -D "$H" -o "$Bd" -w '%{http_code}' "$@" "http://127.0.0.1:$PP$path")
}
xc() { grep -i '^x-cache-status:' "$H" | cut -d: -f2 | tr -d ' \r'; }
U() { echo "/o$1?cc=max-age%3D600&size=200000"; }

case_ "a bad --disk-cache directory: one line, exit 2"
: >"$T/afile"
run cache-proxy --listen 127.0.0.1:$PP --origin 127.0.0.1:$OP --disk-cache "$T/afile/sub"
expect_usage_error cache-proxy
expect_err "disk-cache .*afile/sub"
run cache-proxy --origin 127.0.0.1:$OP --disk-cache "$DC" --disk-cache-size 10K check
expect_usage_error cache-proxy
expect_err "disk-cache-size"

case_ "objects evicted from memory are written to disk and served from there"
mkdir -p "$DC"
printf 'not a cache file' >"$DC/0123456789abcdef.obj"
printf 'half' >"$DC/0123456789abcdef.obj.tmp"
start_proxy
[ -e "$DC/0123456789abcdef.obj" ] && fail "a damaged file was kept at start"
[ -e "$DC/0123456789abcdef.obj.tmp" ] && fail "an interrupted write was kept at start"
for i in $(seq 1 12); do
    get "$(U $i)"
    cp "$Bd" "$T/first.$i"
done
sleep 0.5
w=$(metric cache_proxy_disk_cache_writes_total)
[ "${w:-0}" -ge 4 ] || fail "disk writes: $w (12 x 200 KB through a 1 MiB memory tier)"
n=$(ls "$DC" | grep -c '\.obj$')
[ "$n" -ge 4 ] || fail "files in the disk tier: $n"
for i in $(seq 1 12); do  # every one from memory or from disk, none from the origin again
    get "$(U $i)"
    eq "$code" 200 "object $i status"
    eq "$(xc)" HIT "object $i"
    cmp -s "$Bd" "$T/first.$i" || fail "object $i read back differs"
    eq "$(hits "$(U $i)")" 1 "origin requests for object $i"
done
dh=$(metric cache_proxy_disk_cache_hits_total)
[ "${dh:-0}" -ge 4 ] || fail "disk hits: $dh (at most 5 of 12 objects fit in memory)"
get "$(U 3)" -H "Range: bytes=199990-"
eq "$code" 206 "range on a disk object"
eq "$(cat "$Bd")" "$(tail -c 10 "$T/first.3")" "range bytes from a disk object"

case_ "the disk tier survives a restart"
stop_proxy
start_proxy
for i in $(seq 1 12); do  # all of them: what was in memory was written at SIGTERM
    get "$(U $i)"
    eq "$(xc)" HIT "object $i after a restart"
    cmp -s "$Bd" "$T/first.$i" || fail "object $i read back after a restart differs"
    eq "$(hits "$(U $i)")" 1 "origin requests for object $i after a restart"
done

case_ "PURGE removes objects from disk too"
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -X PURGE -H "Host: 127.0.0.1:$PP" "http://127.0.0.1:$AP$(U 5)")
eq "$code" 200 "purge of an object on disk"
get "$(U 5)"
eq "$(xc)" MISS "after purge"
eq "$(hits "$(U 5)")" 2 "origin requests after purge"

case_ "the disk byte limit holds"
for i in $(seq 20 45); do get "$(U $i)"; done
sleep 1
b=$(metric cache_proxy_disk_cache_bytes)
[ "${b:-0}" -le 3145728 ] || fail "disk bytes $b over the 3 MiB limit"
e=$(metric cache_proxy_disk_cache_evictions_total)
[ "${e:-0}" -ge 1 ] || fail "disk evictions: $e"
s=$(du -sb "$DC" | cut -f1)
[ "$s" -le $((3145728 + 65536)) ] || fail "the directory holds $s bytes"
get "$(U 45)"
eq "$(xc)" HIT "the newest object"
stop_proxy

finish
