#!/usr/bin/env bash
# deb.sh - tests `make deb` (scripts/build-deb.sh): builds the Debian packages (reusing build-deb/,
# so only what changed is recompiled), checks them with dpkg-deb (names, version = CMakeLists.txt's,
# Depends computed by dpkg-shlibdeps naming Debian's library packages, conffile, maintainer scripts
# creating the user and enabling the unit, files in each package), runs lintian's checks of
# binaries, libraries and systemd units, extracts all three packages into a temporary root and runs
# what they hold: `edgeflag --version`, `serve` on a port on the packaged config with a flag
# evaluated over HTTP, and a program built with pkg-config against the packaged libedgeflag-dev.
# The packages are left in build/deb (as `make deb` leaves them) for tests/pkg/deploy.sh.
# Usage: tests/pkg/deb.sh   (WORK: the persistent build directory, default build-deb)
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/pkg/lib.sh
scripts/install-deps.sh deb >/dev/null
pkg_need dpkg-deb dpkg-buildpackage lintian pkg-config cc curl systemd-analyze

tmp=$(mktemp -d /tmp/edgeflag-deb-test.XXXXXX)
trap 'pkg_stop_all; rm -rf "$tmp"' EXIT
version=$(sed -n 's/^project(edgeflag VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)

echo "== make deb (scripts/build-deb.sh, lintian below)"
LINTIAN=0 scripts/build-deb.sh build/deb >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }
server=build/deb/edgeflag_${version}_$arch.deb
lib=build/deb/libedgeflag0_${version}_$arch.deb
dev=build/deb/libedgeflag-dev_${version}_$arch.deb
for d in "$server" "$lib" "$dev"; do pkg_check "built $(basename "$d")" test -s "$d"; done
pkg_check "debian/changelog's version is CMakeLists.txt's ($version)" \
  test "$(dpkg-parsechangelog -S Version)" = "$version"

echo "== dpkg-deb: control fields"
field() { dpkg-deb --field "$1" "$2"; }
pkg_check "edgeflag's Version is $version" test "$(field "$server" Version)" = "$version"
depends=$(field "$server" Depends)
echo "     edgeflag Depends: $depends"
for p in libc6 libcurl4 libmicrohttpd12 libsqlite3-0 liburcu8 libyaml-0-2 zlib1g; do
  pkg_check "edgeflag depends on $p (dpkg-shlibdeps)" sh -c "echo '$depends' | tr ',' '\n' | grep -q '^ *$p\\b'"
done
pkg_check "edgeflag's dependencies are runtime packages, no -dev" sh -c "! echo '$depends' | grep -q -- '-dev'"
# every dependency names a package Debian has (the ones this machine runs edgeflag with)
deps=$(echo "$depends" | tr ',|' '\n\n' | sed 's/(.*)//; s/ //g' | grep -v '^$' | grep -v '^systemd-' | tr '\n' ' ')
pkg_check "its dependencies are packages apt knows: $deps" sh -c "apt-cache show $deps >/dev/null"
libdeps=$(field "$lib" Depends)
pkg_check "libedgeflag0 depends on libcurl4 and liburcu8 ($libdeps)" sh -c "echo '$libdeps' | grep -q libcurl4 && echo '$libdeps' | grep -q liburcu8"
pkg_check "libedgeflag-dev depends on libedgeflag0 (= $version)" sh -c "field_dev='$(field "$dev" Depends)'; echo \"\$field_dev\" | grep -q 'libedgeflag0 (= $version)'"
dpkg-deb -e "$server" "$tmp/ctl-server"
dpkg-deb -e "$lib" "$tmp/ctl-lib"
pkg_check "/etc/edgeflag/config.yml is a conffile" grep -qx /etc/edgeflag/config.yml "$tmp/ctl-server/conffiles"
pkg_check "postinst creates the user (systemd-sysusers edgeflag.conf)" grep -q 'systemd-sysusers.*edgeflag.conf' "$tmp/ctl-server/postinst"
pkg_check "postinst enables edgeflag.service" grep -q "deb-systemd-helper enable 'edgeflag.service'" "$tmp/ctl-server/postinst"
pkg_check "postinst starts it on install" sh -c "grep -q '_dh_action=start' '$tmp/ctl-server/postinst' && grep -q \"deb-systemd-invoke \\\$_dh_action 'edgeflag.service'\" '$tmp/ctl-server/postinst'"
pkg_check "the user is created before the unit starts" awk '/systemd-sysusers/{u=NR} /deb-systemd-invoke/{s=NR} END{exit !(u && s && u < s)}' "$tmp/ctl-server/postinst"
pkg_check "libedgeflag0's shlibs names libedgeflag.so.0" grep -q '^libedgeflag 0 libedgeflag0' "$tmp/ctl-lib/shlibs"
pkg_check "libedgeflag0's symbols file lists ef_version" grep -q 'ef_version@Base' "$tmp/ctl-lib/symbols"

echo "== dpkg-deb: contents"
has() { dpkg-deb --contents "$1" | awk '{print $6}' | sed 's|^\./|/|' | grep -qx "$2"; }
for f in /usr/bin/edgeflag /lib/systemd/system/edgeflag.service /usr/lib/sysusers.d/edgeflag.conf \
         /etc/edgeflag/config.yml /usr/share/man/man1/edgeflag.1.gz /usr/share/man/man1/edgeflag-serve.1.gz; do
  pkg_check "edgeflag holds $f" has "$server" "$f"
done
for f in "/usr/lib/$multiarch/libedgeflag.so.$version"; do pkg_check "libedgeflag0 holds $f" has "$lib" "$f"; done
for f in /usr/include/edgeflag.h "/usr/lib/$multiarch/libedgeflag.a" "/usr/lib/$multiarch/pkgconfig/edgeflag.pc"; do
  pkg_check "libedgeflag-dev holds $f" has "$dev" "$f"
done
pkg_check "the library is in exactly one package" sh -c "! { dpkg-deb --contents '$server'; dpkg-deb --contents '$dev'; } | grep -q 'libedgeflag.so.$version'"

# The checks that concern what this project wrote (make deb runs all of lintian; the full run costs
# ~30 s on a loaded machine, most of it checks of things debhelper generates).
echo "== lintian: binaries (hardening), shared/static libraries, systemd, conffiles, hierarchy, copyright"
changes=$(ls "${WORK:-build-deb}"/*.changes)
lintian --fail-on error,warning -C binaries,libraries/shared/soname,libraries/shared/links,libraries/shared/multi-arch,libraries/static,systemd,conffiles,files/hierarchy/standard,files/permissions,debian/copyright \
  "$changes" 2>&1 | grep -v 'running with root privileges' >"$tmp/lintian.log" && lrc=${PIPESTATUS[0]} || lrc=${PIPESTATUS[0]}
sed 's/^/     /' "$tmp/lintian.log"
pkg_check "lintian reports no error or warning" test "$lrc" = 0 -a ! -s "$tmp/lintian.log"

echo "== the packages extracted into a temporary root"
root=$tmp/root
for d in "$server" "$lib" "$dev"; do dpkg-deb -x "$d" "$root"; done
export LD_LIBRARY_PATH=$root/usr/lib/$multiarch
pkg_check "edgeflag --version says $version" test "$("$root/usr/bin/edgeflag" --version)" = "edgeflag $version"
pkg_serve "$tmp" "$tmp/serve.out" "$tmp/serve.log" env EDGEFLAG_LISTEN=127.0.0.1:0 EDGEFLAG_DB="$tmp/state/edgeflag.db" \
  "$root/usr/bin/edgeflag" serve --config "$root/etc/edgeflag/config.yml"
url=$PKG_URL
pkg_check "the packaged config starts it without warnings" sh -c "! grep -E 'level=(warn|error)' '$tmp/serve.log'"
pkg_check "a flag is created through the API" pkg_flag "$url" pkg-deb
answer=$(curl -fsS -X POST "$url/evaluate/v1/boolean" -d '{"flagKey":"pkg-deb","entityId":"u1","context":{}}' || true)
pkg_check "POST /evaluate/v1/boolean answers enabled ($answer)" sh -c "echo '$answer' | grep -q '\"enabled\":true'"
pkg_check "/meta/info reports version $version and an RFC 3339 buildDate" \
  sh -c "curl -fsS '$url/meta/info' | grep -q '\"version\":\"$version\".*\"buildDate\":\"[0-9]\{4\}-[0-9][0-9]-[0-9][0-9]T'"
pc() { PKG_CONFIG_PATH=$root/usr/lib/$multiarch/pkgconfig pkg-config --define-variable=prefix="$root/usr" "$@"; }
pkg_check "pkg-config --modversion of the packaged edgeflag.pc is $version" test "$(pc --modversion edgeflag)" = "$version"
cc -Wall -Werror -o "$tmp/client" tests/pkg/pkgconfig_client.c $(pc --cflags --libs edgeflag)
pkg_check "a program built against libedgeflag-dev evaluates the flag through libedgeflag0" \
  sh -c "'$tmp/client' '$url' pkg-deb | grep -qx 'pkg-deb enabled=1 reason=.*'"
pkg_stop_all
vroot=$tmp/vroot
mkdir -p "$vroot/lib/systemd" "$vroot/usr"
cp -a "$root/usr/bin" "$vroot/usr/"
cp -a /lib/systemd/system "$vroot/lib/systemd/"
mkdir -p "$vroot/bin" && cp /bin/sh "$vroot/bin/"  # ExecReload
cp "$root/lib/systemd/system/edgeflag.service" "$vroot/lib/systemd/system/"
verify=$(systemd-analyze verify --man=no --root="$vroot" edgeflag.service 2>&1) && vrc=0 || vrc=$?
pkg_check "systemd-analyze verify of the packaged unit${verify:+: $verify}" test "$vrc" = 0 -a -z "$verify"
pkg_check "the packaged unit runs /usr/bin/edgeflag on /etc/edgeflag/config.yml" \
  grep -qx 'ExecStart=/usr/bin/edgeflag serve --config /etc/edgeflag/config.yml' "$root/lib/systemd/system/edgeflag.service"

# A clean Debian build machine gets only Build-Depends: every library scripts/install-deps.sh
# installs to build must be there (libcjson-dev is listed there but nothing in the build uses it).
echo "== Build-Depends cover the build packages of scripts/install-deps.sh"
for p in $(sed -n '/^build_pkgs=(/,/)/p' scripts/install-deps.sh | tr -d '()' | sed 's/build_pkgs=//' | tr ' ' '\n' |
           grep -- '-dev$\|^help2man$\|^cmake$\|^ninja-build$\|^pkg-config$' | grep -v -x libcjson-dev); do
  pkg_check "debian/control Build-Depends names $p" grep -q "^ *\(Build-Depends: \)\?$p,\?\$" debian/control
done

pkg_done "deb test"
