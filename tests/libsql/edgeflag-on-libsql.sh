#!/usr/bin/env bash
# Runs edgeflag with its database on a remote database: EDGEFLAG_BIN for suites written for the
# SQLite store (tests/compat), so they run unchanged against a remote backend. `--db PATH` of
# serve/import/export becomes a database of its own named after PATH: on the libSQL test peer
# (`$EF_TEST_LIBSQL_URL/dev/<name>`, as sqld's dev routing does) or, with EF_TEST_PG_URL set
# (tests/pg/with-postgres.sh), a PostgreSQL database created on first use, or with EF_TEST_MYSQL_URL
# (tests/mysql/with-mariadb.sh) a MariaDB database the same way. The local cache is at
# PATH.libsql-cache for serve and the default cache (under ./data of a scratch working directory)
# for import/export. Needs EF_TEST_LIBSQL_URL (tests/libsql/with-peer.sh) or EF_TEST_PG_URL, and
# EF_REAL_BIN (the edgeflag binary).
set -euo pipefail
: "${EF_REAL_BIN:?}"
[ -n "${EF_TEST_LIBSQL_URL:-}${EF_TEST_PG_URL:-}${EF_TEST_MYSQL_URL:-}" ] || { echo "run under tests/libsql/with-peer.sh, tests/pg/with-postgres.sh or tests/mysql/with-mariadb.sh" >&2; exit 2; }
remote_url() { # name
  if [ -n "${EF_TEST_PG_URL:-}" ]; then
    local db
    db=$(printf '%s' "$1" | tr 'A-Z' 'a-z' | tail -c 60)
    # CREATE DATABASE has no IF NOT EXISTS: "already exists" is fine, anything else is not
    if ! out=$(psql -X -q "$EF_TEST_PG_URL/postgres" -c "CREATE DATABASE \"$db\"" 2>&1) && [[ $out != *"already exists"* ]]; then
      echo "edgeflag-on-libsql: cannot create database $db: $out" >&2
      exit 1
    fi
    printf '%s/%s' "$EF_TEST_PG_URL" "$db"
  elif [ -n "${EF_TEST_MYSQL_URL:-}" ]; then
    local db port=${EF_TEST_MYSQL_URL##*:}
    db=$(printf '%s' "$1" | tail -c 60)
    mariadb --no-defaults -uroot -h127.0.0.1 -P"$port" -e "CREATE DATABASE IF NOT EXISTS \`$db\`" \
      || { echo "edgeflag-on-libsql: cannot create database $db" >&2; exit 1; }
    printf '%s/%s' "$EF_TEST_MYSQL_URL" "$db"
  else
    printf '%s/dev/%s' "$EF_TEST_LIBSQL_URL" "$1"
  fi
}
cmd=${1:-}
args=("$@")
out=()
cache=
for ((i = 0; i < ${#args[@]}; i++)); do
  a=${args[i]}
  if [ "$a" = --db ] && [ $((i + 1)) -lt ${#args[@]} ] && [[ ${args[i + 1]} != *://* ]]; then
    p=$(realpath -m "${args[i + 1]}")
    name=$(printf '%s' "$p" | tr -c 'A-Za-z0-9' '_')
    url=$(remote_url "$name") || exit 1
    out+=(--db "$url")
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
