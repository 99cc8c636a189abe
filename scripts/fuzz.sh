#!/usr/bin/env bash
# A short run of every cargo-fuzz target (fuzz/fuzz_targets/) over its committed corpus:
# each committed input (seeds and past crashes) is replayed first, then FUZZ_SECONDS (default
# 20) of new inputs. Fails on any crash or broken property. Longer runs: see RELIABILITY.md.
#
# Needs no nightly: `--sanitizer none` builds on the stable toolchain. Installs cargo-fuzz
# into .tools/ (ignored) when missing. New inputs libFuzzer finds go to fuzz/target/corpus/,
# so the committed corpus stays as it is; crash inputs land in fuzz/artifacts/ (ignored).
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
CARGO_FUZZ=.tools/cargo-fuzz/bin/cargo-fuzz
if [ ! -x "$CARGO_FUZZ" ]; then
    cargo install cargo-fuzz --locked --root .tools/cargo-fuzz
fi

cargo fmt --manifest-path fuzz/Cargo.toml -- --check
# Release with debug assertions (so overflows panic), no sanitizer (stable toolchain).
FUZZ_FLAGS=(--sanitizer none --debug-assertions)
"$CARGO_FUZZ" build "${FUZZ_FLAGS[@]}"

for target in $("$CARGO_FUZZ" list); do
    scratch="$PWD/fuzz/target/corpus/$target"
    mkdir -p "$scratch"
    args=(-max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
    if [ -f "fuzz/dict/$target.dict" ]; then
        args+=(-dict="$PWD/fuzz/dict/$target.dict")
    fi
    echo "== fuzz: $target for ${FUZZ_SECONDS}s"
    "$CARGO_FUZZ" run "${FUZZ_FLAGS[@]}" "$target" "$scratch" "$PWD/fuzz/corpus/$target" -- "${args[@]}"
done
