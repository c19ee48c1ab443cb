#!/usr/bin/env bash
# Scale (`make bench`, issue 11): 200, 10,000 and 100,000 flags in one namespace and 1,000
# namespaces of 100, through `edgeflag import`, a primary and one replica that starts empty
# (import, start, bootstrap, equal answers, write propagation, RSS); then the engine's evaluation
# time as the flag count grows (bench/scale_bench.mjs); then four replicas bootstrapping from a
# 100,000-flag primary at once, and the primary's peak memory while it sends them the dump
# (bench/fleet_bootstrap.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
node bench/scale_bench.mjs --build "${BUILD:-build}"
node bench/fleet_bootstrap.mjs --build "${BUILD:-build}" --flags 100000 --replicas 4
