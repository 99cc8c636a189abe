# Sourced by scripts that test a running `gumcp-actors serve`: start_serve launches it on free
# ports, waits for its "listening on" line and sets GUMCP_URL; an EXIT trap always stops it.
# Expects to run from the repository root.

# start_serve LOG_DIR [extra serve arguments...]
start_serve() {
  local log_dir=$1
  shift
  local bin=${GUMCP_BIN:-target/debug/gumcp-actors}
  local wait_secs=${GUMCP_START_TIMEOUT:-30}
  if [ ! -x "$bin" ]; then
    echo "serve: $bin is missing; build it (cargo build) or set GUMCP_BIN" >&2
    exit 1
  fi
  # A directory per run, so concurrent runs never read each other's "listening on" line.
  mkdir -p "$log_dir"
  SERVE_LOGS=$(mktemp -d "$log_dir/serve.XXXXXX")
  SERVE_STDOUT=$SERVE_LOGS/stdout
  SERVE_STDERR=$SERVE_LOGS/stderr
  "$bin" serve --port 0 --metrics-port 0 "$@" >"$SERVE_STDOUT" 2>"$SERVE_STDERR" &
  SERVE_PID=$!
  trap stop_serve EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  local deadline=$((SECONDS + wait_secs)) line
  while :; do
    line=$(grep -m1 '^listening on http://' "$SERVE_STDOUT" || true)
    if [ -n "$line" ]; then
      GUMCP_URL=${line#listening on }
      export GUMCP_URL
      echo "serve: pid $SERVE_PID at $GUMCP_URL (logs in $SERVE_LOGS)" >&2
      return 0
    fi
    if ! kill -0 "$SERVE_PID" 2>/dev/null; then
      echo "serve: exited before listening; its stderr:" >&2
      tail -n 40 "$SERVE_STDERR" >&2
      exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "serve: no 'listening on' line within ${wait_secs}s; its stderr:" >&2
      tail -n 40 "$SERVE_STDERR" >&2
      exit 1
    fi
    sleep 0.1
  done
}

# EXIT trap: SIGTERM (graceful shutdown), then SIGKILL if it lingers. Keeps the exit status, and
# the server's logs only when something failed.
stop_serve() {
  local status=$?
  if [ -n "${SERVE_PID:-}" ] && kill -0 "$SERVE_PID" 2>/dev/null; then
    kill -TERM "$SERVE_PID" 2>/dev/null || true
    local i
    for i in $(seq 100); do
      kill -0 "$SERVE_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$SERVE_PID" 2>/dev/null; then
      echo "serve: still running 10s after SIGTERM; killing it" >&2
      kill -KILL "$SERVE_PID" 2>/dev/null || true
    fi
    wait "$SERVE_PID" 2>/dev/null || true
  fi
  SERVE_PID=
  if [ "$status" -eq 0 ]; then
    rm -rf "$SERVE_LOGS"
  elif [ -n "${SERVE_LOGS:-}" ]; then
    echo "serve: logs kept in $SERVE_LOGS" >&2
  fi
  exit "$status"
}
