#!/usr/bin/env bash
# Runs a command with the Hrana test peer (peer.mjs) up: starts it on a free loopback port with its
# files in a fresh directory, exports EF_TEST_LIBSQL_URL and EF_TEST_LIBSQL_DIR, runs the command,
# and always stops the peer it started (by its pid) and removes its files.
# usage: with-peer.sh COMMAND [ARGS...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/../../scripts/npm-ci.sh" "$here" >/dev/null
dir=$(mktemp -d /tmp/ef-peer-XXXXXX)
node "$here/peer.mjs" --dir "$dir" --stream-expiry-ms "${EF_PEER_STREAM_EXPIRY_MS:-1000}" >"$dir/peer.log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
for _ in $(seq 100); do
  url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$dir/peer.log" || true)
  [ -n "$url" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$dir/peer.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "with-peer: the peer did not start" >&2; exit 1; }
EF_TEST_LIBSQL_URL=$url EF_TEST_LIBSQL_DIR=$dir "$@"
