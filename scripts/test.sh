#!/usr/bin/env bash
# The whole test suite, as `make test` and CI run it:
#   1. unit tests (cmocka under ctest) in the normal build,
#   2. the same under AddressSanitizer + UndefinedBehaviorSanitizer,
#   3. the same under ThreadSanitizer,
#   4. compatibility tests against real third-party code (Flipt's own engine from npm).
# Each step prints its own summary; the script stops at the first failing step.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=$(nproc)

step() { printf '\n==> %s\n' "$*"; }

configure() { # dir, extra cmake args...
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  fi
  cmake --build "$dir" -j "$jobs"
}

step "unit tests"
configure build
(cd build && ctest --output-on-failure -j "$jobs")

step "unit tests under ASan+UBSan"
configure build-asan -DEF_SANITIZE=ON
(cd build-asan && ctest --output-on-failure -j "$jobs")

step "unit tests under TSan"
configure build-tsan -DEF_TSAN=ON
(cd build-tsan && ctest --output-on-failure -j "$jobs")

step "npm packages for the compatibility tests (from the lockfile)"
scripts/npm-ci.sh tests/compat

step "differential test against Flipt's evaluation engine"
(cd tests/compat && node diff_eval.mjs --edgeflag "$root/build/edgeflag" --seeds 1,2,3,4,5 --requests 20000)
