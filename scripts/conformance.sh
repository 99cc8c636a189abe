#!/usr/bin/env bash
# The official MCP conformance suite (server leg) against the conformance-fixtures server of a
# fresh `gumcp-actors serve`, once per frozen requirement set. Fails if any scored scenario fails
# (the suite's own exit status under --requirements; no expected-failures baseline), if any
# scenario the suite runs without scoring (the tasks extension, pending ones) prints ✗, or if a
# tasks scenario of the revision's list did not run and pass.
#
#   scripts/conformance.sh                 both 2025-11-25 and 2026-07-28
#   scripts/conformance.sh 2026-07-28      one revision
#   CONFORMANCE_SCENARIO=caching scripts/conformance.sh 2026-07-28
#                                          one scenario at that revision's wire, for debugging
#
# GUMCP_BIN picks the binary (default target/debug/gumcp-actors). Results (checks.json per
# scenario, the CLI output, report.txt) go to target/conformance/<run>/<revision>/, with
# target/conformance/latest pointing at the newest run.
set -euo pipefail
cd "$(dirname "$0")/.."

revisions=("$@")
[ ${#revisions[@]} -gt 0 ] || revisions=(2025-11-25 2026-07-28)

node=$(bash scripts/node-env.sh)
package=.tools/interop-ts/node_modules/@modelcontextprotocol/conformance
conformance=("$node" "$package/dist/index.js")

run_dir=target/conformance/$(date -u +%Y%m%dT%H%M%SZ)-$$
mkdir -p "$run_dir"
ln -sfn "$(basename "$run_dir")" target/conformance/latest

# shellcheck source=scripts/serve-lib.sh
. scripts/serve-lib.sh
start_serve target/conformance
# CONFORMANCE_SERVER names another server to test (scripts/conformance-hosted.sh).
url=$GUMCP_URL/${CONFORMANCE_SERVER:-conformance-fixtures}/mcp

status=0
for revision in "${revisions[@]}"; do
  out=$run_dir/$revision
  mkdir -p "$out"
  if [ -n "${CONFORMANCE_SCENARIO:-}" ]; then
    selection=(--scenario "$CONFORMANCE_SCENARIO" --spec-version "$revision" --force)
  else
    selection=(--requirements "$revision")
  fi
  echo "conformance: $revision against $url" >&2
  revision_status=0
  "${conformance[@]}" server --url "$url" "${selection[@]}" -o "$out" >"$out/output.txt" 2>&1 ||
    revision_status=$?
  # The CLI's summary names failing scenarios but not why; the report adds every failed check.
  if [ -n "${CONFORMANCE_SCENARIO:-}" ]; then
    cat "$out/output.txt"
  else
    sed -n '/^=== SUMMARY ===/,$p' "$out/output.txt"
  fi
  "$node" tests/interop-ts/conformance-report.mjs "$out" "$package/requirements/$revision.yaml" >/dev/null || true
  grep -E '^(FAIL|     (FAILURE|warning))' "$out/report.txt" || true
  echo "conformance: $revision exit status $revision_status (details: $out/report.txt)" >&2
  [ "$revision_status" -eq 0 ] || status=1
  # The suite's exit status counts scored scenarios only; a failing extension or pending one
  # (the tasks suite) is printed with ✗ and must fail the test too.
  failed=$(grep '✗' "$out/output.txt" || true)
  if [ -n "$failed" ]; then
    echo "conformance: $revision: a scenario failed (✗), scored or not:" >&2
    echo "$failed" >&2
    status=1
  fi
  # Every tasks scenario the revision lists must have run and passed, not silently dropped.
  if [ -z "${CONFORMANCE_SCENARIO:-}" ]; then
    for scenario in $(sed -n 's/^  - scenario: \(tasks-[a-z0-9-]*\)$/\1/p' \
      "$package/requirements/$revision.yaml"); do
      if ! grep -q "✓ $scenario:" "$out/output.txt"; then
        echo "conformance: $revision: $scenario did not pass" >&2
        status=1
      fi
    done
  fi
done

if [ "$status" -ne 0 ]; then
  echo "conformance: FAILED; server log lines mentioning errors:" >&2
  grep -E ' (ERROR|WARN) ' "$SERVE_STDERR" | tail -n 20 >&2 || true
fi
exit "$status"
