#!/usr/bin/env bash
# `edgeflag eval` end to end: answers in order, bad lines get a code-3 error line and the run goes
# on, a namespace other than the snapshot's finds nothing, and an unreadable or invalid snapshot
# stops with exit status 2 and a message naming the file, line and column.
set -u
bin=${1:?usage: eval_cli.sh path/to/edgeflag}
src=$(cd "$(dirname "$0")/../.." && pwd)
snap="$src/tests/compat/examples/snapshot.json"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/lib.sh"

printf '%s\n' \
  '{"type":"variant","flagKey":"checkout","entityId":"vip-1","context":{}}' \
  'not json' \
  '{"type":"boolean","flagKey":"dark-mode","entityId":"x","context":{"email":"a@example.com"}}' \
  '{"type":"variant","flagKey":"checkout","entityId":"x","context":{"n":1}}' \
  '{"type":"frob","flagKey":"checkout","entityId":"x"}' \
  '{"type":"batch","flagKey":"nope","entityId":"x","namespaceKey":"other"}' \
  '{"flagKey":"checkout","entityId":"x","requestId":"r-1"}' >"$tmp/in"
"$bin" eval --snapshot "$snap" <"$tmp/in" >"$tmp/out"
check "exit status 0" test $? -eq 0
check "one line per input" test "$(wc -l <"$tmp/out")" -eq 7
check "variant answer" grep -q '"variantKey":"legacy"' <(sed -n 1p "$tmp/out")
check "bad JSON is a code-3 line" grep -q '^{"code":3,' <(sed -n 2p "$tmp/out")
check "boolean answer after the bad line" grep -q '"enabled":true' <(sed -n 3p "$tmp/out")
check "non-string context value" grep -q '"code":3' <(sed -n 4p "$tmp/out")
check "unknown type" grep -q '"code":3' <(sed -n 5p "$tmp/out")
check "batch in another namespace" grep -q '"namespaceKey":"other","reason":"NOT_FOUND' <(sed -n 6p "$tmp/out")
check "requestId echoed" grep -q '"requestId":"r-1"' <(sed -n 7p "$tmp/out")

echo '{"type":"variant","flagKey":"checkout","entityId":"x"}' | "$bin" eval --snapshot "$snap" --namespace other >"$tmp/out2"
check "other namespace: not found" grep -q '"code":5,"message":"flag \\"other/checkout\\" not found"' "$tmp/out2"

printf '{"namespace":{"key":"d"},\n "flags":[{"key":"f","name":"f","enabled":"yes"}]}\n' >"$tmp/bad.json"
"$bin" eval --snapshot "$tmp/bad.json" </dev/null >/dev/null 2>"$tmp/err"
check "invalid snapshot: exit 2" test $? -eq 2
check "invalid snapshot: file:line:column" grep -q "bad.json:2:43: invalid snapshot: flags\[0\].enabled: expected a boolean" "$tmp/err"
printf '{"namespace":{"key":"d"},\n "flags":[}' >"$tmp/broken.json"
"$bin" eval --snapshot "$tmp/broken.json" </dev/null >/dev/null 2>"$tmp/err"
check "broken JSON: exit 2" test $? -eq 2
check "broken JSON: position" grep -q "broken.json:2:11: invalid JSON" "$tmp/err"
"$bin" eval --snapshot "$tmp/missing.json" </dev/null >/dev/null 2>"$tmp/err"
check "missing file: exit 2" test $? -eq 2
check "missing file: named" grep -q "missing.json: No such file" "$tmp/err"
"$bin" eval </dev/null >/dev/null 2>&1
check "usage error: exit 2" test $? -eq 2

cli_done eval_cli
