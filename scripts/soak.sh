#!/usr/bin/env bash
# `make soak`: tests/crash/soak.mjs for SOAK_SECONDS (default 3600) against BUILD/edgeflag
# (default build): RSS, descriptors, errors and p99 over time, then the history invariants.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
SOAK_SECONDS=${SOAK_SECONDS:-3600} EDGEFLAG_BIN="$PWD/$build/edgeflag" node tests/crash/soak.mjs
