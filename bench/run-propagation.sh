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
# p99_line REPLICAS FLAGS WHAT "P99 P99 ...": the runs' p99s in order, and their median
p99_line() {
  echo "$4" | tr ' ' '\n' | grep . | sort -g | awk -v r="$1" -v f="$2" -v w="$3" \
    '{v[NR] = $1; s = s (NR > 1 ? " / " : "") $1} END {printf "loopback, %s replicas, %s flags: %s p99 over %d runs: %s ms, median %s ms\n", r, f, w, NR, s, v[int((NR + 1) / 2)]}'
}
# p99_of OUTPUT WHAT: the p99 on propagation.mjs's line for WHAT
p99_of() {
  echo "$1" | awk -v w="$2" 'index($0, w) {for (i = 1; i <= NF; i++) if ($i == "p99") print $(i + 1)}'
}
for flags in 200 10000; do
  for replicas in 1 10; do
    rounds=1
    [ "$replicas" -gt 1 ] && rounds=$ROUNDS
    p99s=""
    whole=""
    for ((r = 0; r < rounds; r++)); do
      out=$(EDGEFLAG_BIN=$BIN node bench/propagation.mjs --replicas "$replicas" --writes 1000 --flags "$flags" \
        --delayed-writes 0 --client "$CLIENT")
      echo "$out"
      p99s="$p99s $(p99_of "$out" "ack -> every replica")"
      whole="$whole $(p99_of "$out" "sent -> every replica")"
    done
    if [ "$rounds" -gt 1 ]; then
      summary="$summary$(p99_line "$replicas" "$flags" "ack -> every replica" "$p99s")"$'\n'
      summary="$summary$(p99_line "$replicas" "$flags" "sent -> every replica" "$whole")"$'\n'
    fi
  done
done
# 100,000 flags, one replica: the figures issue 11 asks to report at that size
EDGEFLAG_BIN=$BIN node bench/propagation.mjs --replicas 1 --writes 1000 --flags 100000 --delayed-writes 0 --client "$CLIENT"
EDGEFLAG_BIN=$BIN node bench/propagation.mjs --replicas 10 --writes 0 --delay 50 --delayed-writes 300
printf '%s' "$summary"
