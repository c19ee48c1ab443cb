# demo-common.sh - sourced by the demo scripts (demo.sh, demo-libsql.sh, demo-postgres.sh): a
# temporary directory removed on exit together with every process the demo recorded in pids, and
# waiting for a server's "listening on URL" line. It never stops a process the demo did not start.
dir=$(mktemp -d "/tmp/${demo_name:-edgeflag-demo}.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

wait_url() { # name, file: prints the URL the server announced in file, or fails with its log
  for _ in $(seq 200); do
    url=$(sed -n 's/^listening on //p' "$2")
    [ -n "$url" ] && { echo "$url"; return; }
    sleep 0.05
  done
  echo "demo: $1 did not start:" >&2
  cat "$dir/$1.log" >&2
  exit 1
}
