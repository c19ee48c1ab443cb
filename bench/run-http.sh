#!/usr/bin/env bash
# HTTP: /evaluate/v1/variant next to nginx returning a fixed body of the same size, server and wrk
# pinned to separate cores; batch of 100; resident memory idle and under load (bench/http_bench.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
node bench/http_bench.mjs --build "${BUILD:-build}"
