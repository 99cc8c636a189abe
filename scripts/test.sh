#!/usr/bin/env bash
# Every test of the project, as CI runs it: formatting, lints, unit and integration tests
# (the real binary over stdio), and interop with the official Python MCP SDK. Installs what it
# needs into .tools/ (ignored) on the first run; later runs reuse it.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never
cargo fmt --all -- --check
# Native servers are compiled in through build.rs, out of cargo fmt's sight.
rustfmt --edition 2021 --check servers/*/server.rs
cargo clippy --all-targets --locked -- -D warnings
cargo build --locked
cargo test --locked

bash scripts/python-env.sh
GUMCP_BIN="$PWD/target/debug/gumcp-actors" .tools/venv/bin/python -m pytest -q tests/interop
