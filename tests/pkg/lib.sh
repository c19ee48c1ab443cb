# lib.sh - helpers shared by the packaging tests (sourced, not run): pass/fail reporting, starting
# an installed `edgeflag serve` and waiting for its URL, and stopping every server a test started.
# A helper never skips: a missing tool or a server that does not start fails the test.

pkg_failures=0
pkg_pids=()
pkg_check() { # description, command...
  local what=$1; shift
  if "$@"; then
    printf '  ok   %s\n' "$what"
  else
    printf '  FAIL %s\n' "$what"
    pkg_failures=$((pkg_failures + 1))
  fi
}

pkg_need() { # tool... : fails (does not skip) when one is missing
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || { echo "missing tool '$t': run scripts/install-deps.sh test" >&2; exit 1; }
  done
}

# pkg_serve DIR OUTFILE LOGFILE COMMAND...: starts a server in DIR and sets PKG_URL once it
# listens. Not to be called in $(...): the pid must be recorded in this shell for pkg_stop_all.
pkg_serve() {
  local dir=$1 out=$2 log=$3; shift 3
  # The files exist before the fork: the child opens them only once it runs, and a first read
  # that finds no file would end the test under set -e (CI saw this race once).
  : >"$out"; : >"$log"
  (cd "$dir" && exec "$@") >"$out" 2>"$log" &
  pkg_pids+=($!)
  PKG_URL=
  local _
  for _ in $(seq 200); do
    PKG_URL=$(sed -n 's/^listening on //p' "$out")
    [ -n "$PKG_URL" ] && return 0
    kill -0 "${pkg_pids[-1]}" 2>/dev/null || break
    sleep 0.05
  done
  echo "server did not start: $*" >&2
  cat "$log" >&2
  return 1
}

pkg_stop_all() {
  local p
  for p in "${pkg_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pkg_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pkg_pids=()
}

# pkg_flag URL KEY: creates an enabled boolean flag through the management API.
pkg_flag() {
  curl -fsS -X POST "$1/api/v1/namespaces/default/flags" \
    -d "{\"key\":\"$2\",\"name\":\"$2\",\"type\":\"BOOLEAN_FLAG_TYPE\",\"enabled\":true}" >/dev/null
}

pkg_done() { # name
  if [ "$pkg_failures" -ne 0 ]; then
    echo "$1: $pkg_failures check(s) failed"
    exit 1
  fi
  echo "$1: all checks passed"
}
