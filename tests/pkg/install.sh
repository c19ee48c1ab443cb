#!/usr/bin/env bash
# install.sh - tests `make install PREFIX=/usr/local DESTDIR=…` (scripts/build-install.sh) on the
# existing build directory: every file is where it belongs, libedgeflag's SONAME is versioned, the
# version is the one CMakeLists.txt sets, pkg-config works against the installed tree (a program is
# compiled against it shared and static and run), every command `edgeflag --help` lists has a man
# page that groff renders without warnings, the systemd unit passes `systemd-analyze verify` and
# scores OK in `systemd-analyze security`, and the installed server starts on the installed example
# config and answers the compiled program. It only writes under its temporary directory.
# Usage: tests/pkg/install.sh   (BUILD: the build directory to reuse, default build)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
. tests/pkg/lib.sh
pkg_need pkg-config cc curl readelf groff systemd-analyze

tmp=$(mktemp -d /tmp/edgeflag-install-test.XXXXXX)
trap 'pkg_stop_all; rm -rf "$tmp"' EXIT
dest=$tmp/root
pre=$dest/usr/local

echo "== make install PREFIX=/usr/local DESTDIR=$dest"
make --no-print-directory install PREFIX=/usr/local DESTDIR="$dest" BUILD="${BUILD:-build}" >"$tmp/install.log" 2>&1 \
  || { cat "$tmp/install.log"; exit 1; }

version=$(sed -n 's/^project(edgeflag VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
major=${version%%.*}
for f in bin/edgeflag include/edgeflag.h lib/libedgeflag.a "lib/libedgeflag.so.$version" \
         lib/pkgconfig/edgeflag.pc lib/systemd/system/edgeflag.service lib/sysusers.d/edgeflag.conf \
         etc/edgeflag/config.yml share/man/man1/edgeflag.1; do
  pkg_check "installed $f" test -s "$pre/$f"
done
pkg_check "libedgeflag.so.$major -> libedgeflag.so.$version" test "$(readlink "$pre/lib/libedgeflag.so.$major")" = "libedgeflag.so.$version"
pkg_check "libedgeflag.so -> libedgeflag.so.$major (for -ledgeflag)" test "$(readlink "$pre/lib/libedgeflag.so")" = "libedgeflag.so.$major"
soname=$(readelf -d "$pre/lib/libedgeflag.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
pkg_check "SONAME is libedgeflag.so.$major (got '$soname')" test "$soname" = "libedgeflag.so.$major"
pkg_check "the installed binary carries no build-tree RPATH" \
  sh -c "! readelf -d '$pre/bin/edgeflag' | grep -q 'R.*PATH'"
pkg_check "edgeflag --version says $version" test "$("$pre/bin/edgeflag" --version)" = "edgeflag $version"
pkg_check "edgeflag version says the same" test "$("$pre/bin/edgeflag" version)" = "edgeflag $version"

echo "== pkg-config against the installed tree"
# The .pc file says prefix=/usr/local; --define-variable relocates it to DESTDIR, as a user of a
# staged tree would. The system libraries it requires come from this machine's pkg-config path.
pc() { PKG_CONFIG_PATH=$pre/lib/pkgconfig pkg-config --define-variable=prefix="$pre" "$@"; }
pkg_check "edgeflag.pc names prefix=/usr/local" grep -qx 'prefix=/usr/local' "$pre/lib/pkgconfig/edgeflag.pc"
pkg_check "pkg-config --modversion edgeflag is $version" test "$(pc --modversion edgeflag)" = "$version"
pkg_check "pkg-config --cflags names the installed include dir" sh -c "pc_cflags='$(pc --cflags edgeflag)'; test \"\${pc_cflags%% *}\" = '-I$pre/include'"
cc -Wall -Werror -o "$tmp/client_shared" tests/pkg/pkgconfig_client.c $(pc --cflags --libs edgeflag)
# static: libedgeflag.a itself, and the system libraries it requires (Requires.private) shared, as
# Debian ships them (`--static` would ask for libcurl's own static dependencies too).
cc -Wall -Werror -o "$tmp/client_static" tests/pkg/pkgconfig_client.c $(pc --cflags edgeflag) \
  -Wl,-Bstatic $(pc --libs edgeflag) -Wl,-Bdynamic $(pkg-config --libs $(pc --print-requires-private edgeflag)) -lpthread -lm
pkg_check "the shared program loads the installed libedgeflag.so.$major" \
  sh -c "LD_LIBRARY_PATH='$pre/lib' ldd '$tmp/client_shared' | grep -q 'libedgeflag.so.$major => $pre/lib/'"
pkg_check "the static program does not need libedgeflag.so" sh -c "! ldd '$tmp/client_static' | grep -q libedgeflag"

echo "== man pages"
commands=$("$pre/bin/edgeflag" --help | sed -n '/^commands:/,/^$/p' | sed -n 's/^  \([a-z][a-z-]*\)[ ,].*/\1/p' | grep -v -x -e version -e help)
pkg_check "edgeflag --help lists commands" test -n "$commands"
for c in $commands; do
  pkg_check "man page edgeflag-$c(1)" test -s "$pre/share/man/man1/edgeflag-$c.1"
done
for page in "$pre"/share/man/man1/*.1; do
  warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
  pkg_check "$(basename "$page") renders without groff warnings${warnings:+: $warnings}" test -z "$warnings"
  pkg_check "$(basename "$page") has a SYNOPSIS and a DESCRIPTION" sh -c "grep -q '^.SH SYNOPSIS' '$page' && grep -q '^.SH DESCRIPTION' '$page'"
done
pkg_check "edgeflag-serve(1) documents --listen (made from serve --help)" grep -q 'listen' "$pre/share/man/man1/edgeflag-serve.1"

echo "== systemd unit"
unit=$pre/lib/systemd/system/edgeflag.service
pkg_check "ExecStart runs the installed binary on the installed config" \
  grep -qx "ExecStart=/usr/local/bin/edgeflag serve --config /usr/local/etc/edgeflag/config.yml" "$unit"
for key in User=edgeflag StateDirectory=edgeflag ProtectSystem=strict NoNewPrivileges=yes PrivateTmp=yes \
           ProtectHome=yes CapabilityBoundingSet= WorkingDirectory=/var/lib/edgeflag; do
  pkg_check "unit sets $key" grep -qx "$key" "$unit"
done
pkg_check "sysusers.d creates the user edgeflag with home /var/lib/edgeflag" \
  grep -q '^u edgeflag - ".*" /var/lib/edgeflag$' "$pre/lib/sysusers.d/edgeflag.conf"
# verify resolves the unit's dependencies (sysinit.target, ...) and its ExecStart inside a root
# that holds the installed tree and this machine's units.
vroot=$tmp/vroot
mkdir -p "$vroot/usr" "$vroot/lib/systemd"
cp -a "$pre" "$vroot/usr/"
cp -a /lib/systemd/system "$vroot/lib/systemd/"
mkdir -p "$vroot/bin" && cp /bin/sh "$vroot/bin/"  # ExecReload
verify=$(systemd-analyze verify --man=no --root="$vroot" edgeflag.service 2>&1) && vrc=0 || vrc=$?
pkg_check "systemd-analyze verify: no error or warning${verify:+: $verify}" test "$vrc" = 0 -a -z "$verify"
exposure=$(systemd-analyze security --offline=true --no-pager "$unit" 2>&1 | sed -n 's/.*Overall exposure level for edgeflag.service: \([0-9.]*\).*/\1/p')
pkg_check "systemd-analyze security: exposure ${exposure:-?} <= 2.0 (OK)" awk -v e="${exposure:-99}" 'BEGIN{exit !(e <= 2.0)}'

echo "== the installed server on the installed example config"
# The example's store and port are for a real system; the environment (which wins over the file)
# moves them into this test's directory. Every other setting is the file's.
pkg_serve "$tmp" "$tmp/serve.out" "$tmp/serve.log" env EDGEFLAG_LISTEN=127.0.0.1:0 EDGEFLAG_DB="$tmp/state/edgeflag.db" \
  "$pre/bin/edgeflag" serve --config "$pre/etc/edgeflag/config.yml"
url=$PKG_URL
pkg_check "the example config gives no warning or error (every key in it applies)" \
  sh -c "! grep -E 'level=(warn|error)' '$tmp/serve.log'"
pkg_check "it serves as a primary on the store the environment named" \
  grep -q "msg=serving .*role=primary source=$tmp/state/edgeflag.db" "$tmp/serve.log"
pkg_check "GET /ready answers 200" curl -fsS -o /dev/null "$url/ready"
pkg_check "a flag is created through the API" pkg_flag "$url" pkg-install
pkg_check "the shared program evaluates it through the installed library" \
  sh -c "LD_LIBRARY_PATH='$pre/lib' '$tmp/client_shared' '$url' pkg-install > '$tmp/shared.out' &&
         grep -qx 'version $version' '$tmp/shared.out' && grep -qx 'pkg-install enabled=1 reason=.*' '$tmp/shared.out'"
pkg_check "the static program evaluates it too" \
  sh -c "'$tmp/client_static' '$url' pkg-install | grep -qx 'pkg-install enabled=1 reason=.*'"
set +e
LD_LIBRARY_PATH=$pre/lib "$tmp/client_shared" "$url" no-such-flag >/dev/null 2>"$tmp/unknown.err"
unknown_rc=$?
set -e
pkg_check "an unknown flag exits 1 (got $unknown_rc) ..." test "$unknown_rc" = 1
pkg_check "... saying 'flag not found'" grep -q 'flag not found' "$tmp/unknown.err"
pkg_stop_all
pkg_check "the server stopped" sh -c "! curl -fsS -o /dev/null '$url/ready' 2>/dev/null"
# A broken copy of the example (a wrong type) is refused with its file and line, and nothing runs.
sed 's/http_port: 8080/http_port: eighty/' "$pre/etc/edgeflag/config.yml" >"$tmp/bad.yml"
set +e
(cd "$tmp" && EDGEFLAG_DB="$tmp/bad/edgeflag.db" timeout 10 "$pre/bin/edgeflag" serve --config "$tmp/bad.yml") >"$tmp/bad.out" 2>&1
badrc=$?
set -e
pkg_check "a config with a wrong type exits 2 (got $badrc)" test "$badrc" = 2
pkg_check "... naming the file and line" grep -q 'bad.yml:[0-9]*' "$tmp/bad.out"
pkg_check "... and creates no store" test ! -e "$tmp/bad/edgeflag.db"

echo "== scripts/build-install.sh refuses a relative PREFIX"
pkg_check "PREFIX=usr is refused with exit 2" sh -c "PREFIX=usr DESTDIR='$tmp/rel' scripts/build-install.sh >/dev/null 2>&1; test \$? = 2"
pkg_check "... and installs nothing" test ! -e "$tmp/rel"

pkg_done "install test"
