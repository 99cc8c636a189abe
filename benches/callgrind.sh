#!/usr/bin/env bash
# Instructions per request, counted by callgrind: a repeatable comparison where timings on a
# shared machine are not. Each target runs under valgrind twice, serving N and then 2N
# stateless tools/call requests from the load generator; the difference of the two totals,
# divided by the difference of the answered requests, is what one request costs (start-up and
# shutdown cancel out).
#
#   bash benches/callgrind.sh [N] [targets…]     # default: 2000 gumcp floor rmcp-tuned
#                                                # (also rmcp-default, floor-split)
#   SCENARIO=sse-calls bash benches/callgrind.sh  # legacy SSE calls instead (gumcp, floor)
#   SCENARIO=upstream-calls bash benches/callgrind.sh 2000 gumcp rmcp-tuned
#                                                # hackernews get_story_details against the
#                                                # load generator's mock upstream (MOCK_PORT)
#
# Needs valgrind, and the release builds: cargo build --release --bins --examples.
set -euo pipefail
cd "$(dirname "$0")/.."

scenario=${SCENARIO:-stateless-calls}
requests=${1:-2000}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(gumcp floor rmcp-tuned)
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed" >&2; exit 1; }

# The load generator's mock upstream, for the upstream-* presets (the targets are pointed at it
# before it starts: nothing calls it until the first request).
upstream=http://127.0.0.1:${MOCK_PORT:-18990}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

command_of() {
    case $1 in
        gumcp) echo "target/release/gumcp-actors serve --port 0 --metrics-port 0" ;;
        floor) echo "target/release/examples/floor --port 0" ;;
        floor-split) echo "target/release/examples/floor --split-routes --port 0" ;;
        rmcp-tuned) echo "target/release/examples/rmcp_axum --tuned --port 0 --upstream $upstream" ;;
        rmcp-default) echo "target/release/examples/rmcp_axum --port 0 --upstream $upstream" ;;
        *) echo "callgrind.sh: unknown target $1" >&2; exit 1 ;;
    esac
}

# "<instructions> <answered requests>" of one run of $1 asked for $2 requests.
instructions() {
    local target=$1 count=$2 out="$work/$1.$2"
    # Made before the server starts: its own redirection may come after the first look below.
    : >"$out.stdout"
    # shellcheck disable=SC2046
    GUMCP__LOGGING__LEVEL=warn GUMCP__SERVERS__DIR="$PWD/servers" \
        GUMCP__SERVERS__BASE_URLS__HACKERNEWS="$upstream" \
        valgrind --tool=callgrind --callgrind-out-file="$out.cg" $(command_of "$target") \
        >"$out.stdout" 2>"$out.stderr" &
    local pid=$! url=""
    for _ in $(seq 1 600); do
        url=$(sed -n 's/^listening on \(http:[^ ]*\).*/\1/p' "$out.stdout" | head -n1)
        [ -n "$url" ] && break
        kill -0 "$pid" 2>/dev/null || { cat "$out.stderr" >&2; exit 1; }
        sleep 0.1
    done
    [ -n "$url" ] || { echo "callgrind.sh: $target did not start" >&2; exit 1; }
    local shared=()
    case $target in rmcp-*) shared=(--shared-mcp) ;; esac
    cargo bench -q --bench load -- "$scenario" --url "$url" "${shared[@]}" --users 10 \
        --warmup 0 --requests "$count" --mock-port "${upstream##*:}" >"$out.load" 2>&1
    kill -TERM "$pid"
    wait "$pid" || true
    local row ok errors
    row=$(grep "^| $scenario" "$out.load") || { cat "$out.load" >&2; exit 1; }
    ok=$(echo "$row" | awk -F'|' '{ gsub(/ /, "", $5); print $5 }')
    errors=$(echo "$row" | awk -F'|' '{ gsub(/ /, "", $6); print $6 }')
    [ "$errors" = 0 ] || { echo "callgrind.sh: $target answered with errors: $row" >&2; exit 1; }
    echo "$(sed -n 's/^summary: *//p' "$out.cg") $ok"
}

printf '| target | instructions per request (%s) |\n| --- | ---: |\n' "$scenario"
for target in "${targets[@]}"; do
    read -r once_ir once_ok < <(instructions "$target" "$requests")
    read -r twice_ir twice_ok < <(instructions "$target" $((requests * 2)))
    printf '| %s | %s |\n' "$target" $(((twice_ir - once_ir) / (twice_ok - once_ok)))
done
