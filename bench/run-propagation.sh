#!/usr/bin/env bash
# Replication propagation (`make bench`): time from the primary's acknowledgement of a write until
# each of 10 replicas serves it, on loopback and through a proxy adding 50 ms (bench/propagation.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
EDGEFLAG_BIN=${EDGEFLAG_BIN:-build/edgeflag} node bench/propagation.mjs --replicas 10 --writes 1000 --delay 50 --delayed-writes 300
