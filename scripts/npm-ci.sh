#!/usr/bin/env bash
# Installs a directory's npm packages from its lockfile, only when the lockfile changed since the
# last install (a stamp file in node_modules records its hash). Uses only the npm registry.
set -euo pipefail
dir=${1:?usage: npm-ci.sh DIR}
cd "$dir"
want=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.edgeflag-lock-sha256
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "npm packages in $dir are up to date"
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
