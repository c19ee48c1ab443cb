#!/usr/bin/env bash
# HTTP: /evaluate/v1/variant next to nginx returning a fixed body of the same size, server and wrk
# pinned to separate cores; batch of 100; resident memory idle and under load (bench/http_bench.mjs).
# libmicrohttpd alone is also measured with 250, 500 and 1,000 ns of computation added to each
# request: on the host the run is on, what a server's own work costs against nginx.
set -euo pipefail
cd "$(dirname "$0")/.."
node bench/http_bench.mjs --build "${BUILD:-build}" --floor-spin 250,500,1000
