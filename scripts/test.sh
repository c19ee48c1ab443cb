#!/usr/bin/env bash
# The whole test suite, as `make test` and CI run it:
#   1. unit tests (cmocka under ctest) in the normal build,
#   2. the same under AddressSanitizer + UndefinedBehaviorSanitizer,
#   3. the same under ThreadSanitizer,
#   4. compatibility tests against real third-party code (Flipt's own engine from npm).
# Each step prints its own summary; the script stops at the first failing step.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=$(nproc)
# ctest runs twice as many tests as there are cores: a good part of the unit tests wait (a
# PostgreSQL or MariaDB server starting, streams and deadlines), and on 2 cores -j4 took the
# plain step from 52-69 s to 42-44 s and TSan's from 81 s to 61-65 s, all passing.
ctest_jobs=$((jobs * 2))

step() { printf '\n==> %s  [%s, %ss in]\n' "$*" "$(date +%T)" "$SECONDS"; }

configure() { # dir, extra cmake args...
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  fi
  cmake --build "$dir" -j "$jobs"
}

step "unit tests"
configure build
(cd build && ctest --output-on-failure -j "$ctest_jobs")

step "unit tests under ASan+UBSan"
configure build-asan -DEF_SANITIZE=ON
(cd build-asan && ctest --output-on-failure -j "$ctest_jobs")

step "unit tests under TSan"
configure build-tsan -DEF_TSAN=ON
(cd build-tsan && ctest --output-on-failure -j "$ctest_jobs")

step "npm packages for the compatibility tests (from the lockfile)"
scripts/npm-ci.sh tests/compat

step "differential test against Flipt's evaluation engine"
(cd tests/compat && node diff_eval.mjs --edgeflag "$root/build/edgeflag" --seeds 1,2,3,4,5 --requests 20000)

# The failing tests of a node --test log, subtests too (indented): a parent's "1 subtest failed"
# alone does not say which.
failures() { grep -E -A40 '^ *not ok' "$1" | head -200; }

# Two lanes at once: `beside LOG BG CMD...` runs the function BG in the background, its output
# kept in LOG, and CMD here; waits for both, prints LOG and fails if either failed. Each lane runs
# as a background job under set -e: a subshell on the left of `||` would run with errexit ignored
# (bash), and a lane whose first command failed would pass on its last.
beside() {
  local log=$1 bg=$2
  shift 2
  (set -e; "$bg") >"$log" 2>&1 &
  local bg_pid=$!
  (set -e; "$@") &
  local fg_pid=$! rc=0 bg_rc=0
  wait "$fg_pid" || rc=$?
  wait "$bg_pid" || bg_rc=$?
  cat "$log"
  [ "$rc" -eq 0 ] && [ "$bg_rc" -eq 0 ]
}

# node --test with its full report kept in a log; the summary is printed, and on failure the
# failing tests with their details.
node_tests() { # name, directory, files...
  local name=$1 dir=$2; shift 2
  local log="$root/build/$name.log"
  if (cd "$dir" && EDGEFLAG_BIN="$root/build/edgeflag" node --test "$@") >"$log" 2>&1; then
    grep -E '^# (tests|pass|fail)|^# [a-z].*(mismatches|hostile)' "$log" || true
  else
    failures "$log"
    grep -E '^# (tests|pass|fail)' "$log"
    return 1
  fi
}

step "management API against a real server"
node_tests api-tests tests/api mgmt_api.test.mjs

step "real clients against a real server: OpenFeature OFREP, Flipt's engine, hostile input, a wall clock that steps back"
# two files at a time (node's default on 2 cores is one): most of these wait on timers, slow
# clients and token expiry, and the step took 37-44 s instead of 63 s, all passing
node_tests compat-tests tests/compat --test-concurrency=2 ofrep.test.mjs flipt_sdk.test.mjs flipt_errors.test.mjs flipt_dropin.test.mjs client_engine.test.mjs metrics.test.mjs config.test.mjs auth.test.mjs admission.test.mjs jwt.test.mjs routes.test.mjs dir_mode.test.mjs hostile.test.mjs clock_step.test.mjs

# further test steps (one block each)

step "backup and restore: one-file backups; continuous backup to a real S3 server (s3rver): point-in-time restore, kill -9, bucket outage, bad input; a misbehaving S3 endpoint (cut, endless and looping listings, refused snapshots, swapped objects)"
scripts/npm-ci.sh tests/backup
node_tests backup-tests tests/backup file.test.mjs s3.test.mjs hostile.test.mjs

step "install and packages: make install into a temporary root (pkg-config, man pages, systemd unit, config); make deb (dpkg-deb, lintian, the extracted packages run); the Dockerfile's build step; docs/deploy.md's commands"
# make install and the Dockerfile's build step (both in build/) beside the package build
# (build-deb/, 1.5 cores for 49 s) and docs/deploy.md, which installs that package
install_checks() { tests/pkg/install.sh; tests/pkg/docker.sh; }
package_checks() { tests/pkg/deb.sh; tests/pkg/deploy.sh; }
beside "$root/build/pkg-lane.log" install_checks package_checks

step "libFuzzer targets (tests/fuzz), ${FUZZ_TEST_SECONDS:-2} s each from their committed corpora, two at a time; make fuzz runs them long; beside them, SIGKILL cycles: a primary under write load, a replica under replication load (make crash runs 1,000)"
# The kill cycles wait on fsync and restarts (a core 80% idle through their 49 s), the fuzzers
# keep both cores busy and assert nothing about time: together they took the time of the fuzzers.
crash_cycles() { EDGEFLAG_BIN="$root/build/edgeflag" node tests/crash/crash.mjs "${CRASH_TEST_CYCLES:-20}"; }
fuzz_targets() { FUZZ_SECONDS=${FUZZ_TEST_SECONDS:-2} FUZZ_JOBS=${FUZZ_TEST_JOBS:-2} FUZZ_MERGE=0 scripts/fuzz.sh; }
beside "$root/build/crash-tests.log" crash_cycles fuzz_targets

# The three remote-store steps. PostgreSQL's runs beside libSQL's and then MariaDB's: they wait
# much of their time on servers starting and on pick-up windows (PostgreSQL's cluster file: 20 s,
# 10 of them on a core), and one after another they took 96 s of the suite.
libsql_steps() {
  step "libSQL: the Hrana test peer against @libsql/client, then edgeflag on it (two nodes, restarts, files; Flipt-client suite)"
  scripts/npm-ci.sh tests/libsql
  node_tests libsql-peer-tests tests/libsql peer.test.mjs
  node_tests libsql-cluster-tests tests/libsql cluster.test.mjs
  compat_on_store libsql with-peer.sh client_engine.test.mjs
  tests/libsql/with-tursodb.sh "$root/build/tests/unit/test_hrana"
}

# The Flipt-client suites FILES... (tests/compat) against edgeflag on a remote store that
# tests/DIR/WITH starts; log in build/DIR-compat-tests.log.
compat_on_store() { # dir, with-script, files...
  local dir=$1 with=$2
  shift 2
  (cd tests/compat && EF_REAL_BIN="$root/build/edgeflag" "../$dir/$with" env EDGEFLAG_BIN="$root/tests/libsql/edgeflag-on-libsql.sh" node --test "$@") >"$root/build/$dir-compat-tests.log" 2>&1 \
    || { failures "$root/build/$dir-compat-tests.log"; exit 1; }
  grep -E '^# (tests|pass|fail)|mismatches' "$root/build/$dir-compat-tests.log"
}

# PostgreSQL's and MariaDB's steps: edgeflag's cluster file on a throwaway server (tests/DIR, WITH
# starts it), then the Flipt-client suites on another; the cluster log's summary lines matching
# PATTERN are printed.
remote_db_steps() { # dir, with-script, pattern
  local dir=$1 with=$2 pattern=$3
  (cd "tests/$dir" && EDGEFLAG_BIN="$root/build/edgeflag" "./$with" node --test cluster.test.mjs) >"$root/build/$dir-cluster-tests.log" 2>&1 \
    || { failures "$root/build/$dir-cluster-tests.log"; exit 1; }
  grep -E "^# (tests|pass|fail)|^# .*($pattern)" "$root/build/$dir-cluster-tests.log"
  compat_on_store "$dir" "$with" client_engine.test.mjs flipt_sdk.test.mjs
}

pg_steps() {
  step "PostgreSQL: edgeflag on a throwaway PostgreSQL 15 (two nodes and NOTIFY pick-up, kill -9 under write load, export/import both ways, standby promotion; Flipt SDK and flipt-client-js suites)"
  remote_db_steps pg with-postgres.sh 'pick-up|kill -9|promotion'
}

mariadb_steps() {
  step "MariaDB: edgeflag on a throwaway MariaDB 10.11 (two nodes by polling, kill -9 under write load, export/import both ways; Flipt SDK and flipt-client-js suites)"
  remote_db_steps mysql with-mariadb.sh 'kill -9'
}

libsql_then_mariadb() { libsql_steps; mariadb_steps; }
beside "$root/build/db-lane.summary" libsql_then_mariadb pg_steps

step "web UI in headless Chromium (playwright-core): flags, rules, console, auth, primary+replica"
scripts/npm-ci.sh tests/e2e
node_tests e2e-tests tests/e2e serve.test.mjs ui.test.mjs cluster.test.mjs browser_sdk.test.mjs oidc.test.mjs picture.test.mjs

step "integration tests under TSan: JWT key sets replaced under verification, authentication, OIDC sign-ins answered from the exchange thread (make tsan adds the Flipt-client and cluster suites)"
scripts/sanitizer-suites.sh tsan quick

step "replication cluster on loopback: convergence, kill -9, restart, partition, trim, auth; audit events"
# The audit test spends most of its minute waiting for a webhook receiver that is down on purpose:
# it runs beside the other cluster files instead of after them.
audit_tests() { node_tests audit-tests tests/cluster audit_events.test.mjs; }
cluster_tests() {
  node_tests cluster-tests tests/cluster cluster.test.mjs faults.test.mjs waiting.test.mjs history.test.mjs upstream_bounds.test.mjs history_api.test.mjs recovery.test.mjs picture.test.mjs namespaces.test.mjs feed_memory.test.mjs shutdown.test.mjs
}
beside "$root/build/audit-tests.summary" audit_tests cluster_tests

step "TLS: HTTPS serving, certificate rotation, client certificates; replicas, flipt-client-js and OFREP over HTTPS; bad certificates refused"
node_tests tls-tests tests/compat tls.test.mjs
node_tests tls-cluster-tests tests/cluster tls.test.mjs

