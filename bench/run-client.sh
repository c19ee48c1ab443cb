#!/usr/bin/env bash
# libedgeflag: ns per evaluation through the library (1 and 2 threads) next to the bare engine,
# HTTP evaluation against a local node and Flipt's engine; propagation p50/p99 (bench/client_bench.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
node bench/client_bench.mjs --build "${BUILD:-build}"
