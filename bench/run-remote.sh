#!/usr/bin/env bash
# PostgreSQL and MariaDB stores: write latency and other-node pick-up per backend next to the local
# SQLite store (bench/remote_bench.mjs), on throwaway servers started by the test scripts.
set -euo pipefail
cd "$(dirname "$0")/.."
export EDGEFLAG_BIN=${EDGEFLAG_BIN:-$PWD/build/edgeflag}
tests/pg/with-postgres.sh tests/mysql/with-mariadb.sh node bench/remote_bench.mjs "$@"
