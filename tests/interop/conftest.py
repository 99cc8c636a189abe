"""Shared set-up for interop tests with the official Python MCP SDK (`mcp` 2.x).

The binary under test comes from $GUMCP_BIN (scripts/test.sh builds it); every test talks to it
over real stdio through `mcp.Client`.
"""

import os
import pathlib

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
