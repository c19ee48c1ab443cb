#!/usr/bin/env bash
# Runs a command with a throwaway MariaDB 10.11 up: mariadb-install-db + mariadbd in a fresh
# temporary directory (as the unprivileged user `nobody` when run as root), on a free loopback
# port and a unix socket in that directory; root without a password. Exports EF_TEST_MYSQL_URL
# (mysql://root@127.0.0.1:PORT), EF_TEST_MYSQL_DIR and EF_TEST_MYSQL_PID (the server's pid, for
# fault tests), runs the command, and always stops the server it started (by its pid) and removes
# its files. A server that cannot start fails the run with its log: nothing is skipped.
# usage: with-mariadb.sh COMMAND [ARGS...]
set -euo pipefail
for t in mariadb-install-db mariadbd mariadb; do
  command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] || { echo "with-mariadb: $t is missing (scripts/install-deps.sh test installs mariadb-server)" >&2; exit 1; }
done
mariadbd=$(command -v mariadbd || echo /usr/sbin/mariadbd)
dir=$(mktemp -d /tmp/ef-mariadb-XXXXXX)
chmod 755 "$dir"
user=$(id -un)
[ "$(id -u)" -eq 0 ] && { chown nobody "$dir"; user=nobody; }
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
mariadb-install-db --no-defaults --datadir="$dir/data" --user="$user" --auth-root-authentication-method=normal \
  --skip-test-db >"$dir/install.log" 2>&1 || { cat "$dir/install.log" >&2; echo "with-mariadb: mariadb-install-db failed" >&2; exit 1; }
start() { # port
  "$mariadbd" --no-defaults --datadir="$dir/data" --user="$user" --port="$1" --bind-address=127.0.0.1 \
    --socket="$dir/sock" --pid-file="$dir/pid" --log-error="$dir/server.log" --skip-name-resolve \
    --innodb-buffer-pool-size=32M --innodb-log-file-size=16M --max-connections=300 >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 300); do
    if mariadb --no-defaults -uroot -h127.0.0.1 -P"$1" -e 'SELECT 1' >/dev/null 2>&1; then return 0; fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
started=
for _ in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 12768)) # below the ephemeral range (tests/compat/ports.mjs)
  if start "$port"; then started=1; break; fi
  kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=
done
[ -n "$started" ] || { cat "$dir/server.log" >&2; echo "with-mariadb: the server did not start" >&2; exit 1; }
export EF_TEST_MYSQL_URL="mysql://root@127.0.0.1:$port"
export EF_TEST_MYSQL_DIR="$dir"
export EF_TEST_MYSQL_PID="$pid"
"$@"
