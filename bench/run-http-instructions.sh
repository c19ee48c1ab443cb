#!/usr/bin/env bash
# HTTP: instructions per /evaluate/v1/variant request under callgrind, on a primary --db and
# --snapshot (bench/http_instructions.mjs): a figure that does not move with the machine's load.
set -euo pipefail
cd "$(dirname "$0")/.."
node bench/http_instructions.mjs --build "${BUILD:-build}"
