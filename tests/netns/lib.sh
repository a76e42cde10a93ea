# Shared set-up for the netns tier; sourced after tests/cli/lib.sh (which gives $BIN, $T,
# fail and the case helpers).
#
#   netns_require TOOL...   root and every TOOL on PATH, or SKIP (exit 77) -- FAIL instead
#                           under CI=true, where a skipped tier would hide a regression.
#   netns_start NS...       fresh namespaces NS (old ones of the same name deleted), an
#                           empty PIDS array, x NS CMD..., and an EXIT trap that runs
#                           netns_cleanup_hook (if the test defines one), stops PIDS,
#                           deletes the namespaces and $T.
#   netns_link NS1 IF1 ADDR1 NS2 IF2 ADDR2
#                           a veth pair, addresses (CIDR), both ends and lo up, TX checksum
#                           offload off (XDP_TX needs complete checksums).
#   netns_bridge SW BR SWPFX HOSTPFX NS:ADDR...
#                           a bridge BR in namespace SW and, for the i-th NS:ADDR (from 1),
#                           a veth SWPFX<i> in SW (on the bridge) to HOSTPFX<i> in NS with
#                           ADDR (CIDR); all up, lo up, TX checksum offload off.

netns_require() {
    if [ "$(id -u)" != 0 ]; then
        [ "${CI:-}" = true ] && { echo "FAIL: needs root (namespaces, XDP) and CI=true"; exit 1; }
        echo "SKIP: needs root (network namespaces, XDP)"
        exit 77
    fi
    local t
    for t in "$@"; do
        if ! command -v "$t" >/dev/null; then
            [ "${CI:-}" = true ] && { echo "FAIL: $t missing and CI=true"; exit 1; }
            echo "SKIP: $t not installed"
            exit 77
        fi
    done
}

x() {
    local n=$1
    shift
    ip netns exec "$n" "$@"
}

netns_cleanup() {
    declare -F netns_cleanup_hook >/dev/null && netns_cleanup_hook
    local p n
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    for n in $NETNS_LIST; do ip netns del "$n" 2>/dev/null; done
    rm -rf "$T"
}

netns_start() {
    NETNS_LIST="$*"
    PIDS=()
    trap netns_cleanup EXIT
    local n
    for n in "$@"; do
        ip netns del "$n" 2>/dev/null
        ip netns add "$n"
    done
}

netns_link() {
    ip link add "$2" netns "$1" type veth peer name "$5" netns "$4"
    x "$1" ip addr add "$3" dev "$2"
    x "$4" ip addr add "$6" dev "$5"
    local e
    for e in "$1:$2" "$4:$5"; do
        x "${e%%:*}" ip link set "${e#*:}" up
        x "${e%%:*}" ip link set lo up
        x "${e%%:*}" ethtool -K "${e#*:}" tx off >/dev/null
    done
}

netns_bridge() {
    local sw=$1 br=$2 swp=$3 hp=$4 i=0 e n a
    shift 4
    x "$sw" ip link add "$br" type bridge
    x "$sw" ip link set "$br" up
    for e in "$@"; do
        n=${e%%:*} a=${e#*:}
        i=$((i + 1))
        ip link add "$swp$i" netns "$sw" type veth peer name "$hp$i" netns "$n"
        x "$sw" ip link set "$swp$i" master "$br" up
        x "$n" ip addr add "$a" dev "$hp$i"
        x "$n" ip link set "$hp$i" up
        x "$n" ip link set lo up
        x "$n" ethtool -K "$hp$i" tx off >/dev/null
        x "$sw" ethtool -K "$swp$i" tx off >/dev/null
    done
}
