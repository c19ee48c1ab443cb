#!/usr/bin/env bash
# build-deb.sh - `make deb`: builds the Debian packages (edgeflag, libedgeflag0, libedgeflag-dev)
# with dpkg-buildpackage and debhelper (debian/), checks them with lintian, and puts the .deb files
# in OUT (default build/deb).
#
# It builds in a copy of the source tree (the files git tracks or would track, as they are now) under
# WORK (default build-deb/), never in the checkout: debhelper's clean step deletes files by pattern
# across a tree. The copy and its CMake build directory (debian/cmake) are kept between runs and
# synced with rsync (times preserved), so a second build only recompiles what changed: this is how
# tests/pkg/deb.sh stays cheap in `make test`.
# Environment: WORK, LINTIAN=0 (skip lintian; tests/pkg/deb.sh runs it itself).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${1:-build/deb}
work=${WORK:-build-deb}
case "$out" in /*) ;; *) out=$root/$out ;; esac
case "$work" in /*) ;; *) work=$root/$work ;; esac

scripts/install-deps.sh deb
mkdir -p "$work/src" "$out"
# The tracked and untracked-but-not-ignored files; debian/cmake (the build directory) survives.
git ls-files -z --cached --others --exclude-standard | grep -z -v '^debian/cmake/' >"$work/files"
rsync -a --delete --from0 --files-from="$work/files" ./ "$work/src/"
# --files-from does not delete what left the tree; drop those files (but not the build directory
# or debhelper's state, which the next steps reset).
(cd "$work/src" && find . -type f -not -path './debian/cmake/*' -printf '%P\0' | sort -z) >"$work/have"
sort -z "$work/files" >"$work/want"
comm -z -23 "$work/have" "$work/want" | (cd "$work/src" && xargs -0 -r rm -f)
# debhelper state from the previous run: without this dh would skip the build (its stamp).
(cd "$work/src/debian" && rm -rf tmp .debhelper edgeflag libedgeflag0 libedgeflag-dev files \
  ./*.substvars ./*.debhelper ./*.debhelper.log debhelper-build-stamp)
rm -f "$work"/*.deb "$work"/*.ddeb "$work"/*.buildinfo "$work"/*.changes

(cd "$work/src" && dpkg-buildpackage -b -us -uc -nc -j"$(nproc)") >"$work/build.log" 2>&1 || {
  tail -60 "$work/build.log" >&2
  echo "build-deb.sh: dpkg-buildpackage failed (whole log: $work/build.log)" >&2
  exit 1
}
rm -f "$out"/*.deb
cp "$work"/*.deb "$out"/
changes=$(ls "$work"/*.changes)
if [ "${LINTIAN:-1}" = 1 ]; then
  lintian --fail-on error --info "$changes"
fi
ls -1 "$out"/*.deb
