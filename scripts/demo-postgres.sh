#!/usr/bin/env bash
# `make demo-postgres`: a throwaway PostgreSQL 15 (tests/pg/with-postgres.sh) and two edgeflag
# nodes on that one database, "iad" and "lhr", with their UIs. Writes a flag on iad and shows it
# evaluated on lhr (LISTEN/NOTIFY: milliseconds, not a poll), then the other way. Interactive runs
# keep everything up until Enter; otherwise it stops at once. It never touches ./data (each node's
# cache lives in a temporary directory) and stops only what it started.
set -euo pipefail
bin=$(realpath "${1:-build/edgeflag}")
cd "$(dirname "$0")/.."
if [ -z "${EF_TEST_PG_URL:-}" ]; then exec tests/pg/with-postgres.sh "$0" "$bin"; fi
demo_name=edgeflag-demo-postgres
. scripts/demo-common.sh
psql -X -q "$EF_TEST_PG_URL/postgres" -c 'CREATE DATABASE flags'
db="$EF_TEST_PG_URL/flags"

start() { # name: sets url
  serve_node "$1" "$bin" serve --listen 127.0.0.1:0 --db "$db" --db-cache "$dir/$1-cache.db"
}
start iad; iad=$url
start lhr; lhr=$url
printf 'PostgreSQL  %s\niad         %s  (UI: %s/)\nlhr         %s  (UI: %s/)\n\n' "$db" "$iad" "$iad" "$lhr" "$lhr"

watch() { # node name, url, want
  local t0=$(date +%s%N)
  for _ in $(seq 500); do
    curl -s -X POST "$2/evaluate/v1/boolean" -d '{"namespaceKey":"default","flagKey":"new-checkout","entityId":"u1"}' | grep -q "\"enabled\":$3" && break
    sleep 0.002
  done
  echo "  $1 saw it after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
}

echo "== before"
evaluate iad "$iad"; evaluate lhr "$lhr"
echo
echo "POST $iad/api/v1/namespaces/default/flags  (one PostgreSQL transaction, NOTIFY on commit)"
curl -s -X POST "$iad/api/v1/namespaces/default/flags" -d '{"key":"new-checkout","name":"New checkout","type":"BOOLEAN_FLAG_TYPE","enabled":true}' >/dev/null
watch lhr "$lhr" true
evaluate iad "$iad"; evaluate lhr "$lhr"
echo
echo "PUT  $lhr/api/v1/namespaces/default/flags/new-checkout  (disable it through the other node)"
curl -s -X PUT "$lhr/api/v1/namespaces/default/flags/new-checkout" -d '{"name":"New checkout","type":"BOOLEAN_FLAG_TYPE","enabled":false}' >/dev/null
watch iad "$iad" false
evaluate iad "$iad"; evaluate lhr "$lhr"
echo
echo "== the database of record: psql $db"
psql -X "$db" -c 'SELECT seq FROM ef_state' -c 'SELECT key, enabled FROM flags'
if [ -t 0 ]; then
  echo
  read -r -p "running; open the UIs above, change a flag on one and watch the other. Enter stops " _
fi
