#!/usr/bin/env bash
# Type-checks the library and the binary for Windows and macOS with clippy, warnings as errors,
# so every per-OS `cfg` branch compiles and is linted (ARCHITECTURE.md, "Platforms"). Nothing is
# linked or run for those targets. ring's C is the only native code and needs a compiler for
# each: mingw-w64 for Windows; for macOS, whose SDK is not available on Linux, clang compiling
# freestanding with ring's own no-sysroot switch and scripts/darwin-sdk-stub/ in place of the
# SDK's one header. Adds the rustup targets and, as root with apt-get, the Debian packages on
# first use; a target whose tools cannot be had is skipped, saying why.
set -euo pipefail
cd "$(dirname "$0")/.."

# `have COMMAND PACKAGE`: COMMAND is on PATH, after installing PACKAGE with apt-get if need be.
have() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== cross-check: installing $2 (for $1)"
    apt-get install -y --no-install-recommends "$2" >/dev/null 2>&1 ||
      { apt-get update >/dev/null 2>&1 &&
        apt-get install -y --no-install-recommends "$2" >/dev/null 2>&1; } || true
  fi
  command -v "$1" >/dev/null 2>&1
}

# `target TRIPLE`: rustup has the standard library for TRIPLE, after adding it if need be.
target() {
  rustup target list --installed 2>/dev/null | grep -qx "$1" ||
    rustup target add "$1" >/dev/null 2>&1
}

skip() { echo "== cross-check $1: SKIPPED, $2"; }

windows=x86_64-pc-windows-gnu
if ! target "$windows"; then
  skip "$windows" "rustup cannot add the target"
elif ! have x86_64-w64-mingw32-gcc gcc-mingw-w64-x86-64; then
  skip "$windows" "no x86_64-w64-mingw32-gcc (Debian: gcc-mingw-w64-x86-64) to compile ring's C"
else
  echo "== cross-check: $windows"
  cargo clippy --locked --target "$windows" -- -D warnings
fi

macos=x86_64-apple-darwin
if ! target "$macos"; then
  skip "$macos" "rustup cannot add the target"
elif ! have clang clang; then
  skip "$macos" "no clang (Debian: clang) to compile ring's C for macOS"
else
  echo "== cross-check: $macos"
  CC_x86_64_apple_darwin=clang \
    CFLAGS_x86_64_apple_darwin="-ffreestanding -nostdlibinc -DRING_CORE_NOSTDLIBINC=1 -I$PWD/scripts/darwin-sdk-stub" \
    cargo clippy --locked --target "$macos" -- -D warnings
fi
