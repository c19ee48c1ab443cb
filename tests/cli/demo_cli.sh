#!/usr/bin/env bash
# `make demo` end to end, run the way CI and a non-interactive shell run it: it exits 0, every node
# evaluated the flag the demo wrote, and no server it started is left running afterwards, checked
# by the addresses it printed and by process (the demo once recorded its servers' pids in
# subshells, so its cleanup stopped none of them).
set -u
bin=${1:?usage: demo_cli.sh path/to/edgeflag}
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/lib.sh"
# Servers of this binary serving a demo's store (the demo's directory is /tmp/edgeflag-demo.*).
demo_servers() { pgrep -f -- "^$bin serve .*--db /tmp/edgeflag-demo\." | sort; }

demo_servers >"$tmp/before"
(cd "$src" && scripts/demo.sh "$bin") </dev/null >"$tmp/out" 2>"$tmp/err"
rc=$?
check "the demo exits 0 (got $rc)" test "$rc" -eq 0
check "all four nodes see the flag after the update" \
  test "$(sed -n '/after the update/,/^$/p' "$tmp/out" | grep -c 'enabled=true')" -eq 4
# The nodes it printed, by address: a check that does not depend on how the demo names its files.
urls=$(sed -nE 's#^(primary|iad|dfw|lhr) .* (http://127\.0\.0\.1:[0-9]+)/ .*#\2#p' "$tmp/out")
check "the demo printed its four nodes' addresses" test "$(echo "$urls" | grep -c .)" -eq 4
for u in $urls; do
  check "nothing answers at $u after the demo" sh -c "! curl -s -m 2 -o /dev/null '$u/meta/info'"
done
demo_servers >"$tmp/after"
left=$(comm -13 "$tmp/before" "$tmp/after" | tr "\n" " ")
check "no demo server left running (left: ${left:-none})" test -z "$left"
[ -n "$left" ] && kill $left 2>/dev/null

cli_done demo_cli || { cat "$tmp/out" "$tmp/err"; exit 1; }
