#!/usr/bin/env bash
# Runs edgeflag with its database on the libSQL test peer: EDGEFLAG_BIN for suites written for the
# SQLite store (tests/compat), so they run unchanged against the libSQL backend. `--db PATH` of
# serve/import/export becomes `--db $EF_TEST_LIBSQL_URL/dev/<PATH as a name>` (a database of its
# own on the peer, as sqld's dev routing does), with the local cache at PATH.libsql-cache for serve
# and the default cache (under ./data of a scratch working directory) for import/export.
# Needs EF_TEST_LIBSQL_URL (tests/libsql/with-peer.sh) and EF_REAL_BIN (the edgeflag binary).
set -euo pipefail
: "${EF_TEST_LIBSQL_URL:?run under tests/libsql/with-peer.sh}" "${EF_REAL_BIN:?}"
cmd=${1:-}
args=("$@")
out=()
cache=
for ((i = 0; i < ${#args[@]}; i++)); do
  a=${args[i]}
  if [ "$a" = --db ] && [ $((i + 1)) -lt ${#args[@]} ] && [[ ${args[i + 1]} != *://* ]]; then
    p=$(realpath -m "${args[i + 1]}")
    name=$(printf '%s' "$p" | tr -c 'A-Za-z0-9' '_')
    out+=(--db "$EF_TEST_LIBSQL_URL/dev/$name")
    cache=$p.libsql-cache
    i=$((i + 1))
  elif [ "$cmd" != serve ] && [ -e "$a" ]; then
    out+=("$(realpath "$a")")
  else
    out+=("$a")
  fi
done
if [ "$cmd" = serve ] && [ -n "$cache" ]; then
  exec "$EF_REAL_BIN" "${out[@]}" --db-cache "$cache"
fi
if [ -n "$cache" ]; then
  # -o FILE of export is relative to the caller's directory: resolve it before moving
  for ((i = 0; i < ${#out[@]}; i++)); do
    if [ "${out[i]}" = -o ] && [ $((i + 1)) -lt ${#out[@]} ]; then out[i + 1]=$(realpath -m "${out[i + 1]}"); fi
  done
  mkdir -p "$cache.d" && cd "$cache.d"
fi
exec "$EF_REAL_BIN" "${out[@]}"
