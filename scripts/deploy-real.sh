#!/usr/bin/env bash
# deploy-real.sh - `make deploy-real`: the container image and the systemd unit checked by the real
# programs rather than the stand-ins of `make test` (tests/pkg/deploy_shim.py, tests/pkg/docker.sh):
# tests/pkg/real_docker.sh (a private dockerd builds and runs the Dockerfile) and
# tests/pkg/real_systemd.sh (the .deb installed in a Debian 12 root booted by systemd-nspawn).
# Needs root, the Debian mirror and a kernel that allows containers; takes several minutes (the
# image build compiles edgeflag). Not part of `make test`. Runs both, then fails if either failed.
# Environment: EF_REAL_DIR (work directory, default /var/tmp/edgeflag-deploy-real, kept between
# runs: the debootstrapped roots and Docker's data); see each script for its own.
# Usage: scripts/deploy-real.sh [docker|systemd]...   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh deploy-real
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(docker systemd)
failed=()
for p in "${parts[@]}"; do
  case "$p" in
    docker | systemd) ;;
    *) echo "usage: $0 [docker|systemd]..." >&2; exit 2 ;;
  esac
  printf '\n######## tests/pkg/real_%s.sh\n' "$p"
  tests/pkg/real_"$p".sh || failed+=("$p")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "deploy-real: failed: ${failed[*]}"
  exit 1
fi
echo "deploy-real: the Docker image and the systemd unit passed under the real programs"
