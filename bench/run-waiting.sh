#!/usr/bin/env bash
# Evaluation latency on a replica with 1,000 requests waiting for a version and 100 forwarded writes
# waiting for a slow upstream, next to the idle figure (bench/waiting_bench.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
node bench/waiting_bench.mjs --build "${BUILD:-build}"
