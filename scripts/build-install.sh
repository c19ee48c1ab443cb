#!/usr/bin/env bash
# build-install.sh - builds edgeflag's installable parts and installs them under DESTDIR/PREFIX.
# It is the one install path: `make install` runs it, the Dockerfile's build stage runs it, and
# tests/pkg/install.sh runs it into a temporary root, so the container build cannot drift from
# what the tests check. It never writes outside DESTDIR (empty DESTDIR: the live system, as
# `make install` does) and the build directory.
#
# Environment: DESTDIR (default empty), PREFIX (default /usr/local), BUILD (build directory,
# default build), JOBS (default nproc), STRIP=1 (strip the installed binaries),
# RUNTIME_PACKAGES=FILE (also write the Debian packages holding the shared libraries the installed
# programs load, one per line: what a runtime image must install).
set -euo pipefail
cd "$(dirname "$0")/.."

destdir=${DESTDIR:-}
prefix=${PREFIX:-/usr/local}
build=${BUILD:-build}
jobs=${JOBS:-$(nproc)}
case "$prefix" in /*) ;; *) echo "build-install.sh: PREFIX must be an absolute path, not '$prefix'" >&2; exit 2 ;; esac
if [ -n "$destdir" ]; then
  case "$destdir" in /*) ;; *) destdir=$PWD/$destdir ;; esac
fi

scripts/install-deps.sh build
# Configured with the prefix it installs to: the unit's ExecStart and edgeflag.pc name it.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" \
  -DCMAKE_INSTALL_PREFIX="$prefix" >/dev/null
# Only what is installed: the tests and benchmarks are not needed to install.
cmake --build "$build" -j "$jobs" --target edgeflag edgeflag_shared edgeflag_static edgeflag_man
strip=()
[ "${STRIP:-0}" = 1 ] && strip=(--strip)
DESTDIR="$destdir" cmake --install "$build" "${strip[@]}" >/dev/null
echo "installed edgeflag $("$build/edgeflag" --version | cut -d' ' -f2) under ${destdir}${prefix}"

if [ -n "${RUNTIME_PACKAGES:-}" ]; then
  # ldd resolves through this machine's libraries; one dpkg -S names the package owning each (asked
  # under /usr and without it: Debian 12's dpkg database still lists some libraries under /lib).
  libs=$(ldd "$destdir$prefix/bin/edgeflag" "$destdir$prefix/lib/libedgeflag.so" |
         awk '$2 == "=>" && $3 ~ /^\// {print $3}' | xargs -r realpath | sort -u)
  # A package being installed meanwhile (apt on the same machine) can hide its files from dpkg -S
  # for a moment: ask again before calling a library unowned.
  for attempt in 1 2 3 4 5; do
    owners=$(for l in $libs; do echo "$l"; echo "${l#/usr}"; done | xargs dpkg -S 2>/dev/null || true)
    missing=""
    for l in $libs; do
      echo "$owners" | grep -q ": \(/usr\)\?${l#/usr}\$" || missing="$missing $l"
    done
    [ -z "$missing" ] && break
    sleep 1
  done
  [ -z "$missing" ] || { echo "build-install.sh: no Debian package holds:$missing" >&2; exit 1; }
  pkgs=$(echo "$owners" | cut -d: -f1 | sort -u)
  printf '%s\n' $pkgs > "$RUNTIME_PACKAGES"
fi
