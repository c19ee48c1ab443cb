#!/usr/bin/env bash
# The store: import and compile of 10,000 flags, single-flag write latency (median, p99) with and
# without the namespace recompile, and the memory of a compiled 10,000-flag namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
"${BUILD:-build}/bench/bench_store" 10000
