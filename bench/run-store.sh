#!/usr/bin/env bash
# The store, for 10, 10,000 and 100,000 flags in one namespace: import, load + compile + publish,
# one-flag update acknowledged + published (p50, p99) and its ratio to the 10-flag figure, the
# durable write alone, and RSS after 1,000 writes next to the compiled snapshot size; then a
# replica's cost per applied entry (one-flag updates) at 200 and 10,000 flags.
set -euo pipefail
cd "$(dirname "$0")/.."
"${BUILD:-build}/bench/bench_store" 10 10000
"${BUILD:-build}/bench/bench_store" --writes 200 100000
"${BUILD:-build}/bench/bench_store" --writes 300 --namespaces 1000 100
"${BUILD:-build}/bench/bench_store" --apply --writes 1000 200 10000
