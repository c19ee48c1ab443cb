#!/usr/bin/env bash
# Replication propagation (`make bench`): time from the primary's acknowledgement of a write until
# each replica serves it, on loopback and through a proxy adding 50 ms (bench/propagation.mjs).
# The loopback figures use the C client (bench/bench_propagation.c, far lighter than node's): 1 and
# 10 replicas, with 200 and 10,000 flags in the primary's namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${EDGEFLAG_BIN:-build/edgeflag}
CLIENT=${BENCH_PROPAGATION:-$(dirname "$BIN")/bench/bench_propagation}
for flags in 200 10000; do
  for replicas in 1 10; do
    EDGEFLAG_BIN=$BIN node bench/propagation.mjs --replicas "$replicas" --writes 1000 --flags "$flags" \
      --delayed-writes 0 --client "$CLIENT"
  done
done
EDGEFLAG_BIN=$BIN node bench/propagation.mjs --replicas 10 --writes 0 --delay 50 --delayed-writes 300
