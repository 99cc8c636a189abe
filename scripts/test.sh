#!/usr/bin/env bash
# Every test of the project, as CI runs it: formatting, lints, unit and integration tests
# (the real binary over stdio and HTTP), interop with the official Python and TypeScript MCP
# SDKs, and the official MCP conformance suite. Installs what it needs (a Python venv, Node 22
# and the npm packages) into .tools/ (ignored) on the first run; later runs reuse it.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never
cargo fmt --all -- --check
# Native servers are compiled in through build.rs, out of cargo fmt's sight.
rustfmt --edition 2021 --check servers/*/server.rs
cargo clippy --all-targets --locked -- -D warnings
cargo build --locked
cargo test --locked

export GUMCP_BIN="$PWD/target/debug/gumcp-actors"
bash scripts/python-env.sh
.tools/venv/bin/python -m pytest -q tests/interop
bash scripts/ts-interop.sh
bash scripts/conformance.sh
echo "== fuzz: a short run of every cargo-fuzz target (FUZZ_SECONDS=${FUZZ_SECONDS:-20} each)"
bash scripts/fuzz.sh
