#!/usr/bin/env bash
# `edgeflag serve` executes itself once more with glibc's malloc asked for transparent huge pages
# (src/base/hugepages.c): the serving process (same pid) carries the tunable unless the kernel has
# them off, EDGEFLAG_MALLOC_HUGEPAGES=0 says no, or GLIBC_TUNABLES already decides; other tunables
# are kept. `edgeflag import` does the same and imports as before.
set -u
bin=${1:?usage: hugepages_cli.sh path/to/edgeflag}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/lib.sh"
thp_on=1
grep -q '\[never\]' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null && thp_on=0
[ -r /sys/kernel/mm/transparent_hugepage/enabled ] || thp_on=0
glibc_minor=$(getconf GNU_LIBC_VERSION | sed -n 's/^glibc 2\.\([0-9]*\).*/\1/p')
[ "${glibc_minor:-0}" -ge 35 ] || thp_on=0

# Starts a server with the given environment (env VAR=VALUE...), waits until it serves, and
# prints its GLIBC_TUNABLES as the serving process was started with ("-" when unset). glibc parses
# the variable in place, turning each ':' into a NUL, so /proc/PID/environ shows the first
# tunable as the variable and the others as entries of their own: they are joined again here.
# The server takes a port of the kernel's choosing: a random fixed one could be taken by another
# test running beside this one under ctest -j.
serve_tunables() {
  # called in $(...): a subshell, so neither a counter nor pids+=() outlives the call; each server
  # gets a directory of its own and is stopped here whatever happens
  local n
  n=$(mktemp -d "$tmp/s.XXXXXX")
  env "$@" "$bin" serve --db "$n/s.db" --listen "127.0.0.1:0" >"$n/out" 2>&1 &
  local pid=$!
  for _ in $(seq 400); do
    grep -q 'listening on' "$n/out" 2>/dev/null && break
    sleep 0.05
  done
  if ! grep -q 'listening on' "$n/out" 2>/dev/null || ! kill -0 "$pid" 2>/dev/null; then
    echo "server did not start: $(cat "$n/out")" >&2
    kill "$pid" 2>/dev/null # a server slow to start would otherwise outlive the test
    wait "$pid" 2>/dev/null
    echo "?"
    return
  fi
  cat "/proc/$pid/comm" >"$tmp/comm"
  local t
  t=$(tr '\0' '\n' <"/proc/$pid/environ" |
    awk '/^GLIBC_TUNABLES=/ { v = substr($0, 16); on = 1; next }
         on && /^glibc\./ { v = v ":" $0; next }
         { on = 0 }
         END { print v }')
  kill "$pid"
  wait "$pid" 2>/dev/null
  echo "${t:--}"
}

want=$([ $thp_on = 1 ] && echo "glibc.malloc.hugetlb=1" || echo "-")
check "default: asked for (kernel allows: $thp_on)" test "$(serve_tunables -u GLIBC_TUNABLES)" = "$want"
name=$(basename "$bin")
check "the process keeps its name (not \"exe\")" test "$(cat "$tmp/comm")" = "${name:0:15}"
check "EDGEFLAG_MALLOC_HUGEPAGES=0: not asked for" \
  test "$(serve_tunables -u GLIBC_TUNABLES EDGEFLAG_MALLOC_HUGEPAGES=0)" = "-"
check "the caller's choice wins" \
  test "$(serve_tunables GLIBC_TUNABLES=glibc.malloc.hugetlb=0)" = "glibc.malloc.hugetlb=0"
want=$([ $thp_on = 1 ] && echo "glibc.malloc.mmap_threshold=1048576:glibc.malloc.hugetlb=1" || echo "glibc.malloc.mmap_threshold=1048576")
check "other tunables kept" test "$(serve_tunables GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1048576)" = "$want"

printf 'version: "1.4"\nflags:\n  - key: f\n    name: F\n' >"$tmp/f.yml"
env -u GLIBC_TUNABLES "$bin" import --db "$tmp/i.db" "$tmp/f.yml" >"$tmp/iout" 2>&1
check "import runs as before" test $? -eq 0
check "import says what it did" grep -q '1 flag(s)' "$tmp/iout"

cli_done hugepages_cli
