#!/usr/bin/env bash
# Runs a command against `tursodb --sync-server` (npm turso), whose /v2/pipeline handles only
# execute and batch: exports EF_TEST_LIBSQL_URL and EF_TEST_HRANA_SUBSET=1 (tests skip what it
# lacks: streams, decltypes), runs the command, and always stops the server it started (by pid).
# turso is installed with `npm install` (not `npm ci`: its lockfile would name platform packages
# the registry does not have). usage: with-tursodb.sh COMMAND [ARGS...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)/tursodb
bin=$here/node_modules/@tursodatabase/cli-linux-x64-gnu/tursodb
if [ ! -x "$bin" ]; then
  (cd "$here" && npm install --no-audit --no-fund --loglevel=error --no-package-lock >/dev/null)
fi
dir=$(mktemp -d /tmp/ef-tursodb-XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" "$dir/db" --sync-server "127.0.0.1:$port" </dev/null >"$dir/log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
for _ in $(seq 100); do
  curl -s -o /dev/null -X POST -d '{"requests":[]}' "http://127.0.0.1:$port/v2/pipeline" && break
  kill -0 "$pid" 2>/dev/null || { cat "$dir/log" >&2; exit 1; }
  sleep 0.1
done
EF_TEST_LIBSQL_URL=http://127.0.0.1:$port EF_TEST_HRANA_SUBSET=1 "$@"
