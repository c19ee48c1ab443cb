#!/usr/bin/env bash
# The recovery point of continuous backup under write load (bench/backup_bench.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/npm-ci.sh tests/backup >/dev/null
node bench/backup_bench.mjs --build build --seconds "${BACKUP_BENCH_SECONDS:-8}"
