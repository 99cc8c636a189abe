#!/usr/bin/env bash
# Every test of the project, as CI runs it: formatting, lints, unit and integration tests
# (the real binary over stdio and HTTP; stdio also on the path of Windows), a type-check for
# Windows and macOS, interop with the official Python and TypeScript MCP SDKs, and the official
# MCP conformance suite. Installs what it needs on the first run, and later runs reuse it: a
# Python venv, Node 22 and the npm packages into .tools/ (ignored); rustup targets and, as root,
# the cross-compilers (scripts/cross-check.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never
cargo fmt --all -- --check
# Native servers are compiled in through build.rs, out of cargo fmt's sight.
rustfmt --edition 2021 --check servers/*/server.rs
cargo clippy --all-targets --locked -- -D warnings
# The stdio path of Windows, linted and run on Linux (`portable-stdio` is a test-only feature).
# It rebuilds the crate and replaces target/debug/gumcp-actors, which the plain build below puts
# back for the SDK tests.
cargo clippy --all-targets --locked --features portable-stdio -- -D warnings
cargo test --locked --features portable-stdio --test stdio
cargo build --locked
cargo test --locked
# Every per-OS branch compiles for Windows and macOS (type-checked, not linked or run).
bash scripts/cross-check.sh

export GUMCP_BIN="$PWD/target/debug/gumcp-actors"
bash scripts/python-env.sh
# Debian's Chromium and playwright for the connect pages' browser test (idempotent).
bash scripts/browser-env.sh
# npm MCP servers the interop tests host as stdio children (Node 22 and npm ci, once).
bash scripts/hosted-env.sh >/dev/null
.tools/venv/bin/python -m pytest -q tests/interop
bash scripts/ts-interop.sh
bash scripts/conformance.sh
# The same suite through a stdio-hosted copy of conformance-fixtures (servers::hosted).
bash scripts/conformance-hosted.sh
echo "== fuzz: a short run of every cargo-fuzz target (FUZZ_SECONDS=${FUZZ_SECONDS:-20} each)"
bash scripts/fuzz.sh
