#!/bin/bash
# The integration suites against a sanitizer build: real servers, real clients, reports written to
# files (not stderr, which some tests check) and the run failed when any was written. The unit
# tests run under both sanitizers in every `make test`; what needs real traffic (key sets replaced
# while requests verify, sign-ins answered from another thread, streams, forwarded writes, hostile
# bytes through the real parser) shows only here.
#
# usage: scripts/sanitizer-suites.sh tsan|asan [quick|all]
#   tsan   ThreadSanitizer (build-tsan/; liburcu's own bookkeeping suppressed: tests/tsan.supp)
#   asan   AddressSanitizer + UndefinedBehaviorSanitizer, leaks checked at exit (build-asan/)
#   quick  the JWT, authentication and OIDC sign-in suites (make test runs these under TSan:
#          under a minute)
#   all    also every Flipt-client and hostile-input file of tests/compat, the backup files, the
#          cluster files, the web UI in Chromium, and edgeflag on libSQL, PostgreSQL and MariaDB
#          (make tsan: about 8 minutes; make asan: 5)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
san=${1:-}
mode=${2:-quick}
usage() { echo "usage: scripts/sanitizer-suites.sh tsan|asan [quick|all]" >&2; exit 2; }
case "$mode" in quick|all) ;; *) usage ;; esac

reports=$(mktemp -d "${TMPDIR:-/tmp}/ef-$san-XXXXXX")
case "$san" in
  tsan)
    dir=build-tsan flag=-DEF_TSAN=ON
    export TSAN_OPTIONS="suppressions=$root/tests/tsan.supp log_path=$reports/report second_deadlock_stack=1"
    ;;
  asan)
    dir=build-asan flag=-DEF_SANITIZE=ON
    # verify_asan_link_order=0: the wall-clock tests preload a library of their own, which ASan
    # would otherwise refuse to start behind (its runtime is linked into edgeflag, not preloaded)
    export ASAN_OPTIONS="log_path=$reports/report verify_asan_link_order=0"
    export UBSAN_OPTIONS="log_path=$reports/report print_stacktrace=1"
    ;;
  *) rmdir "$reports"; usage ;;
esac
if [ ! -f "$dir/build.ninja" ]; then
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$flag" >/dev/null
fi
# edgeflag, and the LD_PRELOAD library of the wall-clock tests (tests/unit/realtime_shift.c)
cmake --build "$dir" --target edgeflag ef_realtime_shift
bin="$root/$dir/edgeflag"
export EF_SANITIZER=$san # tests whose bounds a sanitizer's own memory use would defeat say so

suite() { # directory, files...
  local dir=$1; shift
  local log="$reports/$(basename "$dir").log"
  echo "  $dir: $*"
  if ! (cd "$dir" && EDGEFLAG_BIN="$bin" node --test "$@") >"$log" 2>&1; then
    grep -E -A30 '^ *not ok' "$log" | head -120
    echo "sanitizer-suites.sh: tests failed under $san in $dir (log: $log)" >&2
    return 1
  fi
}

# The same through a wrapper that starts a database server first (tests/*/with-*.sh); in
# tests/compat the node is pointed at that store (tests/libsql/edgeflag-on-libsql.sh).
suite_with() { # directory, with-script, files...
  local dir=$1 with=$2; shift 2
  local log="$reports/$(basename "$dir")-$(basename "$with" .sh).log"
  echo "  $dir ($with): $*"
  if ! (cd "$dir" && EF_REAL_BIN="$bin" EDGEFLAG_BIN="${EDGEFLAG_BIN:-$root/tests/libsql/edgeflag-on-libsql.sh}" \
        "$with" node --test "$@") >"$log" 2>&1; then
    grep -E -A30 '^ *not ok' "$log" | head -120
    echo "sanitizer-suites.sh: tests failed under $san in $dir with $with (log: $log)" >&2
    return 1
  fi
}

scripts/npm-ci.sh tests/compat
scripts/npm-ci.sh tests/e2e
suite tests/compat jwt.test.mjs auth.test.mjs
suite tests/e2e oidc.test.mjs
if [ "$mode" = all ]; then
  suite tests/compat ofrep.test.mjs flipt_sdk.test.mjs flipt_errors.test.mjs flipt_dropin.test.mjs \
    client_engine.test.mjs metrics.test.mjs config.test.mjs admission.test.mjs routes.test.mjs \
    dir_mode.test.mjs hostile.test.mjs clock_step.test.mjs
  scripts/npm-ci.sh tests/backup
  suite tests/backup file.test.mjs s3.test.mjs hostile.test.mjs
  suite tests/cluster cluster.test.mjs faults.test.mjs waiting.test.mjs history.test.mjs \
    upstream_bounds.test.mjs history_api.test.mjs recovery.test.mjs namespaces.test.mjs audit_events.test.mjs \
    shutdown.test.mjs
  suite tests/e2e serve.test.mjs ui.test.mjs cluster.test.mjs browser_sdk.test.mjs
  # the remote stores: edgeflag's cluster file on each, then Flipt's SDK and flipt-client-js on it
  scripts/npm-ci.sh tests/libsql
  suite tests/libsql cluster.test.mjs
  for store in "libsql with-peer.sh" "pg with-postgres.sh" "mysql with-mariadb.sh"; do
    set -- $store
    [ "$1" = libsql ] || EDGEFLAG_BIN="$bin" suite_with "tests/$1" "./$2" cluster.test.mjs
    suite_with tests/compat "../$1/$2" client_engine.test.mjs flipt_sdk.test.mjs
  done
fi

found=$(find "$reports" -name 'report.*' | sort)
if [ -n "$found" ]; then
  for f in $found; do cat "$f"; done
  echo "sanitizer-suites.sh: $san reported in $(echo "$found" | wc -l) process(es); reports in $reports" >&2
  exit 1
fi
echo "sanitizer-suites.sh: no $san report ($mode)"
rm -rf "$reports"
