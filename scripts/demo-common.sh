# demo-common.sh - sourced by the demo scripts (demo.sh, demo-libsql.sh, demo-postgres.sh): a
# temporary directory removed on exit together with every process the demo recorded in pids, and
# waiting for a server's "listening on URL" line, and printing how a node evaluates the demo flag. It never stops a process the demo did not start.
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
    url=$(sed -n 's/^listening on //p' "$2" 2>/dev/null) || true  # the server may not have opened it yet
    [ -n "$url" ] && { echo "$url"; return; }
    sleep 0.05
  done
  echo "demo: $1 did not start:" >&2
  cat "$dir/$1.log" >&2
  exit 1
}

# serve_node NAME COMMAND...: starts a server in the background, its pid recorded in pids, and
# sets url once it listens. Called as a plain command, never in $(...): a pid recorded in a
# subshell is lost to cleanup, and the demo would leave its servers running.
serve_node() {
  local name=$1; shift
  "$@" >"$dir/$name.out" 2>"$dir/$name.log" &
  pids+=($!)
  url=$(wait_url "$name" "$dir/$name.out")
}

evaluate() { # node name, url: the two-node demos' flag "new-checkout" as that node evaluates it
  printf '  %-4s %s\n' "$1" "$(curl -s -X POST "$2/evaluate/v1/boolean" \
    -d '{"namespaceKey":"default","flagKey":"new-checkout","entityId":"u1"}' |
    sed -E 's/.*"enabled":(true|false).*/enabled=\1/; s/.*"code":5.*/not found/')"
}
