#!/usr/bin/env bash
# `make crash`: SIGKILL cycles against a primary under write load and a replica under replication
# load (tests/crash/crash.mjs; CRASH_CYCLES per phase, default 1000), then the store-level kill test
# (tests/crash/crash_store.c) with as many rounds. Needs a built edgeflag (BUILD, default build).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
cycles=${CRASH_CYCLES:-1000}
command -v sqlite3 >/dev/null || { echo "crash.sh: the sqlite3 CLI is needed to check the databases" >&2; exit 1; }
EDGEFLAG_BIN="$PWD/$build/edgeflag" node tests/crash/crash.mjs "$cycles"
if [ -x "$build/tests/unit/crash_store" ]; then
  "$build/tests/unit/crash_store" "$cycles"
else
  echo "crash.sh: $build/tests/unit/crash_store is not built" >&2; exit 1
fi
