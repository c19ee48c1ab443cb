#!/usr/bin/env bash
# `make demo-libsql`: the libSQL test server (tests/libsql/peer.mjs, Hrana over HTTP on the real
# libSQL engine) and two edgeflag nodes on that one database, "iad" and "lhr", with their UIs.
# Writes a flag on iad and shows it evaluated on lhr within the poll interval, then the other way.
# Interactive runs keep everything up until Enter; otherwise it stops at once. It never touches
# ./data (each node's cache lives in the temporary directory).
set -euo pipefail
bin=${1:-build/edgeflag}
cd "$(dirname "$0")/.."
scripts/npm-ci.sh tests/libsql >/dev/null
demo_name=edgeflag-demo-libsql
. scripts/demo-common.sh

serve_node peer node tests/libsql/peer.mjs --db "$dir/turso.db"; db=$url
start() { # name: sets url
  serve_node "$1" "$bin" serve --listen 127.0.0.1:0 --db "$db" --db-cache "$dir/$1-cache.db" --db-poll 500
}
start iad; iad=$url
start lhr; lhr=$url
printf 'libSQL server  %s  (file %s)\niad            %s  (UI: %s/)\nlhr            %s  (UI: %s/)\n\n' \
  "$db" "$dir/turso.db" "$iad" "$iad" "$lhr" "$lhr"

watch_lhr() { # what, want
  local t0=$(date +%s%N)
  for _ in $(seq 100); do
    curl -s -X POST "$lhr/evaluate/v1/boolean" -d '{"namespaceKey":"default","flagKey":"new-checkout","entityId":"u1"}' | grep -q "\"enabled\":$1" && break
    sleep 0.02
  done
  echo "  lhr saw it after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
}

echo "== before"
evaluate iad "$iad"; evaluate lhr "$lhr"
echo
echo "POST $iad/api/v1/namespaces/default/flags  (committed to the libSQL database in one batch)"
curl -s -X POST "$iad/api/v1/namespaces/default/flags" -d '{"key":"new-checkout","name":"New checkout","type":"BOOLEAN_FLAG_TYPE","enabled":true}' >/dev/null
watch_lhr true
evaluate iad "$iad"; evaluate lhr "$lhr"
echo
echo "PUT  $lhr/api/v1/namespaces/default/flags/new-checkout  (disable it through the other node)"
curl -s -X PUT "$lhr/api/v1/namespaces/default/flags/new-checkout" -d '{"name":"New checkout","type":"BOOLEAN_FLAG_TYPE","enabled":false}' >/dev/null
sleep 0.7
evaluate iad "$iad"; evaluate lhr "$lhr"
echo
echo "== the database of record: sqlite3 $dir/turso.db"
sqlite3 "$dir/turso.db" "SELECT 'seq ' || seq FROM ef_state; SELECT 'flag ' || key || ' enabled=' || enabled FROM flags;" 2>/dev/null || true
if [ -t 0 ]; then
  echo
  read -r -p "running; open the UIs above, change a flag on one and watch the other. Enter stops " _
fi
