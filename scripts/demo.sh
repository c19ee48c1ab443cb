#!/usr/bin/env bash
# `make demo`: a primary ("iad") and two replicas ("dfw", "lhr") on three loopback ports, each with
# its own SQLite file in a temporary directory. Prints their URLs, writes a flag through one
# replica and shows it on every node, with the version each node reports. Interactive runs keep the
# cluster up until Enter; otherwise it stops at once. It never touches ./data.
set -euo pipefail
bin=${1:-build/edgeflag}
dir=$(mktemp -d /tmp/edgeflag-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

start() { # name, extra args...
  local name=$1; shift
  "$bin" serve --listen 127.0.0.1:0 --db "$dir/$name.db" "$@" >"$dir/$name.out" 2>"$dir/$name.log" &
  pids+=($!)
  for _ in $(seq 100); do
    url=$(sed -n 's/^listening on //p' "$dir/$name.out")
    [ -n "$url" ] && { echo "$url"; return; }
    sleep 0.05
  done
  echo "demo: $name did not start:" >&2
  cat "$dir/$name.log" >&2
  exit 1
}

iad=$(start iad)
dfw=$(start dfw --upstream "$iad")
lhr=$(start lhr --upstream "$iad")
printf 'iad (primary)  %s\ndfw (replica)  %s\nlhr (replica)  %s\n\n' "$iad" "$dfw" "$lhr"

show() { # what
  echo "== $1"
  for n in iad dfw lhr; do
    url=${!n}
    body=$(curl -s -D "$dir/h" "$url/api/v1/namespaces/default/flags/new-checkout")
    ver=$(tr -d '\r' <"$dir/h" | sed -n 's/^X-Edgeflag-Version: //Ip')
    printf '  %-4s version %-3s %s\n' "$n" "$ver" "$(echo "$body" | sed -E 's/.*"enabled":(true|false).*/enabled=\1/; s/.*"code":5.*/not found/')"
  done
}

show "before: nobody has flag new-checkout"
echo
echo "POST $lhr/api/v1/namespaces/default/flags  (a replica: forwarded to iad, answered after lhr applied it)"
curl -s -X POST "$lhr/api/v1/namespaces/default/flags" -d '{"key":"new-checkout","name":"New checkout","type":"BOOLEAN_FLAG_TYPE","enabled":false}' >/dev/null
sleep 0.1
show "after the write through lhr"
echo
echo "PUT  $dfw/api/v1/namespaces/default/flags/new-checkout  (enable it through the other replica)"
curl -s -X PUT "$dfw/api/v1/namespaces/default/flags/new-checkout" -d '{"name":"New checkout","enabled":true}' >/dev/null
sleep 0.1
show "after the update through dfw"
echo
echo "== cluster status of lhr (GET /edgeflag/v1/cluster)"
curl -s "$lhr/edgeflag/v1/cluster"; echo
if [ -t 0 ]; then
  echo
  read -r -p "cluster running; press Enter to stop it " _
fi
