#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL 15 up: initdb + pg_ctl in a fresh temporary directory
# (as the unprivileged user `nobody` when run as root: PostgreSQL refuses to run as root), on a
# free loopback port and a unix socket in that directory, trust authentication for user edgeflag.
# Exports EF_TEST_PG_URL (postgresql://edgeflag@127.0.0.1:PORT), EF_TEST_PG_DIR (the data
# directory's parent) and EF_TEST_PG_CTL (a command that runs pg_ctl on this server: "stop -m
# immediate", "start"), EF_TEST_PG_BIN (the server's binaries) and EF_TEST_PG_AS (the command prefix
# that runs them as the unprivileged user, empty when not root), runs the command, and always stops the server it started and removes its
# files. A server that cannot start fails the run with its log: nothing is skipped.
# usage: with-postgres.sh COMMAND [ARGS...]
set -euo pipefail
bin=${EF_PG_BIN:-/usr/lib/postgresql/15/bin}
for t in initdb pg_ctl postgres; do
  [ -x "$bin/$t" ] || { echo "with-postgres: $bin/$t is missing (scripts/install-deps.sh test installs postgresql-15)" >&2; exit 1; }
done
dir=$(mktemp -d /tmp/ef-pg-XXXXXX)
chmod 755 "$dir"
as=()
if [ "$(id -u)" -eq 0 ]; then
  chown nobody "$dir"
  as=(runuser -u nobody --)
fi
cleanup() {
  "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
"${as[@]}" "$bin/initdb" -D "$dir/data" -U edgeflag --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; echo "with-postgres: initdb failed" >&2; exit 1; }
# pick a free port; a race with another process is retried with another one
started=
for _ in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 12768)) # below the ephemeral range (tests/compat/ports.mjs)
  if "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
       -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200 -c wal_level=replica -c max_wal_senders=4" \
       start >/dev/null 2>&1; then
    started=1
    break
  fi
done
[ -n "$started" ] || { cat "$dir/server.log" >&2; echo "with-postgres: the server did not start" >&2; exit 1; }
printf '%s\n' "$port" >"$dir/port"
export EF_TEST_PG_URL="postgresql://edgeflag@127.0.0.1:$port"
export EF_TEST_PG_DIR="$dir"
export EF_TEST_PG_BIN="$bin"
export EF_TEST_PG_AS="${as[*]}"
export EF_TEST_PG_CTL="${as[*]} $bin/pg_ctl -D $dir/data -l $dir/server.log -w -t 30 -o '-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200 -c wal_level=replica -c max_wal_senders=4'"
"$@"
