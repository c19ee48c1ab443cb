# lib.sh - sourced by the CLI tests (tests/cli/*.sh): `check NAME COMMAND...` counts a pass or
# prints the failure, and `cli_done NAME` prints the counts and fails when any check did. A check
# never skips: a missing tool fails like any other condition.
pass=0 fail=0
check() { # name, condition...
  local name=$1; shift
  if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $name"; fi
}

cli_done() { # name
  echo "$1: $pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}
