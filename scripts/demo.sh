#!/usr/bin/env bash
# `make demo`: the three-region picture. A primary ("primary") and replicas named "iad" and "dfw"
# following it, and "lhr" chained behind iad, on loopback ports, each with its own SQLite file in a
# temporary directory. Prints the links to each node's UI and cluster picture, writes a flag
# through one replica and shows it on every node with the version each reports, then the
# propagation timeline of those writes as the primary saw them. Interactive runs keep the cluster
# up until Enter (open a /cluster link, edit a flag in another tab, watch it arrive everywhere);
# otherwise it stops at once. It never touches ./data.
set -euo pipefail
bin=${1:-build/edgeflag}
demo_name=edgeflag-demo
. "$(dirname "$0")/demo-common.sh"

start() { # name, extra args...: sets url
  local name=$1; shift
  serve_node "$name" "$bin" serve --listen 127.0.0.1:0 --db "$dir/$name.db" "$@"
}

start primary --name primary; primary=$url
start iad --name iad --upstream "$primary"; iad=$url
start dfw --name dfw --upstream "$primary"; dfw=$url
start lhr --name lhr --upstream "$iad"; lhr=$url
printf 'primary          %s/   cluster picture: %s/cluster\n' "$primary" "$primary"
printf 'iad (replica)    %s/   cluster picture: %s/cluster\n' "$iad" "$iad"
printf 'dfw (replica)    %s/   cluster picture: %s/cluster\n' "$dfw" "$dfw"
printf 'lhr (behind iad) %s/   cluster picture: %s/cluster\n\n' "$lhr" "$lhr"

show() { # what
  echo "== $1"
  for n in primary iad dfw lhr; do
    url=${!n}
    body=$(curl -s -D "$dir/h" "$url/api/v1/namespaces/default/flags/new-checkout")
    ver=$(tr -d '\r' <"$dir/h" | sed -n 's/^X-Edgeflag-Version: //Ip')
    printf '  %-7s version %-3s %s\n' "$n" "$ver" "$(echo "$body" | sed -E 's/.*"enabled":(true|false).*/enabled=\1/; s/.*"code":5.*/not found/')"
  done
}

show "before: nobody has flag new-checkout"
echo
echo "POST $lhr/api/v1/namespaces/default/flags  (a chained replica: forwarded up to the primary, answered after lhr applied it)"
curl -s -X POST "$lhr/api/v1/namespaces/default/flags" -d '{"key":"new-checkout","name":"New checkout","type":"BOOLEAN_FLAG_TYPE","enabled":false}' >/dev/null
sleep 0.1
show "after the write through lhr"
echo
echo "PUT  $dfw/api/v1/namespaces/default/flags/new-checkout  (enable it through the other replica)"
curl -s -X PUT "$dfw/api/v1/namespaces/default/flags/new-checkout" -d '{"name":"New checkout","enabled":true}' >/dev/null
sleep 0.1
show "after the update through dfw"
echo
sleep 1.2 # a report period: every node's apply times reach the primary
echo "== the cluster picture (GET /edgeflag/v1/cluster on the primary): nodes and propagation timelines"
curl -s "$primary/edgeflag/v1/cluster" | node -e '
let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
  const c = JSON.parse(s);
  for (const n of c.nodes) console.log(`  ${n.name.padEnd(8)} ${n.role.padEnd(8)} parent ${String(n.parent).padEnd(8)} v${n.version} ${n.state}`);
  for (const w of c.writes) console.log(`  write #${w.seq} ${w.what}: ` + w.applied.map((a) => `${a.node} ${a.ms.toFixed(1)} ms`).join(", "));
});' 2>/dev/null || curl -s "$primary/edgeflag/v1/cluster"
echo
if [ -t 0 ]; then
  echo
  read -r -p "cluster running; press Enter to stop it " _
fi
