#!/usr/bin/env bash
# The cost of evaluation activity counting to the engine (bench/activity_bench.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
node bench/activity_bench.mjs --build build --rounds "${ACTIVITY_ROUNDS:-3}"
