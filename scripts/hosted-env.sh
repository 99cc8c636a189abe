#!/usr/bin/env bash
# Installs the npm MCP servers the hosted-server tests run as stdio children (pinned in
# tests/hosted-npm/package-lock.json) into .tools/hosted-npm, with Node 22 from node-env.sh.
# Idempotent: a stamp records the lockfile's hash. Prints the node binary's path on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
node=$(bash scripts/node-env.sh)
export PATH=$(dirname "$node"):$PATH
src=tests/hosted-npm
dest=.tools/hosted-npm
lock_hash=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -c1-16)
if [ ! -f "$dest/.installed-$lock_hash" ]; then
  echo "hosted-env: installing tests/hosted-npm packages into $dest (npm ci)" >&2
  rm -rf "$dest"
  mkdir -p "$dest"
  cp "$src/package.json" "$src/package-lock.json" "$dest/"
  (cd "$dest" && npm ci --no-audit --no-fund --loglevel=error >&2)
  touch "$dest/.installed-$lock_hash"
fi
echo "$node"
