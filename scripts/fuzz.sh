#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer targets under tests/fuzz/ with clang (ASan + UBSan + fuzzer
# instrumentation of edgeflag's own code) and runs each for FUZZ_SECONDS (default 60), starting
# from the seed corpus. Crashes are written to build-fuzz/crashes/ and fail the run.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-60}
out=build-fuzz
mkdir -p "$out/crashes"
flags="-g -O1 -std=c11 -D_GNU_SOURCE -DEF_VERSION=\"fuzz\" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Isrc -Iinclude $(pkg-config --cflags liburcu-bp yaml-0.1)"
libs="$(pkg-config --libs zlib liburcu-bp yaml-0.1 libcurl) -lm -lpthread"
base="src/base/arena.c src/base/json.c src/base/buf.c src/base/clock.c src/base/file.c src/base/sha256.c src/base/cnum.c"
eval="src/eval/rfc3339.c src/eval/constraint.c src/eval/compile.c src/eval/evaluate.c"
decl="src/store/decl_read.c src/store/decl_write.c"
hrana="src/store/hrana.c src/store/store_err.c src/base/log.c"
declare -A srcs=(
  [fuzz_json]="$base $eval"
  [fuzz_eval_request]="$base $eval src/api/eval_json.c"
  [fuzz_decl]="$base $eval $decl"
  [fuzz_hrana]="$base $hrana"
  [fuzz_sse]="$base src/base/sse.c"
)
declare -A corpus=([fuzz_json]=json [fuzz_eval_request]=request [fuzz_decl]=decl [fuzz_hrana]=hrana [fuzz_sse]=sse)
for t in fuzz_json fuzz_eval_request fuzz_decl fuzz_hrana fuzz_sse; do
  echo "==> $t (${secs}s)"
  # shellcheck disable=SC2086
  clang $flags tests/fuzz/$t.c ${srcs[$t]} -o "$out/$t" $libs
  work="$out/corpus-$t"
  mkdir -p "$work"
  cp -n tests/fuzz/corpus/${corpus[$t]}/* "$work/" 2>/dev/null || true
  "$out/$t" -max_total_time="$secs" -max_len=65536 -artifact_prefix="$out/crashes/$t-" "$work" 2>&1 | tail -n 3
done
echo "fuzzing done: no crashes"
