#!/usr/bin/env bash
# libSQL store: write latency and change pick-up time through the Hrana test peer, next to the
# local SQLite store (bench/libsql_bench.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/npm-ci.sh tests/libsql >/dev/null
EDGEFLAG_BIN=${EDGEFLAG_BIN:-build/edgeflag} node bench/libsql_bench.mjs "$@"
