#!/usr/bin/env bash
# edgectl lab without root and without building anything: usage errors, stacks the lab
# cannot build (exit 2 before any namespace exists), status of no lab. The lab itself is
# tested in tests/netns/edgectl-lab.sh. Never runs `lab down` (it would remove a lab that
# another test has up) nor `lab up` with a buildable stack.
. "$(dirname "$0")/lib.sh"
export EDGE_LAB_DIR=$T/lab

case_ "lab needs a command"
run edgectl lab
expect_usage_error edgectl
run edgectl lab sideways
expect_usage_error edgectl

case_ "lab status with no lab: exit 1, says so, JSON too"
run edgectl lab status
expect_rc 1
expect_out 'no lab is up'
run edgectl -j lab status
expect_rc 1
expect_jsonl
jq -e 'select(.type=="lab_status") | .up == false' "$OUT" >/dev/null || fail "lab_status up false"

stack() {  # stack FILE [SED]: a two-PoP stack the lab can build, changed by SED
    cat >"$1" <<'TOML'
[anycast]
prefixes = ["203.0.113.0/24"]
[[vip]]
address = "203.0.113.10"
services = ["80/tcp"]
[cache]
origin = "10.9.0.2:8080"
port = 80
[[pop]]
name = "pop-a"
asn = 65001
router_id = "10.255.0.1"
backends = ["10.1.1.11", "10.1.1.12"]
[[pop.peer]]
address = "10.0.1.1"
local_address = "10.0.1.2"
remote_as = 65000
[[pop]]
name = "pop-b"
asn = 65002
router_id = "10.255.0.2"
backends = ["10.2.1.11", "10.2.1.12"]
[[pop.peer]]
address = "10.0.2.1"
local_address = "10.0.2.2"
remote_as = 65000
TOML
    [ -n "${2:-}" ] && sed -i "$2" "$1"
    return 0
}

case_ "a stack that fails validation: FILE:LINE, nothing built"
stack "$T/bad.toml" 's/^port = 80/port = 70000/'
run edgectl lab up "$T/bad.toml"
expect_usage_error edgectl
expect_err 'bad.toml:[0-9]+: '
[ ! -e "$EDGE_LAB_DIR" ] || fail "state created for a bad stack"

case_ "a peer without local_address cannot be wired into the lab"
stack "$T/nolocal.toml" '0,/^local_address = "10.0.1.2"$/{/^local_address = "10.0.1.2"$/d}'
run edgectl lab up "$T/nolocal.toml"
expect_usage_error edgectl
expect_err 'PoP pop-a: the lab needs exactly one IPv4 \[\[pop.peer\]\] with local_address'

case_ "peers of different ISP ASes cannot share the lab's one ISP"
stack "$T/twoisp.toml" '$s/remote_as = 65000/remote_as = 65009/'
run edgectl lab demo "$T/twoisp.toml"
expect_usage_error edgectl
expect_err 'same ISP AS'

case_ "backends on .1 or .2 collide with the lab's router and balancer"
stack "$T/dot1.toml" 's/"10.1.1.11", "10.1.1.12"/"10.1.1.1", "10.1.1.12"/'
run edgectl lab up "$T/dot1.toml"
expect_usage_error edgectl
expect_err 'host parts 3..254'
[ ! -e "$EDGE_LAB_DIR" ] || fail "state created for a stack the lab cannot build"

case_ "lab help names its commands"
run edgectl lab --help
expect_rc 0
for c in up down status demo; do expect_out "^  $c "; done

finish
