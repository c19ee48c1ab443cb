#!/usr/bin/env bash
# Replication propagation (`make bench`): time from the primary's acknowledgement of a write until
# each replica serves it, on loopback and through a proxy adding 50 ms (bench/propagation.mjs).
# The loopback figures use the C client (bench/bench_propagation.c, far lighter than node's): 1 and
# 10 replicas, with 200 and 10,000 flags in the primary's namespace (and 1 replica at 100,000). Ten replicas and a primary on
# two cores are CPU-bound, and this VM's speed drifts from minute to minute: each 10-replica run is
# made ROUNDS times (default 3) and its p99s are printed together, with their median.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${EDGEFLAG_BIN:-build/edgeflag}
CLIENT=${BENCH_PROPAGATION:-$(dirname "$BIN")/bench/bench_propagation}
ROUNDS=${ROUNDS:-3}
summary=""
for flags in 200 10000; do
  for replicas in 1 10; do
    rounds=1
    [ "$replicas" -gt 1 ] && rounds=$ROUNDS
    p99s=""
    for ((r = 0; r < rounds; r++)); do
      out=$(EDGEFLAG_BIN=$BIN node bench/propagation.mjs --replicas "$replicas" --writes 1000 --flags "$flags" \
        --delayed-writes 0 --client "$CLIENT")
      echo "$out"
      p99s="$p99s $(echo "$out" | awk '/ack -> every replica/ {for (i = 1; i <= NF; i++) if ($i == "p99") print $(i + 1)}')"
    done
    if [ "$rounds" -gt 1 ]; then
      summary="$summary$(echo "$p99s" | tr ' ' '\n' | grep . | sort -g | awk -v f="$flags" -v r="$replicas" \
        '{v[NR] = $1; s = s (NR > 1 ? " / " : "") $1} END {printf "loopback, %s replicas, %s flags: ack -> every replica p99 over %d runs: %s ms, median %s ms\n", r, f, NR, s, v[int((NR + 1) / 2)]}')"$'\n'
    fi
  done
done
# 100,000 flags, one replica: the figures issue 11 asks to report at that size
EDGEFLAG_BIN=$BIN node bench/propagation.mjs --replicas 1 --writes 1000 --flags 100000 --delayed-writes 0 --client "$CLIENT"
EDGEFLAG_BIN=$BIN node bench/propagation.mjs --replicas 10 --writes 0 --delay 50 --delayed-writes 300
printf '%s' "$summary"
