#!/usr/bin/env bash
# The official MCP conformance suite through a hosted server: `hosted-fixtures`, a
# `kind = "stdio"` server whose child is `gumcp-actors stdio --server conformance-fixtures`, so
# every scenario passes through the runtime's own MCP client and the child's stdio. Same
# arguments and output as scripts/conformance.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${GUMCP_BIN:-target/debug/gumcp-actors}")
servers=target/conformance-hosted/servers
mkdir -p "$servers/hosted-fixtures"
cat >"$servers/hosted-fixtures/server.toml" <<TOML
name = "hosted-fixtures"
description = "conformance-fixtures, hosted as a stdio child"
version = "1.0.0"
kind = "stdio"
[stdio]
command = "$bin"
args = ["stdio", "--server", "conformance-fixtures"]
env = { RUST_LOG = "warn" }
TOML
export GUMCP__SERVERS__DIR=$PWD/$servers
export CONFORMANCE_SERVER=hosted-fixtures
exec bash scripts/conformance.sh "$@"
