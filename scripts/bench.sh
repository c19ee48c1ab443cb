#!/usr/bin/env bash
# Benchmarks (`make bench`): print figures next to a reference measured in the same run. Nothing
# here asserts on time; the numbers go into README.md's performance section.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/npm-ci.sh tests/compat >/dev/null

echo "== evaluation engine vs Flipt's engine"
node bench/eval_bench.mjs --build build --threads 1,2

# Further benchmarks register themselves here: any executable bench/run-*.sh is run in order.
for b in bench/run-*.sh; do
  [ -x "$b" ] || continue
  echo
  echo "== $(basename "$b" .sh | sed 's/^run-//')"
  "$b"
done
