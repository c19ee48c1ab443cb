#!/usr/bin/env bash
# `make fuzz`: builds every libFuzzer target of tests/fuzz/ (tests/fuzz/fuzz.cmake) with clang,
# ASan + UBSan and fuzzer instrumentation of edgeflag's own libraries, in build-fuzz/, and runs each
# for FUZZ_SECONDS (default 60) starting from its committed seed corpus, then prints a table of
# executions and execs/s per target. Any crash, leak, timeout or sanitizer report fails the run;
# the input is kept in build-fuzz/crashes/.
#
#   FUZZ_SECONDS=N     seconds per target (default 60)
#   FUZZ_TARGETS="a b" only these targets (default: all)
#   FUZZ_JOBS=N        targets run in parallel (default 1: the machine may be shared)
#   FUZZ_MERGE=1       afterwards, merge what each run found into tests/fuzz/corpus/<dir>/
#                      (libFuzzer -merge=1: only inputs that add coverage, files under 64 KiB)
#
# It never writes to the committed corpora unless FUZZ_MERGE=1, and never runs longer than asked.
#
# Leaks: libFuzzer checks for a leak after an input whose mallocs outnumber its frees, by running
# LeakSanitizer over the whole heap. In the targets listed in `deferred` below, memory is freed by
# other threads after the input returns (the server's connection threads, liburcu's call_rcu
# thread), so nearly every input looks unbalanced and the heap scans took 60-80 % of the time
# (fuzz_client 1.8k -> 9k execs/s without them). Those run with -detect_leaks=0, which keeps
# LeakSanitizer's check at exit: a leak still fails the run, with the allocation's stack, but the
# input that caused it is not saved (replay the corpus with -detect_leaks=1 -runs=0 to find it).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-60}
out=build-fuzz
jobs=${FUZZ_JOBS:-1}
command -v clang >/dev/null || { echo "fuzz: clang is missing (make test-deps installs it)" >&2; exit 1; }

# target -> its corpus directory under tests/fuzz/corpus/
declare -A corpus=([fuzz_json]=json [fuzz_eval_request]=request [fuzz_decl]=decl [fuzz_hrana]=hrana [fuzz_rdb]=rdb
  [fuzz_sse]=sse [fuzz_snapshot]=snapshot [fuzz_client]=client [fuzz_replication]=replication
  [fuzz_http]=http [fuzz_mgmt]=mgmt [fuzz_jwt]=jwt [fuzz_audit]=audit [fuzz_cluster_view]=cluster_view [fuzz_activity_report]=activity [fuzz_backup]=backup [fuzz_cookie]=cookie)
all="fuzz_json fuzz_eval_request fuzz_decl fuzz_hrana fuzz_rdb fuzz_sse fuzz_snapshot fuzz_client fuzz_replication fuzz_http fuzz_mgmt fuzz_jwt fuzz_audit fuzz_cluster_view fuzz_activity_report fuzz_backup fuzz_cookie"
targets=${FUZZ_TARGETS:-$all}
deferred=" fuzz_http fuzz_mgmt fuzz_replication fuzz_client fuzz_snapshot "

cflags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -Wno-unknown-warning-option"
if [ ! -f "$out/build.ninja" ] || ! grep -q "EF_FUZZ:BOOL=ON" "$out/CMakeCache.txt" 2>/dev/null; then
  CC=clang cmake -S . -B "$out" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEF_FUZZ=ON \
    -DCMAKE_C_FLAGS="$cflags" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" >/dev/null
fi
# shellcheck disable=SC2086
cmake --build "$out" --target $targets

mkdir -p "$out/crashes" "$out/logs"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_one() {
  local t=$1 work="$out/corpus-$1" log="$out/logs/$1.log"
  mkdir -p "$work"
  cp -n tests/fuzz/corpus/${corpus[$t]}/* "$work/" 2>/dev/null || true
  local dict=()
  [ -f "tests/fuzz/${corpus[$t]}.dict" ] && dict=(-dict="tests/fuzz/${corpus[$t]}.dict")
  local leaks=1
  [[ "$deferred" == *" $t "* ]] && leaks=0
  # -timeout: one input taking over 10 s is a finding (a hang), as is a leak or an rss over 2 GiB
  if "$out/fuzz/$t" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -detect_leaks=$leaks "${dict[@]}" -artifact_prefix="$out/crashes/$t-" "$work" >"$log" 2>&1; then
    echo ok >"$log.status"
  else
    echo failed >"$log.status"
  fi
}

pids=()
for t in $targets; do
  [ -n "${corpus[$t]:-}" ] || { echo "fuzz: unknown target $t" >&2; exit 1; }
  echo "==> $t (${secs}s)"
  run_one "$t" &
  pids+=($!)
  if [ "${#pids[@]}" -ge "$jobs" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p"; done

failed=0
printf '%-18s %12s %9s %6s %6s  %s\n' target executions execs/s cov corpus result
for t in $targets; do
  log="$out/logs/$t.log"
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  n=$(find "$out/corpus-$t" -type f | wc -l)
  st=$(cat "$log.status")
  printf '%-18s %12s %9s %6s %6s  %s\n' "$t" "${runs:-?}" "${rate:-?}" "${cov:-?}" "$n" "$st"
  if [ "$st" != ok ]; then
    failed=1
    echo "---- $t: last lines of $log" >&2
    grep -E 'ERROR|SUMMARY|runtime error|fuzz_[a-z_]+:|Test unit written' "$log" | head -20 >&2 || true
  fi
done
if [ "${FUZZ_MERGE:-0}" = 1 ]; then
  for t in $targets; do
    dir="tests/fuzz/corpus/${corpus[$t]}"
    "$out/fuzz/$t" -merge=1 -max_len=65536 "$dir" "$out/corpus-$t" >"$out/logs/$t.merge.log" 2>&1 || failed=1
    find "$dir" -type f -size +64k -delete
    echo "merged $t: $(find "$dir" -type f | wc -l) files in $dir"
  done
fi
[ "$failed" = 0 ] || { echo "fuzzing FAILED (inputs in $out/crashes/)" >&2; exit 1; }
echo "fuzzing done: no crashes, leaks or timeouts"
