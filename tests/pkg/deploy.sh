#!/usr/bin/env bash
# deploy.sh - runs docs/deploy.md: every ```sh block, in order, on this machine (tests/pkg/deploy.py
# says how hosts, names, ports and the two stand-ins for apt-get and systemctl work). The Debian
# package is the one in build/deb (tests/pkg/deb.sh, `make deb`); without one it is built first.
# Usage: tests/pkg/deploy.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/pkg/lib.sh
pkg_need python3 openssl curl dpkg-deb systemd-sysusers node
scripts/npm-ci.sh tests/backup >/dev/null  # the S3-protocol server the page's bucket stands for
if ! ls build/deb/edgeflag_*_amd64.deb >/dev/null 2>&1; then
  echo "no package in build/deb: building it (scripts/build-deb.sh)"
  LINTIAN=0 scripts/build-deb.sh build/deb >/dev/null
fi
tmp=$(mktemp -d /tmp/edgeflag-deploy-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
python3 tests/pkg/deploy.py docs/deploy.md build/deb "$tmp"
