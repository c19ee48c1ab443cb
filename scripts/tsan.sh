#!/bin/bash
# The integration suites against the ThreadSanitizer build: real servers, real clients, reports
# written to files (not stderr, which some tests check) and the run failed when any was written.
# The unit tests run under TSan in every `make test`; races that need real traffic (key sets
# replaced while requests verify, streams, forwarded writes) show only here.
#
# usage: scripts/tsan.sh [quick|all]
#   quick  the JWT, authentication and OIDC sign-in suites (make test runs these: under a minute)
#   all    also the Flipt-client suites and the cluster suites (make tsan: about 7 minutes)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mode=${1:-quick}

case "$mode" in quick|all) ;; *) echo "usage: scripts/tsan.sh [quick|all]" >&2; exit 2 ;; esac
if [ ! -f build-tsan/build.ninja ]; then
  cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEF_TSAN=ON >/dev/null
fi
cmake --build build-tsan --target edgeflag
bin="$root/build-tsan/edgeflag"

reports=$(mktemp -d "${TMPDIR:-/tmp}/ef-tsan-XXXXXX")
export TSAN_OPTIONS="suppressions=$root/tests/tsan.supp log_path=$reports/report second_deadlock_stack=1"

suite() { # directory, files...
  local dir=$1; shift
  local log="$reports/$(basename "$dir").log"
  echo "  $dir: $*"
  if ! (cd "$dir" && EDGEFLAG_BIN="$bin" node --test "$@") >"$log" 2>&1; then
    grep -E -A30 '^ *not ok' "$log" | head -120
    echo "tsan.sh: tests failed under TSan in $dir (log: $log)" >&2
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
    dir_mode.test.mjs hostile.test.mjs
  suite tests/cluster cluster.test.mjs faults.test.mjs waiting.test.mjs history.test.mjs \
    upstream_bounds.test.mjs history_api.test.mjs recovery.test.mjs namespaces.test.mjs audit_events.test.mjs \
    shutdown.test.mjs
fi

found=$(find "$reports" -name 'report.*' | sort)
if [ -n "$found" ]; then
  for f in $found; do cat "$f"; done
  echo "tsan.sh: ThreadSanitizer reported in $(echo "$found" | wc -l) process(es); reports in $reports" >&2
  exit 1
fi
echo "tsan.sh: no ThreadSanitizer report ($mode)"
rm -rf "$reports"
