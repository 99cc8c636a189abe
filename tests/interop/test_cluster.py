"""Cluster mode with the official Python SDK: three `gumcp-actors serve` nodes on one Redis
(databases 14 and 15 of the machines' Redis at 127.0.0.1:6379, one per cluster), behind a round-robin proxy that sends
each request to the next node — so the POSTs of one session land on every node, and the nodes
forward them to the session's owner. The proxy marks a node down when it refuses a connection
and tries the next one, as a plain load balancer does.
"""

import collections
import contextlib
import os
import socket
import subprocess
import threading
import time
import uuid

import anyio
import httpx2
import pytest
import uvicorn

from conftest import serve
from test_http import (
    MODERN_META,
    conformance_client,
    elicitation,
    exercise_conformance,
    sampling,
    sdk_sse,
)
from mcp.client.streamable_http import streamable_http_client

pytestmark = pytest.mark.anyio

LIMIT = 90
REDIS = os.environ.get("GUMCP_TEST_REDIS_URL", "redis://127.0.0.1:6379")
# cluster.shared_keys of every node (two keys: the first seals, both open).
SHARED_KEYS = (
    "new:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,"
    "old:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
)
# Headers of one hop only, never passed on.
HOP = {b"host", b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"upgrade"}


class RoundRobinProxy:
    """An HTTP reverse proxy (ASGI, under uvicorn in a thread of its own) over `backends`."""

    def __init__(self, backends: list[str]):
        self.backends = list(backends)
        self.down: set[str] = set()
        self.hits: collections.Counter = collections.Counter()
        self.turn = 0
        self.lock = threading.Lock()
        self.marked_down_at: float | None = None
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.sock = sock
        self.base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="off", timeout_keep_alive=30, interface="asgi3"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.client: httpx2.AsyncClient | None = None

    def order(self) -> list[str]:
        with self.lock:
            start = self.turn
            self.turn += 1
            alive = [b for b in self.backends if b not in self.down]
        return [alive[(start + i) % len(alive)] for i in range(len(alive))] if alive else []

    def mark_down(self, backend: str) -> None:
        with self.lock:
            if backend not in self.down:
                self.down.add(backend)
                self.marked_down_at = time.monotonic()

    async def app(self, scope, receive, send):
        if self.client is None:
            self.client = httpx2.AsyncClient(trust_env=False, timeout=httpx2.Timeout(10.0, read=None))
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in HOP]
        path = scope["raw_path"].decode()
        if scope["query_string"]:
            path += "?" + scope["query_string"].decode()
        for backend in self.order():
            request = self.client.build_request(scope["method"], backend + path, headers=headers, content=body)
            try:
                response = await self.client.send(request, stream=True)
            except httpx2.ConnectError:
                self.mark_down(backend)
                continue
            except httpx2.TransportError:
                continue  # a pooled connection to a node that just died: the next node
            self.hits[backend] += 1
            out = [(k, v) for k, v in response.headers.raw if k.lower() not in HOP]
            await send({"type": "http.response.start", "status": response.status_code, "headers": out})
            try:
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except httpx2.TransportError:
                pass
            finally:
                await response.aclose()
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 502, "headers": []})
        await send({"type": "http.response.body", "body": b"no node answered"})

    def __enter__(self):
        self.thread.start()
        for _ in range(100):
            if self.server.started:
                return self
            time.sleep(0.05)
        raise AssertionError("the proxy did not start")

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@contextlib.contextmanager
def three_nodes(database: int, redis: str = REDIS):
    run = uuid.uuid4().hex[:8]
    env = {
        "GUMCP__CLUSTER__REDIS_URL": f"{redis}/{database}",
        "GUMCP__CLUSTER__SHARED_KEYS": SHARED_KEYS,
        "GUMCP__CLUSTER__REDIS_TIMEOUT_MS": "300",
    }
    with contextlib.ExitStack() as stack:
        nodes = [
            stack.enter_context(serve({**env, "GUMCP__CLUSTER__NODE_ID": f"{name}-{run}"}))
            for name in "abc"
        ]
        wait_for_members(nodes, 3)
        yield nodes


def wait_for_members(nodes, count: int) -> None:
    for node in nodes:
        seen = 0
        for _ in range(100):
            health = httpx2.get(f"{node.base}/health_check", trust_env=False).json()
            seen = len(health["cluster"]["members"])
            if seen == count:
                break
            time.sleep(0.1)
        assert seen == count, (node.base, seen)


@pytest.fixture(scope="module")
def cluster():
    with three_nodes(14) as nodes, RoundRobinProxy([n.base for n in nodes]) as proxy:
        yield nodes, proxy


def forwarded(node) -> int:
    text = httpx2.get(node.metrics, trust_env=False).text
    for line in text.splitlines():
        if line.startswith('gumcp_cluster_forwarded_requests_total{outcome="forwarded"}'):
            return int(float(line.split()[-1]))
    return 0


@pytest.mark.parametrize("transport", ["sse", "legacy-http", "2026-07-28"])
async def test_sdk_clients_through_a_round_robin_proxy(cluster, transport):
    """Tools, progress, logging, sampling and elicitation round trips, each POST on another
    node than the last."""
    nodes, proxy = cluster
    user = f"cluster-{uuid.uuid4().hex[:12]}"
    logs = []

    async def on_log(params):
        logs.append(params.data)

    before = sum(forwarded(node) for node in nodes)
    hits = dict(proxy.hits)
    with anyio.fail_after(LIMIT):
        if transport == "sse":
            client = sdk_sse(
                proxy.base,
                "conformance-fixtures",
                user,
                sampling_callback=sampling,
                elicitation_callback=elicitation,
                logging_callback=on_log,
            )
            mode = "legacy"
        else:
            mode = "legacy" if transport == "legacy-http" else "2026-07-28"
            url = f"{proxy.base}/conformance-fixtures/{user}/mcp"
            client = conformance_client(streamable_http_client(url), mode, logs)
        async with client:
            await exercise_conformance(client, mode, logs)
    assert all(proxy.hits[node.base] > hits.get(node.base, 0) for node in nodes), proxy.hits
    if transport != "2026-07-28":
        assert sum(forwarded(node) for node in nodes) > before, "requests reached their owner through another node"


async def test_a_killed_node_costs_no_stateless_request_once_marked_down():
    """2026-07-28 calls from 16 workers through the proxy while a node is SIGKILLed: requests
    that start after the proxy has marked it down all succeed."""
    with three_nodes(15) as nodes, RoundRobinProxy([n.base for n in nodes]) as proxy:
        url = f"{proxy.base}/conformance-fixtures/load-{uuid.uuid4().hex[:8]}/mcp"
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "test_simple_text", "arguments": {}, "_meta": MODERN_META},
        }
        headers = {
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            "MCP-Protocol-Version": "2026-07-28",
            "Mcp-Method": "tools/call",
            "Mcp-Name": "test_simple_text",
        }
        after_down = {"ok": 0, "failed": 0}
        total = {"ok": 0}
        killed = threading.Event()

        async def worker(client):
            for i in range(60):
                if i == 20 and not killed.is_set():
                    killed.set()
                    nodes[0].kill()
                started_after_down = proxy.marked_down_at is not None
                try:
                    response = await client.post(url, json=body, headers=headers)
                    ok = response.status_code == 200 and response.json()["result"]["isError"] is False
                except httpx2.HTTPError:
                    ok = False
                total["ok"] += ok
                if started_after_down:
                    after_down["ok" if ok else "failed"] += 1

        with anyio.fail_after(LIMIT):
            async with httpx2.AsyncClient(trust_env=False, timeout=15.0) as client:
                async with anyio.create_task_group() as group:
                    for _ in range(16):
                        group.start_soon(worker, client)
        assert proxy.down == {nodes[0].base}
        assert after_down["failed"] == 0, after_down
        assert after_down["ok"] > 0 and total["ok"] > 0, (after_down, total)


class OwnRedis:
    """A `redis-server` of this test's own on a free port, without persistence, that can be
    stopped and started again on the same port."""

    def __init__(self):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            time.sleep(0.05)
        raise AssertionError(f"redis-server did not listen on {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


def redis_seen_up(nodes) -> bool:
    """Whether every node answers Redis `up` and sees all the nodes (a fresh view)."""
    for node in nodes:
        health = httpx2.get(f"{node.base}/health_check", trust_env=False).json()["cluster"]
        if health["redis"] != "up" or len(health["members"]) != len(nodes):
            return False
    return True


async def test_redis_stopped_and_restarted_under_load():
    """8 workers drive one 2025 session through the proxy (two of three POSTs forwarded) while
    the cluster's Redis stops and comes back: only 200s, and 503s with `Retry-After: 1`, while
    it is away (503s among them), and only 200s once the nodes see it again."""
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "cluster-test", "version": "1"},
        },
    }
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "test_simple_text", "arguments": {}}}
    with OwnRedis() as redis, three_nodes(0, f"redis://127.0.0.1:{redis.port}") as nodes, RoundRobinProxy(
        [n.base for n in nodes]
    ) as proxy:
        url = f"{proxy.base}/conformance-fixtures/redis-{uuid.uuid4().hex[:8]}/mcp"
        phase = {"now": "up"}
        seen: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        stop = anyio.Event()

        async def until(predicate, rounds: int = 400) -> None:
            for _ in range(rounds):
                if predicate():
                    return
                await anyio.sleep(0.05)

        with anyio.fail_after(LIMIT):
            async with httpx2.AsyncClient(trust_env=False, timeout=15.0) as client:
                opened = await client.post(url, json=init, headers=headers)
                assert opened.status_code == 200
                session = {
                    **headers,
                    "Mcp-Session-Id": opened.headers["mcp-session-id"],
                    "MCP-Protocol-Version": "2025-11-25",
                }
                initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
                assert (await client.post(url, json=initialized, headers=session)).status_code == 202

                async def worker():
                    while not stop.is_set():
                        started_in = phase["now"]
                        response = await client.post(url, json=call, headers=session)
                        if response.status_code == 503:
                            assert response.headers.get("retry-after") == "1"
                        seen[started_in][response.status_code] += 1

                async with anyio.create_task_group() as group:
                    for _ in range(8):
                        group.start_soon(worker)
                    await until(lambda: seen["up"][200] >= 50)
                    phase["now"] = "down"
                    redis.stop()
                    await until(lambda: seen["down"][503] >= 20)
                    phase["now"] = "back"
                    redis.start()
                    for _ in range(100):
                        if await anyio.to_thread.run_sync(redis_seen_up, nodes):
                            break
                        await anyio.sleep(0.1)
                    phase["now"] = "recovered"
                    await until(lambda: seen["recovered"][200] >= 100)
                    stop.set()
        for statuses in seen.values():
            assert set(statuses) <= {200, 503}, seen
        assert seen["up"][503] == 0, seen
        assert seen["down"][503] >= 20 and seen["down"][200] > 0, seen
        assert set(seen["recovered"]) == {200} and seen["recovered"][200] >= 100, seen
