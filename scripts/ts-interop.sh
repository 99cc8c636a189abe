#!/usr/bin/env bash
# Interop with the official TypeScript MCP clients (v1 SDK over legacy SSE and Streamable HTTP,
# v2 client at 2026-07-28) against a fresh `gumcp-actors serve` on free ports.
# GUMCP_BIN picks the binary (default target/debug/gumcp-actors); extra arguments go to node --test
# (e.g. --test-name-pattern=DELETE). Server logs: target/ts-interop/.
set -euo pipefail
cd "$(dirname "$0")/.."

node=$(bash scripts/node-env.sh)
# shellcheck source=scripts/serve-lib.sh
. scripts/serve-lib.sh
start_serve target/ts-interop

status=0
"$node" --test --test-reporter=spec "$@" tests/interop-ts/*.test.mjs || status=$?
if [ "$status" -ne 0 ]; then
  echo "ts-interop: FAILED (status $status); last server log lines:" >&2
  tail -n 30 "$SERVE_STDERR" >&2
fi
exit "$status"
