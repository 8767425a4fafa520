#!/usr/bin/env bash
# Make a fresh clone ready to run: Debian packages (as root, only when missing), npm packages
# (only when node_modules is missing or older than package-lock.json), then a build of dist/.
# Used by `npm test` and `npm run demo`, so that each is one command on a new machine.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
bash test/support/stack/install.sh
if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "bootstrap: npm ci" >&2
  npm ci --no-audit --no-fund </dev/null >&2
fi
node node_modules/typescript/bin/tsc -p tsconfig.build.json
