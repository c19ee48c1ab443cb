#!/usr/bin/env bash
# Installs the Debian packages edgeflag needs to build, test and benchmark, but only the ones that are
# missing: a machine that already has them pays one dpkg query, not an apt-get update.
# Usage: scripts/install-deps.sh [build|deb|test|bench|deploy-real]   (each of the first four includes the
# ones before it; deploy-real is deb plus what `make deploy-real` runs)
set -euo pipefail

level=${1:-build}

build_pkgs=(cmake ninja-build pkg-config gcc make libmicrohttpd-dev libcjson-dev libyaml-dev
            libsqlite3-dev sqlite3 libcurl4-openssl-dev libssl-dev zlib1g-dev liburcu-dev libcmocka-dev help2man
            libgnutls28-dev libpq-dev libmariadb-dev)
# make deb: the Debian tools that build and check the package
deb_pkgs=(debhelper dpkg-dev fakeroot lintian)
test_pkgs=(systemd groff-base python3 clang libclang-rt-14-dev nodejs npm curl ca-certificates openssl prometheus chromium locales
           postgresql-15 postgresql-client-15 mariadb-server mariadb-client)
bench_pkgs=(valgrind wrk nginx-light procps util-linux)
# make deploy-real: a Docker daemon, a Debian root made from the mirror, systemd in a container
real_pkgs=(docker.io debootstrap systemd-container curl openssl python3)

pkgs=("${build_pkgs[@]}")
case "$level" in
  build) ;;
  deb) pkgs+=("${deb_pkgs[@]}") ;;
  test) pkgs+=("${deb_pkgs[@]}" "${test_pkgs[@]}") ;;
  bench) pkgs+=("${deb_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  deploy-real) pkgs+=("${deb_pkgs[@]}" "${real_pkgs[@]}") ;;
  *) echo "usage: $0 [build|deb|test|bench|deploy-real]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  # node and npm may come from outside Debian (e.g. a preinstalled toolchain); accept those.
  if [ "$p" = nodejs ] && command -v node >/dev/null 2>&1; then continue; fi
  if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then continue; fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing missing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: not root; install these packages yourself: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# test_client_locale runs libedgeflag under a decimal-comma locale; Debian's `locales` package
# ships only the sources, so generate that one locale if it is not there yet.
if [ "$level" != build ] && [ "$level" != deb ] && [ "$level" != deploy-real ] && ! locale -a 2>/dev/null | grep -qi '^de_DE\.utf-\?8$'; then
  echo "generating the locale de_DE.UTF-8 (for test_client_locale)"
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: not root; generate it yourself: localedef -i de_DE -f UTF-8 de_DE.UTF-8" >&2
    exit 1
  fi
  localedef -i de_DE -f UTF-8 de_DE.UTF-8
fi
