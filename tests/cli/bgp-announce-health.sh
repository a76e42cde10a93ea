#!/usr/bin/env bash
# Health checks by TCP connect and HTTP GET (a Python http.server on 127.0.0.1:17940), the
# on_failure = "med" policy, and Prometheus metrics over HTTP (127.0.0.1:17941). No BGP peer
# is needed: the speaker's own view (ctl status / routes, metrics) is checked.
. "$(dirname "$0")/lib.sh"
for c in python3 curl jq; do command -v $c >/dev/null || { echo "SKIP: $c missing"; exit 77; }; done
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
wait_for() {
    local end=$((SECONDS + $1))
    shift
    while [ $SECONDS -le $end ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}
mkdir "$T/www"
touch "$T/www/healthz"
if ss -ltn 2>/dev/null | grep -q '127.0.0.1:17940 '; then echo "FAIL: port 17940 already in use"; exit 1; fi
(cd "$T/www" && exec python3 -m http.server 17940 --bind 127.0.0.1 >/dev/null 2>&1) &
WEB=$!
PIDS+=($WEB)
cat >"$T/speaker.toml" <<EOF
[speaker]
local_as = 65001
router_id = "127.0.0.2"
control_socket = "$T/ctl.sock"
metrics = "127.0.0.1:17941"
[[peer]]
address = "127.0.0.1"
port = 17942
remote_as = 65000
connect_retry = 60
[[group]]
name = "web-http"
prefixes = ["192.0.2.80/32"]
[group.health]
http = "http://127.0.0.1:17940/healthz"
interval = 0.2
rise = 1
fall = 1
on_failure = "med"
failure_med = 5000
[[group]]
name = "web-tcp"
prefixes = ["192.0.2.81/32"]
[group.health]
tcp = "127.0.0.1:17940"
interval = 0.2
rise = 2
fall = 2
EOF
bgp-announce run -c "$T/speaker.toml" -j </dev/null >"$T/events" 2>"$T/stderr" &
PIDS+=($!)
ctl() { bgp-announce ctl -s "$T/ctl.sock" -j "$@"; }
healthy() { ctl status | jq -e --arg g "$1" 'select(.group==$g) | .healthy' | grep -q "$2"; }
announced() { ctl routes | jq -r '.prefix // empty' | grep -qxF "$1"; }

case_ "HTTP and TCP checks pass: both groups announced"
wait_for 10 healthy web-http true || fail "HTTP check not healthy: $(ctl status)"
wait_for 10 healthy web-tcp true || fail "TCP check not healthy: $(ctl status)"
ctl status | jq -e 'select(.group=="web-http") | .detail == "HTTP 200"' | grep -q true || fail "HTTP detail"
announced 192.0.2.80/32 || fail "HTTP group not announced: $(ctl routes)"
announced 192.0.2.81/32 || fail "TCP group not announced"
ctl routes | jq -e 'select(.prefix=="192.0.2.80/32") | has("med") | not' | grep -q true || fail "MED set while healthy"

case_ "HTTP 404: on_failure med keeps announcing with the failure MED"
rm "$T/www/healthz"
wait_for 5 healthy web-http false || fail "HTTP 404 not unhealthy"
ctl status | jq -e 'select(.group=="web-http") | .detail == "HTTP 404"' | grep -q true || fail "404 detail"
wait_for 5 bash -c "bgp-announce ctl -s $T/ctl.sock -j routes | jq -e 'select(.prefix==\"192.0.2.80/32\") | .med == 5000' | grep -q true" || fail "failure MED not applied"

case_ "server gone: TCP check fails and withdraws"
kill $WEB
wait $WEB 2>/dev/null
wait_for 5 healthy web-tcp false || fail "TCP check still healthy"
wait_for 5 bash -c "! bgp-announce ctl -s $T/ctl.sock -j routes | grep -q 192.0.2.81/32" || fail "TCP group not withdrawn"
grep -q '"type":"bgp_health","group":"web-tcp","healthy":false' "$T/events" || fail "no bgp_health event"

case_ "Prometheus metrics over HTTP"
m=$(curl -sf --max-time 5 http://127.0.0.1:17941/metrics) || fail "metrics endpoint"
grep -q '^bgp_announce_group_healthy{group="web-tcp"} 0' <<<"$m" || fail "group gauge: $m"
grep -q '^bgp_announce_routes 1$' <<<"$m" || fail "routes gauge: $m"
grep -q '^# TYPE bgp_announce_session_established gauge' <<<"$m" || fail "TYPE lines"

finish
