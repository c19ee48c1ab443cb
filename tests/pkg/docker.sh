#!/usr/bin/env bash
# docker.sh - tests the Dockerfile without Docker (no daemon on the test machines): it runs the
# build stage's RUN line itself (scripts/build-install.sh, with the Dockerfile's ARGs as the shell
# sees them, the build directory reused) into a temporary stage, checks the runtime package list
# it writes names installable Debian packages, checks the image's promises (Debian 12 slim, a
# non-root USER, exactly one VOLUME which is the store's directory, a HEALTHCHECK on /ready), then
# starts the staged binary the way ENTRYPOINT + CMD + ENV do and runs the HEALTHCHECK command
# against it: healthy while it serves (HTTP, then HTTPS), failing once it is gone.
# Usage: tests/pkg/docker.sh   (BUILD: the build directory to reuse, default build)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
. tests/pkg/lib.sh
pkg_need curl apt-cache python3 openssl

tmp=$(mktemp -d /tmp/edgeflag-docker-test.XXXXXX)
trap 'pkg_stop_all; rm -rf "$tmp"' EXIT

# Dockerfile instructions with continuation lines joined: "INSTRUCTION rest" per line.
python3 tests/pkg/dockerfile.py Dockerfile >"$tmp/instructions"
instr() { grep -E "^$1 " "$tmp/instructions" | sed -E "s/^$1 +//"; }

echo "== the Dockerfile's promises"
pkg_check "every stage is FROM debian:12-slim" sh -c "test \"\$(grep -c '^FROM ' '$tmp/instructions')\" = 2 && ! grep '^FROM ' '$tmp/instructions' | grep -v -q '^FROM debian:12-slim'"
user=$(instr USER | tail -1)
pkg_check "the final stage runs as a non-root USER ($user)" sh -c "test -n '$user' && test '$user' != root && test '$user' != 0"
volumes=$(instr VOLUME)
pkg_check "exactly one VOLUME, /var/lib/edgeflag ($volumes)" test "$volumes" = /var/lib/edgeflag
pkg_check "EDGEFLAG_DB keeps the store in that volume" grep -q 'EDGEFLAG_DB=/var/lib/edgeflag/' "$tmp/instructions"
health=$(instr HEALTHCHECK | sed -E 's/^(--[a-z-]+=[^ ]+ +)*CMD +//')
pkg_check "HEALTHCHECK asks /ready" sh -c "echo '$health' | grep -q '/ready'"
pkg_check ".dockerignore keeps build directories and node_modules out of the context" \
  sh -c "grep -qx 'build-\*' .dockerignore && grep -qx '\*\*/node_modules' .dockerignore && grep -qx '.git' .dockerignore"

echo "== the build stage's RUN line, run here"
run=$(grep '^RUN .*scripts/build-install.sh' "$tmp/instructions" | sed 's/^RUN //')
pkg_check "the build stage runs scripts/build-install.sh" test -n "$run"
stage=$tmp/stage
# Docker hands ARGs to RUN as environment variables; here they point into this test's directory.
(BUILD_DIR="$root/${BUILD:-build}" STAGE="$stage" bash -euo pipefail -c "$run") >"$tmp/run.log" 2>&1 \
  || { cat "$tmp/run.log"; exit 1; }
pkg_check "the stage holds /usr/local/bin/edgeflag" test -x "$stage/usr/local/bin/edgeflag"
pkg_check "... stripped (STRIP=1)" sh -c "! readelf -S '$stage/usr/local/bin/edgeflag' | grep -q '\.debug_info'"
pkg_check "... and the man pages and libedgeflag" sh -c "test -s '$stage/usr/local/share/man/man1/edgeflag-serve.1' && test -e '$stage/usr/local/lib/libedgeflag.so.0'"
packages=$(cat "$stage.packages")
echo "     runtime packages: $(echo $packages)"
for p in libc6 libmicrohttpd12 libsqlite3-0 libcurl4 libyaml-0-2 liburcu8 zlib1g; do
  pkg_check "runtime packages include $p" sh -c "echo '$packages' | grep -qx '$p'"
done
pkg_check "each is a Debian package apt knows (apt-cache show)" sh -c "apt-cache show $(echo $packages) >/dev/null"
pkg_check "no -dev package in the runtime list" sh -c "! echo '$packages' | grep -q -- '-dev$'"

echo "== ENTRYPOINT + CMD with the image's ENV, and the HEALTHCHECK against it"
entry=$(instr ENTRYPOINT | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)))')
cmd=$(instr CMD | grep '^\[' | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)))')
pkg_check "ENTRYPOINT + CMD is 'edgeflag serve' ($entry $cmd)" test "$entry $cmd" = "edgeflag serve"
# ENV's values, except that the port must be free here and the store must stay in this directory.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pkg_serve "$tmp" "$tmp/serve.out" "$tmp/serve.log" env EDGEFLAG_LISTEN=127.0.0.1:$port EDGEFLAG_DB="$tmp/volume/edgeflag.db" \
  "$stage/usr/local/bin/$entry" $cmd
url=$PKG_URL
pkg_check "it serves on the port EDGEFLAG_LISTEN names" test "$url" = "http://127.0.0.1:$port"
pkg_check "the store is in the volume directory" test -s "$tmp/volume/edgeflag.db"
pkg_check "HEALTHCHECK passes while it serves" env EDGEFLAG_LISTEN=127.0.0.1:$port sh -c "$health"
pkg_stop_all
set +e; EDGEFLAG_LISTEN=127.0.0.1:$port sh -c "$health" 2>/dev/null; hrc=$?; set -e
pkg_check "HEALTHCHECK fails (exit 1) once the server is gone (got $hrc)" test "$hrc" = 1

# The same image serving HTTPS (EDGEFLAG_TLS_CERT/KEY): the health check's second probe passes.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -keyout "$tmp/tls.key" -out "$tmp/tls.crt" 2>/dev/null
pkg_serve "$tmp" "$tmp/tls.out" "$tmp/tls.log" env EDGEFLAG_LISTEN=127.0.0.1:$port EDGEFLAG_DB="$tmp/volume/edgeflag.db" \
  EDGEFLAG_TLS_CERT="$tmp/tls.crt" EDGEFLAG_TLS_KEY="$tmp/tls.key" "$stage/usr/local/bin/$entry" $cmd
pkg_check "it serves HTTPS with EDGEFLAG_TLS_CERT/KEY ($PKG_URL)" test "$PKG_URL" = "https://127.0.0.1:$port"
pkg_check "HEALTHCHECK passes against the HTTPS node" env EDGEFLAG_LISTEN=127.0.0.1:$port sh -c "$health"
pkg_stop_all

pkg_done "docker test"
