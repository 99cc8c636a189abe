"""Shared set-up for interop tests with the official Python MCP SDK (`mcp` 2.x).

The binary under test comes from $GUMCP_BIN (scripts/test.sh builds it). The stdio tests talk to
it over real stdio through `mcp.Client`; the HTTP tests start `gumcp-actors serve` on ephemeral
ports (`serve()` / the `gumcp_http` fixture below).
"""

import contextlib
import dataclasses
import os
import pathlib
import queue
import re
import signal
import subprocess
import tempfile
import threading
import time

import pytest
from mcp import StdioServerParameters

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("GUMCP_BIN", str(ROOT / "target" / "debug" / "gumcp-actors"))

# The eras a client can speak to this runtime: the initialize handshake, a version pin, and
# auto (probe with server/discover, which this server answers, so it stays modern).
MODES = ["legacy", "2026-07-28", "auto"]


def stdio(server: str, user_id: str | None = None) -> StdioServerParameters:
    args = ["stdio", "--server", server]
    if user_id:
        args += ["--user-id", user_id]
    env = dict(os.environ)
    env.setdefault("RUST_LOG", "warn")
    return StdioServerParameters(command=BIN, args=args, env=env)


@pytest.fixture
def anyio_backend():
    return "asyncio"


# ---------------------------------------------------------------------------------------------
# `gumcp-actors serve`: the HTTP service, started on ephemeral ports for the HTTP tests.

# runtime.shutdown_grace_secs for every served process (kept short so shutdown tests are quick);
# a SIGTERMed service must exit 0 within GRACE_SECS + 5 s.
GRACE_SECS = 3
STARTUP_SECS = 20


@dataclasses.dataclass
class Served:
    """A running `gumcp-actors serve`."""

    base: str  # e.g. http://127.0.0.1:41234
    metrics: str  # e.g. http://127.0.0.1:41235/metrics
    proc: subprocess.Popen
    stderr: object  # the temporary file holding its stderr

    @property
    def host_port(self) -> tuple[str, int]:
        host, port = self.base.removeprefix("http://").rsplit(":", 1)
        return host, int(port)

    def stderr_tail(self, limit: int = 4000) -> str:
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read().decode("utf-8", "replace")[-limit:]

    def terminate_and_wait(self, bound: float = GRACE_SECS + 5) -> tuple[int | None, float]:
        """SIGTERM, then wait up to `bound` seconds. Returns (exit code or None, seconds taken)."""
        start = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=bound)
        except subprocess.TimeoutExpired:
            code = None
        return code, time.monotonic() - start

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@contextlib.contextmanager
def serve(extra_env: dict[str, str] | None = None):
    """Starts `$GUMCP_BIN serve --port 0 --metrics-port 0`, waits (bounded) for its two stdout
    lines, yields a `Served`, and at the end checks that SIGTERM makes it exit 0 within
    GRACE_SECS + 5 s (unless the test already stopped it)."""
    env = dict(os.environ)
    env["RUST_LOG"] = "warn"
    env["GUMCP__RUNTIME__SHUTDOWN_GRACE_SECS"] = str(GRACE_SECS)
    env.update(extra_env or {})
    stderr = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [BIN, "serve", "--port", "0", "--metrics-port", "0"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    lines: queue.Queue = queue.Queue()

    def pump():  # keeps draining stdout so the pipe never fills
        for line in proc.stdout:
            lines.put(line.rstrip("\r\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()

    def next_line(deadline: float) -> str:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            line = "<no line within the startup bound>"
        if line is None:
            line = f"<stdout closed; exit code {proc.poll()}>"
        return line

    deadline = time.monotonic() + STARTUP_SECS
    first, second = next_line(deadline), None
    listening = re.fullmatch(r"listening on (http://[^\s/]+)", first)
    if listening:
        second = next_line(deadline)
    metrics = re.fullmatch(r"metrics on (http://[^\s/]+/metrics)", second or "")
    served = Served(
        listening.group(1) if listening else "", metrics.group(1) if metrics else "", proc, stderr
    )
    if not (listening and metrics):
        tail = served.stderr_tail()
        served.kill()
        raise AssertionError(f"serve did not start: stdout {first!r}, {second!r}; stderr:\n{tail}")
    try:
        yield served
    except BaseException:
        served.kill()
        raise
    if proc.poll() is None:
        code, took = served.terminate_and_wait()
        if code is None:
            tail = served.stderr_tail()
            served.kill()
            raise AssertionError(
                f"serve did not exit within {GRACE_SECS + 5} s of SIGTERM; stderr:\n{tail}"
            )
        assert code == 0, f"serve exited {code} on SIGTERM (after {took:.1f} s); stderr:\n{served.stderr_tail()}"


@pytest.fixture(scope="module")
def gumcp_http():
    """One `gumcp-actors serve` shared by a test module: a `Served` with `.base` and `.metrics`."""
    with serve() as served:
        yield served
