#!/usr/bin/env bash
# `make soak`: tests/crash/soak.mjs for SOAK_SECONDS (default 3600) against BUILD/edgeflag
# (default build) and its client_eval (libedgeflag): RSS, descriptors, errors and p99 over time, then the history invariants.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
SOAK_SECONDS=${SOAK_SECONDS:-3600} EDGEFLAG_BIN="$PWD/$build/edgeflag" EDGEFLAG_CLIENT_EVAL="$PWD/$build/client_eval" node tests/crash/soak.mjs
