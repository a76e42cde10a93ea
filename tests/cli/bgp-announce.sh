#!/usr/bin/env bash
# bgp-announce without peers: config validation, the command grammar through the control
# socket and stdin, errors. Sessions with real routers: bgp-announce-interop.sh.
. "$(dirname "$0")/lib.sh"

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

good() {
    cat <<EOF2
[speaker]
local_as = 65001
router_id = "127.0.0.2"
control_socket = "$T/ctl.sock"
[[peer]]
address = "127.0.0.1"
port = 17930
remote_as = 65000
local_address = "127.0.0.2"
connect_retry = 1
families = ["ipv4-unicast", "ipv6-unicast", "ipv4-flowspec"]
[[group]]
name = "web"
prefixes = ["192.0.2.0/24"]
communities = ["65000:80"]
EOF2
}

case_ "run needs -c"
run bgp-announce run
expect_usage_error bgp-announce
expect_err 'needs -c'

case_ "--check accepts a good config"
good >"$T/good.toml"
run bgp-announce run -c "$T/good.toml" --check
expect_rc 0
expect_out '1 peer\(s\), 1 group\(s\): OK'
run bgp-announce -j run -c "$T/good.toml" --check
expect_jsonl
expect_out '"type":"bgp_config"'

# bad_config NAME EXPECTED-STDERR-RE: file content on stdin
bad_config() {
    cat >"$T/$1.toml"
    run bgp-announce run -c "$T/$1.toml" --check
    expect_usage_error bgp-announce
    expect_err "$2"
}
case_ "config errors name FILE:LINE and the fix"
bad_config nospeaker 'missing \[speaker\]' < <(printf '[[peer]]\naddress = "127.0.0.1"\nremote_as = 1\n')
bad_config rid 'rid.toml:3:.*IPv4' < <(printf '[speaker]\nlocal_as = 65001\nrouter_id = "2001:db8::1"\n')
bad_config nopeer 'no \[\[peer\]\]' < <(printf '[speaker]\nlocal_as = 65001\nrouter_id = "1.2.3.4"\n')
bad_config port 'port.toml:7:.*out of range' < <(good | sed 's/^port = 17930/port = 70000/')
bad_config key "key.toml:[0-9]+:.*remote_ass" < <(good | sed 's/^remote_as = 65000/remote_ass = 65000/')
bad_config comm "comm.toml:[0-9]+:.*bad community '65000:80000'" < <(good | sed 's/65000:80/65000:80000/')
bad_config pfx 'pfx.toml:[0-9]+:.*192.0.2.0/24' < <(good | sed 's#192.0.2.0/24#192.0.2.1/24#')
bad_config fam "fam.toml:[0-9]+:.*ipv5-unicast" < <(good | sed 's/ipv4-flowspec/ipv5-unicast/')
bad_config health 'exactly one of command, tcp, http' < <((good; printf '[group.health]\ncommand = "true"\ntcp = "127.0.0.1:1"\n'))
bad_config http 'http://ADDR:PORT/PATH' < <((good; printf '[group.health]\nhttp = "https://x/"\n'))
bad_config table "table.toml:[0-9]+: unknown table 'bogus'" < <((good; printf '[bogus]\nx = 1\n'))
bad_config hold 'hold_time.*at least 3' < <(good | sed 's/^router_id = .*/router_id = "127.0.0.2"\nhold_time = 2/')

case_ "ctl without a speaker fails in one line"
run bgp-announce ctl -s "$T/nothing.sock" status
expect_rc 1
expect_err '^bgp-announce: cannot connect'
expect_err_lines 1
run bgp-announce ctl status
expect_usage_error bgp-announce

case_ "command grammar through the control socket (no peer up)"
mkfifo "$T/in"
bgp-announce run -c "$T/good.toml" -j <"$T/in" >"$T/events" 2>"$T/stderr" &
PIDS+=($!)
SPK=$!
exec 3>"$T/in"
wait_for 10 test -S "$T/ctl.sock" || fail "control socket not created"
ctl() { bgp-announce ctl -s "$T/ctl.sock" "$@"; }
ok_cmd() { ctl -j "$@" | grep -q '"ok":true' || fail "rejected: $*"; }
bad_cmd() {
    run bgp-announce ctl -s "$T/ctl.sock" "$@"
    expect_usage_error bgp-announce
}
ok_cmd announce route 198.51.100.0/24 next-hop 198.18.0.1 community 65000:1,65000:2 large-community 65001:1:2 med 5 origin egp as-path-prepend 2
ok_cmd announce route 2001:db8::/32 community [65000:1 no-export] extended-community rt:65000:7
ok_cmd announce blackhole 203.0.113.7
ok_cmd announce attributes community 65000:3 nlri 10.0.0.0/24 10.0.1.0/24
ok_cmd announce flow destination 203.0.113.9/32 protocol tcp,udp destination-port '>=1024&<=2048' tcp-flags 'syn&!ack' then rate-limit 1000
ok_cmd '{"type":"announce","prefix":"10.9.0.0/16","communities":["65000:9"],"duration_s":1}'
ok_cmd '{"type":"mitigation","action":"rtbh","prefix":"203.0.113.8"}'
bad_cmd announce route 198.51.100.1/24
bad_cmd announce route 198.51.100.0/24 community 65536:1
bad_cmd announce route 198.51.100.0/24 med
bad_cmd announce route 198.51.100.0/24 colour red
bad_cmd announce flow destination 1.2.3.4/32 protocol tcpp
bad_cmd announce nothing
bad_cmd frobnicate
bad_cmd '{"type":"mitigation","action":"nuke","prefix":"203.0.113.8"}'
bad_cmd '{"type":"announce"}'
bad_cmd '{"type":"announce",'
routes=$(ctl -j routes)
jq -e 'select(.prefix=="198.51.100.0/24") | .communities==["65000:1","65000:2"] and .med==5 and .prepend==2 and .next_hop=="198.18.0.1"' <<<"$routes" | grep -q true || fail "route attributes: $routes"
jq -e 'select(.prefix=="2001:db8::/32") | .communities==["65000:1","65535:65281"] and .ext_communities==["rt:65000:7"]' <<<"$routes" | grep -q true || fail "IPv6 route: $routes"
jq -e 'select(.prefix=="203.0.113.7/32") | .communities==["65535:666","65535:65281"]' <<<"$routes" | grep -q true || fail "blackhole: $routes"
jq -e 'select(.prefix=="203.0.113.8/32") | .communities==["65535:666","65535:65281"]' <<<"$routes" | grep -q true || fail "rtbh mitigation: $routes"
jq -e 'select(.flow) | .flow=="destination 203.0.113.9/32 protocol =6,=17 destination-port >=1024&<=2048 tcp-flags syn&!ack" and .ext_communities==["rate-limit:1000"]' <<<"$routes" | grep -q true || fail "flow: $routes"
jq -e 'select(.prefix=="192.0.2.0/24") | .source=="web"' <<<"$routes" | grep -q true || fail "group route: $routes"
[ "$(jq -s '[.[] | select(.prefix == "10.0.0.0/24" or .prefix == "10.0.1.0/24")] | length' <<<"$routes")" = 2 ] || fail "attributes nlri"
sleep 1.3
ctl -j routes | grep -q '10.9.0.0/16' && fail "duration_s did not withdraw"

case_ "stdin: text and JSON lines, errors name the line, the speaker keeps running"
echo "withdraw route 198.51.100.0/24" >&3
echo "not a command" >&3
echo '{"type":"withdraw","prefix":"2001:db8::/32"}' >&3
echo '{"type":"bogus"}' >&3
echo "withdraw all" >&3
wait_for 5 bash -c "! bgp-announce ctl -s $T/ctl.sock routes | grep -q 203.0.113.7" || fail "withdraw all"
grep -q "stdin:2: unknown command 'not'" "$T/stderr" || fail "stdin error line: $(cat "$T/stderr")"
grep -q "stdin:4: JSON command type 'bogus' unknown" "$T/stderr" || fail "stdin JSON error line"
ctl -j routes | grep -q '192.0.2.0/24' || fail "withdraw all removed a config route"
ctl -j status | jq -e 'select(.type=="bgp_speaker") | .command_errors >= 2' | grep -q true || fail "status counters"
ctl metrics | grep -q '^bgp_announce_session_established{peer="127.0.0.1"} 0' || fail "metrics"

case_ "SIGTERM exits 0 without peers"
kill -TERM $SPK
wait $SPK
expect_rc_val=$?
[ $expect_rc_val -eq 0 ] || fail "exit $expect_rc_val"
[ ! -e "$T/ctl.sock" ] || fail "control socket left behind"

finish
