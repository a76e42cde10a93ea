# Shared by tests/cli/*.sh: run a command, then check exit code, stdout and stderr.
#   run maglev-calc table -b a,b      # sets $rc, files $OUT and $ERR
#   expect_rc 0; expect_out 'regex'; expect_err 'regex'; expect_err_lines 1
set -u
BIN=${EDGE_BIN:?set EDGE_BIN to the build/bin directory}
TBIN=${EDGE_TESTS_BIN:-$BIN/../tests}
SRC=${EDGE_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
export PATH="$BIN:$PATH"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
OUT=$T/stdout
ERR=$T/stderr
fails=0
CASE="-"
rc=0

case_() { CASE="$*"; }
fail() {
    echo "FAIL [$CASE]: $*"
    echo "  stdout: $(head -c 600 "$OUT")"
    # A sanitizer report is the whole point of the failure: keep its stack.
    if grep -qE 'Sanitizer|runtime error:' "$ERR" 2>/dev/null; then
        echo "  stderr: $(head -c 12000 "$ERR")"
    else
        echo "  stderr: $(head -c 600 "$ERR")"
    fi
    fails=$((fails + 1))
}
# Runs with a 60 s bound so a hang fails instead of stalling the suite.
run() {
    timeout 60 "$@" >"$OUT" 2>"$ERR" </dev/null
    rc=$?
}
run_stdin() {  # run_stdin FILE CMD...
    local in=$1
    shift
    timeout 60 "$@" >"$OUT" 2>"$ERR" <"$in"
    rc=$?
}
expect_rc() { [ "$rc" = "$1" ] || fail "expected exit $1, got $rc"; }
expect_out() { grep -qE -- "$1" "$OUT" || fail "stdout does not match /$1/"; }
expect_no_out() { [ ! -s "$OUT" ] || fail "expected empty stdout"; }
expect_err() { grep -qE -- "$1" "$ERR" || fail "stderr does not match /$1/"; }
expect_no_err() { [ ! -s "$ERR" ] || fail "expected empty stderr"; }
expect_err_lines() {
    local n
    n=$(wc -l <"$ERR")
    [ "$n" -eq "$1" ] || fail "expected $1 stderr lines, got $n"
}
# Every stdout line is a JSON object with a "type".
expect_jsonl() {
    [ -s "$OUT" ] || { fail "no JSON output"; return; }
    jq -e 'has("type")' "$OUT" >/dev/null 2>&1 || fail "stdout is not JSON Lines with a type field"
}
# An error for the user: one line on stderr naming the tool, no crash.
expect_usage_error() {
    expect_rc 2
    expect_err "^$1: "
    expect_err_lines 1
}
finish() {
    if [ "$fails" -ne 0 ]; then
        echo "$fails check(s) failed"
        exit 1
    fi
    echo "all checks passed"
}
