#!/usr/bin/env bash
# The conventions every binary shares (edge(7)): help, version, exit codes, one-line
# errors, config files, completions that match the CLI, man pages that document it.
. "$(dirname "$0")/lib.sh"
MAN=${EDGE_MAN:-$BIN/../man}

for tool in "$BIN"/*; do
    [ -x "$tool" ] || continue
    t=$(basename "$tool")

    case_ "$t -h"
    run "$t" -h
    expect_rc 0
    expect_out '^Usage: '
    expect_no_err
    run "$t" --help
    expect_rc 0

    case_ "$t -V"
    run "$t" -V
    expect_rc 0
    expect_out "^$t [0-9]+\.[0-9]+\.[0-9]+"
    expect_out '^libraries: .*CLI11'

    case_ "$t unknown option: one line, exit 2"
    run "$t" --no-such-option
    expect_usage_error "$t"
    run "$t" --color=sometimes
    expect_usage_error "$t"

    case_ "$t config: missing file, bad TOML, unknown key"
    run "$t" -c "$T/missing.toml"
    expect_usage_error "$t"
    printf 'json = true\nthis is not toml\n' >"$T/bad.toml"
    run "$t" -c "$T/bad.toml"
    expect_usage_error "$t"
    expect_err 'bad.toml:2:'
    printf 'json = true\nno_such_key = 1\n' >"$T/unknown.toml"
    run "$t" -c "$T/unknown.toml"
    expect_usage_error "$t"
    expect_err "unknown.toml:2: unknown key 'no_such_key'"

    case_ "$t completions are generated from the CLI and committed"
    for sh in bash zsh fish; do
        case $sh in
        bash) f="$SRC/completions/bash/$t" ;;
        zsh) f="$SRC/completions/zsh/_$t" ;;
        fish) f="$SRC/completions/fish/$t.fish" ;;
        esac
        run "$t" --completion $sh
        expect_rc 0
        if [ ! -f "$f" ]; then
            fail "$f missing: run make completions"
        elif ! cmp -s "$OUT" "$f"; then
            fail "$f is stale: run make completions"
        fi
    done
    bash -n "$SRC/completions/bash/$t" || fail "bash syntax"
    if command -v zsh >/dev/null; then zsh -n "$SRC/completions/zsh/_$t" || fail "zsh syntax"; fi
    if command -v fish >/dev/null; then fish -n "$SRC/completions/fish/$t.fish" || fail "fish syntax"; fi

    case_ "$t bash completion completes subcommands and option values"
    subs=$("$t" --help | awk '/^Subcommands:/ {on=1; next} on && /^  [a-z]/ {print $1}')
    # shellcheck disable=SC1090
    . "$SRC/completions/bash/$t"
    fn="_$(echo "$t" | tr - _)"
    for s in $subs; do
        COMP_WORDS=("$t" "${s:0:2}")
        COMP_CWORD=1
        COMPREPLY=()
        "$fn"
        printf '%s\n' "${COMPREPLY[@]}" | grep -qx "$s" || fail "bash: '${s:0:2}' does not complete to $s"
    done
    COMP_WORDS=("$t" --color "")
    COMP_CWORD=2
    COMPREPLY=()
    "$fn"
    [ "${COMPREPLY[*]}" = "auto always never" ] || fail "bash: --color values (${COMPREPLY[*]})"

    case_ "$t man page documents every long option"
    page=$(ls "$MAN/$t".[18] 2>/dev/null | head -1)
    if [ -z "$page" ]; then
        fail "no man page for $t in $MAN"
    else
        opts=$( ("$t" --help; for s in $subs; do "$t" "$s" --help; done) | grep -oE '(^|[ ,])--[a-z][a-z0-9-]+' | sed 's/^[ ,]//' | sort -u)
        for o in $opts; do
            grep -q -- "$(echo "$o" | sed 's/-/\\\\-/g')\|$o" "$page" || fail "man page $page does not mention $o"
        done
        for s in $subs; do grep -q -- "$s" "$page" || fail "man page does not mention command $s"; done
    fi
done

case_ "shared man pages exist"
for p in edge.7 edge-formats.7; do
    [ -s "$MAN/$p" ] || fail "$MAN/$p missing"
done

finish
