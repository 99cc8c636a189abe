"""`gumcp-actors serve` over HTTP: guMCP's legacy HTTP+SSE routes and Streamable HTTP, through the
official Python SDK clients and through raw HTTP (httpx2, the SDK's own HTTP client).

The legacy SSE expectations are guMCP's exact behaviour: guMCP's src/servers/remote.py on top of
the SDK's `SseServerTransport` and sse-starlette. See /tmp/notes/gumcp-sse.md for the bytes, and
/tmp/notes/http-contract.md for the routes. Every wait is bounded.
"""

import contextlib
import datetime
import json
import re
import select
import signal
import socket
import time
import uuid
from urllib.parse import urljoin

import anyio
import httpx2
import pytest
from mcp import Client, types
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from conftest import GRACE_SECS, MODES, ROOT, serve

pytestmark = pytest.mark.anyio

LIMIT = 60  # seconds any single test may take, end to end (shutdown tests add their own bounds)
SIMPLE_TOOLS = ["store-data", "retrieve-data", "list-data"]
HEX32 = re.compile(r"[0-9a-f]{32}")

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw-http-test", "version": "1.0"},
    },
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "raw-http-test", "version": "1.0"},
}


def uid(prefix: str) -> str:
    """A user id (or key) no other test or earlier run uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def text_of(result) -> str:
    return "".join(block.text for block in result.content if block.type == "text")


def request(id_, method, params=None) -> dict:
    message = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        message["params"] = params
    return message


def tool_call(id_, name, arguments, progress_token=None) -> dict:
    params = {"name": name, "arguments": arguments}
    if progress_token is not None:
        params["_meta"] = {"progressToken": progress_token}
    return request(id_, "tools/call", params)


def http_client() -> httpx2.AsyncClient:
    return httpx2.AsyncClient(trust_env=False, timeout=httpx2.Timeout(15.0, read=30.0))


# --- raw SSE --------------------------------------------------------------------------------

EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")


def parse_event(raw: bytes) -> dict:
    """One SSE event's fields ({"event": ..., "data": ..., "comments": [...]})."""
    fields: dict = {"comments": []}
    data = []
    for line in re.split(r"\r\n|\r|\n", raw.decode("utf-8")):
        if not line:
            continue
        if line.startswith(":"):
            fields["comments"].append(line[1:].removeprefix(" "))
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        else:
            fields[name] = value
    if data:
        fields["data"] = "\n".join(data)
    return fields


class SseStream:
    """An SSE response read event by event, keeping the exact bytes."""

    def __init__(self, response: httpx2.Response):
        self.response = response
        self._raw = response.aiter_raw()
        self.buffer = b""
        self.ended: str | None = None  # "clean" (terminating chunk) or "abrupt"
        self.seen: list[dict] = []  # JSON-RPC messages read while waiting for something else

    async def _more(self) -> None:
        if self.ended:
            raise EOFError(f"stream ended ({self.ended})")
        try:
            chunk = await self._raw.__anext__()
        except StopAsyncIteration:
            self.ended = "clean"
            raise EOFError("stream ended (clean)") from None
        except httpx2.TransportError as error:
            self.ended = "abrupt"
            raise EOFError(f"stream ended (abrupt: {error!r})") from None
        self.buffer += chunk

    async def read_event(self, timeout: float = 10.0) -> bytes:
        """The exact bytes of the next event, blank line included."""
        with anyio.fail_after(timeout):
            while not (end := EVENT_END.search(self.buffer)):
                await self._more()
        event, self.buffer = self.buffer[: end.end()], self.buffer[end.end() :]
        return event

    async def next_message(self, timeout: float = 10.0) -> dict:
        """The next JSON-RPC message (an `event: message`), skipping comments."""
        deadline = time.monotonic() + timeout
        while True:
            event = parse_event(await self.read_event(max(0.0, deadline - time.monotonic())))
            if event.get("event", "message") == "message" and "data" in event:
                return json.loads(event["data"])

    async def wait_for_id(self, id_, timeout: float = 15.0) -> dict:
        """The response to request `id_`; anything else read on the way lands in `seen`."""
        deadline = time.monotonic() + timeout
        while True:
            message = await self.next_message(max(0.0, deadline - time.monotonic()))
            if message.get("id") == id_ and ("result" in message or "error" in message):
                return message
            self.seen.append(message)

    async def wait_for_end(self, timeout: float = 10.0) -> str:
        with anyio.fail_after(timeout):
            while True:
                try:
                    await self._more()
                except EOFError:
                    return self.ended
                self.buffer = b""


@contextlib.asynccontextmanager
async def open_sse(http: httpx2.AsyncClient, url: str, headers: dict | None = None):
    async with http.stream("GET", url, headers={"Accept": "text/event-stream", **(headers or {})}) as response:
        yield SseStream(response)


class LegacySession:
    """A guMCP legacy SSE session driven by hand: GET stream + POSTs to the endpoint it names."""

    def __init__(self, http: httpx2.AsyncClient, stream: SseStream, endpoint_url: str):
        self.http = http
        self.stream = stream
        self.endpoint = endpoint_url
        self.session_id = endpoint_url.rsplit("session_id=", 1)[1]

    async def post(self, message, headers: dict | None = None) -> httpx2.Response:
        content = message if isinstance(message, bytes) else json.dumps(message).encode()
        return await self.http.post(
            self.endpoint, content=content, headers={"Content-Type": "application/json", **(headers or {})}
        )

    async def call(self, message: dict, timeout: float = 15.0) -> dict:
        posted = await self.post(message)
        assert posted.status_code == 202, (posted.status_code, posted.text)
        return await self.stream.wait_for_id(message["id"], timeout)

    async def initialize(self) -> dict:
        answer = await self.call(INIT)
        assert answer["result"]["protocolVersion"] == "2025-11-25", answer
        note = await self.post(INITIALIZED)
        assert note.status_code == 202, (note.status_code, note.text)
        return answer["result"]


@contextlib.asynccontextmanager
async def legacy_sse(http: httpx2.AsyncClient, base: str, server: str, key: str):
    async with open_sse(http, f"{base}/{server}/{key}") as stream:
        assert stream.response.status_code == 200, (
            stream.response.status_code,
            (await stream.response.aread())[:300],
        )
        endpoint = parse_event(await stream.read_event())
        assert endpoint.get("event") == "endpoint", endpoint
        yield LegacySession(http, stream, urljoin(base + "/", endpoint["data"]))


# --- raw Streamable HTTP / metrics / sockets -------------------------------------------------


def rpc_messages(response: httpx2.Response) -> list[dict]:
    """The JSON-RPC messages in a Streamable HTTP POST answer (JSON or SSE body)."""
    kind = response.headers.get("content-type", "")
    if kind.startswith("application/json"):
        body = response.json()
        return body if isinstance(body, list) else [body]
    assert kind.startswith("text/event-stream"), (response.status_code, kind, response.text[:300])
    events = [parse_event(raw) for raw in re.split(rb"(?<=\r\n\r\n)|(?<=\n\n)", response.content) if raw.strip()]
    return [json.loads(event["data"]) for event in events if "data" in event and event["data"]]


def answer_to(response: httpx2.Response, id_) -> dict:
    answers = [m for m in rpc_messages(response) if m.get("id") == id_ and ("result" in m or "error" in m)]
    assert len(answers) == 1, (response.status_code, response.text[:500])
    return answers[0]


SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$")
LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def metric(text: str, name: str, **labels) -> float | None:
    """The value of the first sample of `name` whose labels include `labels`."""
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        if not match or match.group(1) != name:
            continue
        found = dict(LABEL.findall(match.group(2) or ""))
        if all(found.get(key) == value for key, value in labels.items()):
            return float(match.group(3))
    return None


async def metrics_text(http: httpx2.AsyncClient, served) -> str:
    response = await http.get(served.metrics)
    assert response.status_code == 200, response.status_code
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    return response.text


async def poll_metric(http, served, name, want: float, bound: float = 20.0, **labels) -> float | None:
    """Polls until the metric equals `want` (absent counts as 0); returns the last value seen."""
    deadline = time.monotonic() + bound
    while True:
        value = metric(await metrics_text(http, served), name, **labels)
        if (value or 0.0) == want or time.monotonic() > deadline:
            return value
        await anyio.sleep(0.2)


def raw_post(host: str, port: int, path: str, body: bytes, chunked: bool, bound: float = 15.0):
    """POSTs `body` over a plain socket, stopping as soon as the server answers (a server may
    answer 413 before reading the body). Returns (status or None, response head bytes)."""
    head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
    head += "Accept: application/json, text/event-stream\r\nConnection: close\r\n"
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {len(body)}\r\n\r\n"
    pieces = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    if chunked:
        pieces = [b"%x\r\n" % len(p) + p + b"\r\n" for p in pieces] + [b"0\r\n\r\n"]
    sock = socket.create_connection((host, port), timeout=5)
    response = b""
    deadline = time.monotonic() + bound
    try:
        sock.sendall(head.encode())
        sending = iter(pieces)
        while time.monotonic() < deadline and b"\r\n\r\n" not in response:
            readable, _, _ = select.select([sock], [], [], 0 if sending else 0.5)
            if readable:
                data = sock.recv(65536)
                if not data:
                    break
                response += data
            elif sending:
                piece = next(sending, None)
                if piece is None:
                    sending = None
                    continue
                try:
                    sock.sendall(piece)
                except OSError:
                    sending = None
    except OSError:
        pass
    finally:
        sock.close()
    status = re.match(rb"HTTP/1\.[01] (\d{3})", response)
    return (int(status.group(1)) if status else None), response.split(b"\r\n\r\n")[0]


def oversize_initialize(size: int) -> bytes:
    prefix = b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"pad":"'
    return prefix + b"x" * (size - len(prefix) - 3) + b'"}}'


def server_folders() -> set[str]:
    return {path.parent.name for path in (ROOT / "servers").glob("*/server.toml")}


# --- SDK client helpers ------------------------------------------------------------------------


async def sampling(context, params):
    asked = params.messages[0].content.text
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text=f"answer to {asked!r}"),
        model="test-model",
        stop_reason="endTurn",
    )


async def elicitation(context, params):
    properties = params.requested_schema.get("properties", {})
    content = {}
    for name, schema in properties.items():
        kind = schema.get("type")
        content[name] = {"boolean": True, "integer": 7, "number": 1.5}.get(kind, f"{name}-value")
    return types.ElicitResult(action="accept", content=content)


def sdk_sse(base: str, server: str, key: str, on_session=None, **extra) -> Client:
    """`mcp.Client` over the SDK's legacy `sse_client` (always the initialize handshake)."""
    transport = sse_client(f"{base}/{server}/{key}", timeout=10, sse_read_timeout=60, on_session_created=on_session)
    return Client(transport, mode="legacy", **extra)


async def exercise_conformance(client, mode: str, logs: list) -> None:
    """Text, progress, logging, sampling and elicitation on conformance-fixtures."""
    simple = await client.call_tool("test_simple_text", {})
    assert text_of(simple) == "This is a simple text response for testing."

    seen = []

    async def on_progress(progress, total, message):
        seen.append((progress, total))

    result = await client.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)
    assert not result.is_error, result
    assert seen == [(0, 100), (50, 100), (100, 100)]

    logs.clear()
    await client.call_tool("test_tool_with_logging", {})
    assert logs == ["Tool execution started", "Tool processing data", "Tool execution completed"], (mode, logs)

    sampled = await client.call_tool("test_sampling", {"prompt": "What is 2+2?"})
    assert text_of(sampled) == "LLM response: answer to 'What is 2+2?'"

    elicited = await client.call_tool("test_elicitation", {"message": "Who are you?"})
    assert text_of(elicited).startswith("User response: action=accept"), text_of(elicited)
    assert "username-value" in text_of(elicited)


def conformance_client(transport, mode: str, logs: list) -> Client:
    async def on_log(params):
        logs.append(params.data)

    extra = {} if mode == "legacy" else {"log_level": "info"}
    return Client(
        transport,
        mode=mode,
        sampling_callback=sampling,
        elicitation_callback=elicitation,
        logging_callback=on_log,
        **extra,
    )


# =============================================================================================
# Official SDK clients


async def test_legacy_sse_client_lists_and_calls_tools(gumcp_http):
    user = uid("sse-user")
    sessions = []
    with anyio.fail_after(LIMIT):
        async with sdk_sse(gumcp_http.base, "simple-tools-server", f"{user}%3Aapi-key-1", sessions.append) as client:
            assert client.protocol_version == "2025-11-25"
            assert client.server_info.name == "simple-tools-server"
            tools = await client.list_tools()
            assert [tool.name for tool in tools.tools] == SIMPLE_TOOLS

            empty = await client.call_tool("list-data", {})
            assert text_of(empty) == "No data stored"
            stored = await client.call_tool("store-data", {"key": "colour", "value": "teal"})
            assert text_of(stored) == "Stored 'colour' with value: teal"
            got = await client.call_tool("retrieve-data", {"key": "colour"})
            assert text_of(got) == "Value for 'colour': teal"
            listed = await client.call_tool("list-data", {})
            assert text_of(listed) == "Stored data:\n- colour: teal"
            missing = await client.call_tool("retrieve-data", {"key": "nothing-here"})
            assert text_of(missing) == "Key 'nothing-here' not found"
    assert len(sessions) == 1 and HEX32.fullmatch(sessions[0]), sessions


@pytest.mark.parametrize("mode", MODES)
async def test_streamable_http_client_on_a_user_route(gumcp_http, mode):
    user = uid("shttp-user")
    url = f"{gumcp_http.base}/simple-tools-server/{user}/mcp"
    with anyio.fail_after(LIMIT):
        async with Client(streamable_http_client(url), mode=mode) as client:
            assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
            tools = await client.list_tools()
            assert [tool.name for tool in tools.tools] == SIMPLE_TOOLS
            empty = await client.call_tool("list-data", {})
            assert text_of(empty) == "No data stored"
            stored = await client.call_tool("store-data", {"key": "size", "value": "L"})
            assert text_of(stored) == "Stored 'size' with value: L"
            got = await client.call_tool("retrieve-data", {"key": "size"})
            assert text_of(got) == "Value for 'size': L"
            blank = await client.call_tool("store-data", {"key": "", "value": "x"})
            assert blank.is_error and text_of(blank) == "Missing key or value"


@pytest.mark.parametrize("mode", MODES)
async def test_client_url_on_the_open_route(gumcp_http, mode):
    key = uid("open-key")
    with anyio.fail_after(LIMIT):
        async with Client(f"{gumcp_http.base}/simple-tools-server/mcp", mode=mode) as client:
            assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
            tools = await client.list_tools()
            assert [tool.name for tool in tools.tools] == SIMPLE_TOOLS
            stored = await client.call_tool("store-data", {"key": key, "value": mode})
            assert text_of(stored) == f"Stored '{key}' with value: {mode}"
            got = await client.call_tool("retrieve-data", {"key": key})
            assert text_of(got) == f"Value for '{key}': {mode}"


async def test_the_open_route_acts_as_user_local(gumcp_http):
    key = uid("local-key")
    base = gumcp_http.base
    with anyio.fail_after(LIMIT):
        async with Client(f"{base}/simple-tools-server/mcp", mode="2026-07-28") as client:
            await client.call_tool("store-data", {"key": key, "value": "open"})
        async with Client(f"{base}/simple-tools-server/local/mcp", mode="legacy") as client:
            got = await client.call_tool("retrieve-data", {"key": key})
            assert text_of(got) == f"Value for '{key}': open"
        async with Client(f"{base}/simple-tools-server/{uid('stranger')}/mcp", mode="legacy") as client:
            got = await client.call_tool("retrieve-data", {"key": key})
            assert text_of(got) == f"Key '{key}' not found"


@pytest.mark.parametrize("mode", MODES)
async def test_conformance_fixtures_over_streamable_http(gumcp_http, mode):
    url = f"{gumcp_http.base}/conformance-fixtures/{uid('conf')}/mcp"
    logs = []
    with anyio.fail_after(LIMIT):
        async with conformance_client(streamable_http_client(url), mode, logs) as client:
            await exercise_conformance(client, mode, logs)


async def test_conformance_fixtures_over_legacy_sse(gumcp_http):
    logs = []

    async def on_log(params):
        logs.append(params.data)

    with anyio.fail_after(LIMIT):
        async with sdk_sse(
            gumcp_http.base,
            "conformance-fixtures",
            uid("conf-sse"),
            sampling_callback=sampling,
            elicitation_callback=elicitation,
            logging_callback=on_log,
        ) as client:
            await exercise_conformance(client, "legacy", logs)


async def test_conformance_fixtures_on_the_open_route(gumcp_http):
    logs = []
    with anyio.fail_after(LIMIT):
        async with conformance_client(f"{gumcp_http.base}/conformance-fixtures/mcp", "auto", logs) as client:
            assert client.protocol_version == "2026-07-28"
            await exercise_conformance(client, "auto", logs)


def conformance_over(base: str, transport: str, user: str, **extra) -> Client:
    """A conformance-fixtures client with callbacks over one of the HTTP transports."""
    callbacks = {"sampling_callback": sampling, "elicitation_callback": elicitation, **extra}
    if transport == "sse":
        return sdk_sse(base, "conformance-fixtures", user, **callbacks)
    mode = "legacy" if transport == "legacy-http" else "2026-07-28"
    return Client(streamable_http_client(f"{base}/conformance-fixtures/{user}/mcp"), mode=mode, **callbacks)


@pytest.mark.parametrize("transport", ["sse", "legacy-http", "2026-http"])
async def test_a_cancelled_call_leaves_the_connection_working(gumcp_http, transport):
    with anyio.fail_after(LIMIT):
        async with conformance_over(gumcp_http.base, transport, uid("canceller")) as client:
            with anyio.move_on_after(0.5) as scope:
                await client.call_tool("test_slow", {"ms": 30000})
            assert scope.cancelled_caught
            after = await client.call_tool("test_simple_text", {})
            assert text_of(after) == "This is a simple text response for testing."


@pytest.mark.parametrize("transport", ["sse", "legacy-http"])
async def test_list_changes_reach_a_legacy_http_session(gumcp_http, transport):
    changes = []

    async def on_message(message):
        if isinstance(message, types.ToolListChangedNotification):
            changes.append("tools")

    with anyio.fail_after(LIMIT):
        async with conformance_over(gumcp_http.base, transport, uid("changes"), message_handler=on_message) as client:
            before = {tool.name for tool in (await client.list_tools()).tools}
            await client.call_tool("test_trigger_tool_change", {})
            with anyio.fail_after(10):
                while not changes:
                    await anyio.sleep(0.02)
            after = {tool.name for tool in (await client.list_tools()).tools}
            assert after - before == {"test_added_tool"}


async def test_list_changes_reach_a_2026_listen_stream_over_http(gumcp_http):
    with anyio.fail_after(LIMIT):
        async with conformance_over(gumcp_http.base, "2026-http", uid("listener")) as client:
            async with client.listen(tools_list_changed=True, prompts_list_changed=True) as subscription:
                await client.call_tool("test_trigger_prompt_change", {})
                with anyio.fail_after(10):
                    async for event in subscription:
                        assert "prompt" in type(event).__name__.lower(), event
                        break
            prompts = {prompt.name for prompt in (await client.list_prompts()).prompts}
            assert "test_added_prompt" in prompts


async def test_many_concurrent_sse_sessions(gumcp_http):
    users = [uid(f"crowd{i}") for i in range(20)]
    answers = {}

    async def one(user):
        async with sdk_sse(gumcp_http.base, "simple-tools-server", user) as client:
            await client.call_tool("store-data", {"key": "me", "value": user})
            await anyio.sleep(0.2)  # let the others interleave
            answers[user] = text_of(await client.call_tool("retrieve-data", {"key": "me"}))

    with anyio.fail_after(LIMIT):
        async with anyio.create_task_group() as group:
            for user in users:
                group.start_soon(one, user)
    assert answers == {user: f"Value for 'me': {user}" for user in users}


# =============================================================================================
# Users and sessions


async def test_users_are_isolated_over_sse(gumcp_http):
    alice, bob = uid("alice"), uid("bob")
    base = gumcp_http.base
    with anyio.fail_after(LIMIT):
        async with sdk_sse(base, "simple-tools-server", alice) as client:
            stored = await client.call_tool("store-data", {"key": "secret-colour", "value": "teal"})
            assert text_of(stored) == "Stored 'secret-colour' with value: teal"
        async with sdk_sse(base, "simple-tools-server", bob) as client:
            got = await client.call_tool("retrieve-data", {"key": "secret-colour"})
            assert text_of(got) == "Key 'secret-colour' not found"
            listed = await client.call_tool("list-data", {})
            assert text_of(listed) == "No data stored"
        # guMCP keeps a user's server between reconnections; so does the runtime.
        async with sdk_sse(base, "simple-tools-server", alice) as client:
            got = await client.call_tool("retrieve-data", {"key": "secret-colour"})
            assert text_of(got) == "Value for 'secret-colour': teal"


async def test_users_are_isolated_over_streamable_http(gumcp_http):
    alice, bob = uid("alice"), uid("bob")
    base = gumcp_http.base
    with anyio.fail_after(LIMIT):
        async with Client(f"{base}/simple-tools-server/{alice}/mcp", mode="legacy") as client:
            await client.call_tool("store-data", {"key": "pin", "value": "1234"})
        async with Client(f"{base}/simple-tools-server/{bob}/mcp", mode="2026-07-28") as client:
            got = await client.call_tool("retrieve-data", {"key": "pin"})
            assert text_of(got) == "Key 'pin' not found"
        async with Client(f"{base}/simple-tools-server/{alice}/mcp", mode="2026-07-28") as client:
            got = await client.call_tool("retrieve-data", {"key": "pin"})
            assert text_of(got) == "Value for 'pin': 1234"


async def test_a_user_sees_the_same_data_on_every_transport(gumcp_http):
    user = uid("everywhere")
    base = gumcp_http.base
    with anyio.fail_after(LIMIT):
        async with sdk_sse(base, "simple-tools-server", user) as client:
            await client.call_tool("store-data", {"key": "via-sse", "value": "a"})
        async with Client(f"{base}/simple-tools-server/{user}/mcp", mode="legacy") as client:
            got = await client.call_tool("retrieve-data", {"key": "via-sse"})
            assert text_of(got) == "Value for 'via-sse': a"
            await client.call_tool("store-data", {"key": "via-mcp", "value": "b"})
        async with sdk_sse(base, "simple-tools-server", f"{user}%3Asome-api-key") as client:
            listed = await client.call_tool("list-data", {})
            assert text_of(listed) == "Stored data:\n- via-mcp: b\n- via-sse: a"


async def test_two_sse_streams_of_one_user_are_both_live(gumcp_http):
    """guMCP keeps one transport per key: a second stream silently replaces the first, and closing
    either makes every POST for the key 404. Here both stay usable, and so does the survivor."""
    user = uid("twin")
    base = gumcp_http.base
    ids = []
    with anyio.fail_after(LIMIT):
        async with sdk_sse(base, "simple-tools-server", user, ids.append) as first:
            async with sdk_sse(base, "simple-tools-server", user, ids.append) as second:
                assert len(ids) == 2 and ids[0] != ids[1], ids
                await first.call_tool("store-data", {"key": "from-first", "value": "1"})
                got = await second.call_tool("retrieve-data", {"key": "from-first"})
                assert text_of(got) == "Value for 'from-first': 1"
                await second.call_tool("store-data", {"key": "from-second", "value": "2"})
                got = await first.call_tool("retrieve-data", {"key": "from-second"})
                assert text_of(got) == "Value for 'from-second': 2"
            listed = await first.call_tool("list-data", {})
            assert text_of(listed) == "Stored data:\n- from-first: 1\n- from-second: 2"


# =============================================================================================
# guMCP legacy SSE, byte for byte


async def test_endpoint_event_names_gumcps_messages_path(gumcp_http):
    """The endpoint event's fields: guMCP's path, the key as Python's quote() writes it (`:` is
    `%3A`), and a 32-hex session id. The exact framing bytes are checked separately below."""
    user = uid("alice")
    # (path segment sent, how guMCP's quote() writes the key into the endpoint event)
    cases = [
        (f"{user}%3As3cret", f"{user}%3As3cret"),
        (f"{user}:s3cret", f"{user}%3As3cret"),
        (user, user),
        (f"{user}%2Btag%40example.com%3Ak", f"{user}%2Btag%40example.com%3Ak"),
        (f"{user}%2Btag@example.com:k", f"{user}%2Btag%40example.com%3Ak"),
    ]
    with anyio.fail_after(LIMIT):
        async with http_client() as http:
            for sent, quoted in cases:
                async with open_sse(http, f"{gumcp_http.base}/simple-tools-server/{sent}") as stream:
                    assert stream.response.status_code == 200, (sent, stream.response.status_code)
                    assert stream.response.headers["content-type"].startswith("text/event-stream")
                    event = parse_event(await stream.read_event())
                    assert event.get("event") == "endpoint", (sent, event)
                    assert event["comments"] == [], (sent, event)
                    expected = rf"/simple-tools-server/{re.escape(quoted)}/messages/\?session_id=[0-9a-f]{{32}}"
                    assert re.fullmatch(expected, event.get("data", "")), (sent, event)


async def test_endpoint_event_bytes_are_gumcps(gumcp_http):
    """sse-starlette's framing, as guMCP sends it: CRLF line ends, a blank CRLF line after."""
    user = uid("bytes")
    with anyio.fail_after(LIMIT):
        async with http_client() as http:
            async with open_sse(http, f"{gumcp_http.base}/simple-tools-server/{user}%3Ak3y") as stream:
                event = await stream.read_event()
                expected = (
                    rb"event: endpoint\r\ndata: /simple-tools-server/"
                    + re.escape(f"{user}%3Ak3y".encode())
                    + rb"/messages/\?session_id=[0-9a-f]{32}\r\n\r\n"
                )
                assert re.fullmatch(expected, event), event


async def test_sse_response_headers_match_gumcp(gumcp_http):
    with anyio.fail_after(LIMIT):
        async with http_client() as http:
            async with open_sse(http, f"{gumcp_http.base}/simple-tools-server/{uid('hdr')}") as stream:
                headers = stream.response.headers
                assert headers["content-type"].startswith("text/event-stream"), headers
                assert headers.get("cache-control") == "no-store", headers
                assert headers.get("x-accel-buffering") == "no", headers


async def test_answers_arrive_as_gumcp_message_events(gumcp_http):
    with anyio.fail_after(LIMIT):
        async with http_client() as http:
            async with legacy_sse(http, gumcp_http.base, "simple-tools-server", uid("events")) as session:
                posted = await session.post(INIT)
                assert posted.status_code == 202
                raw = await session.stream.read_event()
                for _ in range(3):  # keep-alive comments may come first; their format is tested below
                    if not raw.startswith(b":"):
                        break
                    raw = await session.stream.read_event()
                framed = re.fullmatch(rb"event: message\r\ndata: (\{[^\r\n]*\})\r\n\r\n", raw)
                assert framed, raw
                answer = json.loads(framed.group(1))
                assert answer["jsonrpc"] == "2.0" and answer["id"] == 1
                assert answer["result"]["protocolVersion"] == "2025-11-25"
                assert answer["result"]["serverInfo"]["name"] == "simple-tools-server"


async def test_keep_alive_comments_come_every_interval():
    with serve({"GUMCP__HTTP__KEEP_ALIVE_SECS": "1"}) as served:
        with anyio.fail_after(LIMIT):
            async with http_client() as http:
                async with open_sse(http, f"{served.base}/simple-tools-server/{uid('pinged')}") as stream:
                    assert parse_event(await stream.read_event())["event"] == "endpoint"
                    comments = 0
                    deadline = time.monotonic() + 4.5
                    while comments < 3:
                        event = parse_event(await stream.read_event(max(0.0, deadline - time.monotonic())))
                        assert set(event) == {"comments"} and event["comments"], event  # nothing but comments
                        comments += 1


async def test_keep_alive_bytes_are_gumcps_ping():
    """sse-starlette's ping: `: ping - <str(datetime.now(timezone.utc))>` + CRLF CRLF."""
    with serve({"GUMCP__HTTP__KEEP_ALIVE_SECS": "1"}) as served:
        with anyio.fail_after(LIMIT):
            async with http_client() as http:
                async with open_sse(http, f"{served.base}/simple-tools-server/{uid('pinged')}") as stream:
                    assert parse_event(await stream.read_event())["event"] == "endpoint"
                    ping = await stream.read_event(timeout=5)
                    found = re.fullmatch(
                        rb": ping - (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{6})?)\+00:00\r\n\r\n", ping
                    )
                    assert found, ping
                    stamp = datetime.datetime.fromisoformat(found.group(1).decode()).replace(tzinfo=datetime.UTC)
                    assert abs((datetime.datetime.now(datetime.UTC) - stamp).total_seconds()) < 60, stamp


async def test_message_post_status_codes(gumcp_http):
    base = gumcp_http.base
    user = uid("poster")
    with anyio.fail_after(LIMIT):
        async with http_client() as http:
            async with legacy_sse(http, base, "simple-tools-server", user) as session:
                await session.initialize()  # 202 for the request and for the notification
                messages = session.endpoint.split("?")[0]
                note = json.dumps(INITIALIZED)
                json_type = {"Content-Type": "application/json"}

                missing = await http.post(messages, content=note, headers=json_type)
                assert missing.status_code == 400, missing.text
                invalid = await http.post(f"{messages}?session_id=not-a-session", content=note, headers=json_type)
                assert invalid.status_code == 400, invalid.text
                unknown = await http.post(f"{messages}?session_id={uuid.uuid4().hex}", content=note, headers=json_type)
                assert unknown.status_code == 404, unknown.text
                garbage = await session.post(b"{not json")
                assert garbage.status_code == 400, garbage.text
                not_rpc = await session.post({"hello": 1})
                assert not_rpc.status_code == 400, not_rpc.text

                # This session id under another user's key, or another server, is not this session.
                other_user = f"{base}/simple-tools-server/{uid('other')}/messages/?session_id={session.session_id}"
                crossed = await http.post(other_user, content=note, headers=json_type)
                assert crossed.status_code == 404, crossed.text
                other_server = f"{base}/conformance-fixtures/{user}/messages/?session_id={session.session_id}"
                crossed = await http.post(other_server, content=note, headers=json_type)
                assert crossed.status_code == 404, crossed.text

                # None of that broke the session.
                listed = await session.call(request(2, "tools/list"))
                assert [tool["name"] for tool in listed["result"]["tools"]] == SIMPLE_TOOLS


async def test_message_post_bodies_match_gumcp(gumcp_http):
    base = gumcp_http.base
    with anyio.fail_after(LIMIT):
        async with http_client() as http:
            async with legacy_sse(http, base, "simple-tools-server", uid("bodies")) as session:
                messages = session.endpoint.split("?")[0]
                note = json.dumps(INITIALIZED)
                json_type = {"Content-Type": "application/json"}

                accepted = await session.post(INIT)
                assert (accepted.status_code, accepted.text) == (202, "Accepted")
                await session.stream.wait_for_id(1)

                missing = await http.post(messages, content=note, headers=json_type)
                assert (missing.status_code, missing.text) == (400, "session_id is required")
                invalid = await http.post(f"{messages}?session_id=zzz", content=note, headers=json_type)
                assert (invalid.status_code, invalid.text) == (400, "Invalid session ID")
                unknown = await http.post(f"{messages}?session_id={uuid.uuid4().hex}", content=note, headers=json_type)
                assert (unknown.status_code, unknown.text) == (404, "Could not find session")
                garbage = await session.post(b"{not json")
                assert (garbage.status_code, garbage.text) == (400, "Could not parse message")

                no_stream = f"{base}/simple-tools-server/{uid('nobody')}/messages/?session_id={session.session_id}"
                gone = await http.post(no_stream, content=note, headers=json_type)
                assert gone.status_code == 404
                assert gone.text in ("Session not found or expired", "Could not find session"), gone.text


async def test_posts_for_a_closed_stream_are_404(gumcp_http):
    with anyio.fail_after(LIMIT):
        async with http_client() as http:
            async with legacy_sse(http, gumcp_http.base, "simple-tools-server", uid("closer")) as session:
                await session.initialize()
                endpoint = session.endpoint
            deadline = time.monotonic() + 10
            while True:
                late = await http.post(endpoint, content=json.dumps(request(9, "tools/list")),
                                       headers={"Content-Type": "application/json"})
                if late.status_code != 202 or time.monotonic() > deadline:
                    break
                await anyio.sleep(0.2)
            assert late.status_code == 404, (late.status_code, late.text)


# =============================================================================================
# Metrics and the life of a session


async def test_metrics_count_sessions_and_carry_no_user_data():
    with serve() as served:
        user, secret = uid("metric-user"), "sk-" + uuid.uuid4().hex
        with anyio.fail_after(LIMIT):
            async with http_client() as http:
                async with legacy_sse(http, served.base, "simple-tools-server", f"{user}%3A{secret}") as session:
                    await session.initialize()
                    listed = await session.call(tool_call(2, "list-data", {}))
                    assert listed["result"]["content"][0]["text"] == "No data stored"

                    text = await metrics_text(http, served)
                    assert "# TYPE gumcp_active_connections gauge" in text
                    assert "# TYPE gumcp_connection_total counter" in text
                    assert metric(text, "gumcp_active_connections", server="simple-tools-server") == 1
                    assert metric(text, "gumcp_connection_total", server="simple-tools-server") == 1
                    assert metric(
                        text, "gumcp_requests_total", server="simple-tools-server", method="tools/call", outcome="ok"
                    ) == 1
                    assert metric(
                        text, "gumcp_request_duration_seconds_count", server="simple-tools-server", method="tools/call"
                    ) == 1
                    assert (metric(text, "gumcp_live_actors", kind="server") or 0) >= 1, text
                    assert (metric(text, "gumcp_live_actors", kind="session") or 0) >= 1, text
                    assert user not in text and secret not in text

                after = await poll_metric(http, served, "gumcp_active_connections", 0, server="simple-tools-server")
                assert after == 0, after
                text = await metrics_text(http, served)
                assert metric(text, "gumcp_connection_total", server="simple-tools-server") == 1


async def test_a_disconnect_mid_call_frees_the_session():
    with serve() as served:
        user = uid("leaver")
        with anyio.fail_after(LIMIT):
            async with http_client() as http:
                async with legacy_sse(http, served.base, "conformance-fixtures", user) as session:
                    await session.initialize()
                    posted = await session.post(tool_call(2, "test_slow", {"ms": 30000}, progress_token="slow-1"))
                    assert posted.status_code == 202, posted.text
                    progress = await session.stream.next_message(timeout=10)
                    assert progress["method"] == "notifications/progress", progress
                    assert progress["params"]["progressToken"] == "slow-1"
                    text = await metrics_text(http, served)
                    assert metric(text, "gumcp_active_connections", server="conformance-fixtures") == 1
                # The stream is closed here, with test_slow still running.
                left = await poll_metric(http, served, "gumcp_active_connections", 0, server="conformance-fixtures")
                assert left == 0, f"gumcp_active_connections stayed at {left} for 20 s after the disconnect"
                sessions = await poll_metric(http, served, "gumcp_live_actors", 0, kind="session")
                assert (sessions or 0) == 0, f"{sessions} session actors still live 20 s after the disconnect"

                async with legacy_sse(http, served.base, "conformance-fixtures", user) as again:
                    await again.initialize()
                    answer = await again.call(tool_call(2, "test_simple_text", {}))
                    assert answer["result"]["content"][0]["text"] == "This is a simple text response for testing."


async def test_sigterm_with_open_streams_exits_0_and_ends_them():
    with serve() as served:
        with anyio.fail_after(LIMIT):
            async with http_client() as http:
                async with (
                    legacy_sse(http, served.base, "simple-tools-server", uid("open1")) as first,
                    legacy_sse(http, served.base, "conformance-fixtures", uid("open2")) as second,
                ):
                    await first.initialize()
                    opened = await http.post(
                        f"{served.base}/simple-tools-server/{uid('open3')}/mcp", json=INIT, headers=MCP_HEADERS
                    )
                    assert opened.status_code == 200, opened.text

                    code, took = await anyio.to_thread.run_sync(served.terminate_and_wait)
                    assert code == 0, (code, took, served.stderr_tail())
                    assert took <= GRACE_SECS + 5
                    # The service ended its streams (final chunk), not just died under them.
                    assert await first.stream.wait_for_end(5) == "clean"
                    assert await second.stream.wait_for_end(5) == "clean"


async def test_sigterm_lets_an_in_flight_call_finish():
    with serve() as served:
        with anyio.fail_after(LIMIT):
            async with http_client() as http:
                async with legacy_sse(http, served.base, "conformance-fixtures", uid("finisher")) as session:
                    await session.initialize()
                    posted = await session.post(tool_call(2, "test_slow", {"ms": 1500}, progress_token="fin"))
                    assert posted.status_code == 202, posted.text
                    progress = await session.stream.next_message(timeout=10)
                    assert progress["method"] == "notifications/progress", progress

                    served.proc.send_signal(signal.SIGTERM)
                    answer = await session.stream.wait_for_id(2, timeout=GRACE_SECS + 5)
                    assert answer["result"]["content"][0]["text"] == "Slept 1500 ms", answer

                    # Shutting down: no new connections are taken.
                    async with http_client() as fresh:
                        try:
                            late = await fresh.get(f"{served.base}/health_check")
                        except httpx2.TransportError:
                            late = None
                        assert late is None or late.status_code == 503, late.status_code

                    code, took = await anyio.to_thread.run_sync(served.terminate_and_wait)
                    assert code == 0, (code, took, served.stderr_tail())


# =============================================================================================
# Guards: origin, size, routing, health


async def test_a_foreign_origin_is_403(gumcp_http):
    base = gumcp_http.base
    user = uid("origin")
    evil = {"Origin": "http://evil.example"}
    with anyio.fail_after(LIMIT):
        async with http_client() as http:
            async with open_sse(http, f"{base}/simple-tools-server/{user}", headers=evil) as stream:
                assert stream.response.status_code == 403
            for url in (f"{base}/simple-tools-server/{user}/mcp", f"{base}/simple-tools-server/mcp"):
                refused = await http.post(url, json=INIT, headers={**MCP_HEADERS, **evil})
                assert refused.status_code == 403, (url, refused.status_code)
            async with legacy_sse(http, base, "simple-tools-server", user) as session:
                refused = await session.post(INIT, headers=evil)
                assert refused.status_code == 403, refused.status_code
                await session.initialize()  # the session itself is unharmed

            # The service's own (loopback) origin is fine.
            allowed = await http.post(
                f"{base}/simple-tools-server/{user}/mcp", json=INIT, headers={**MCP_HEADERS, "Origin": base}
            )
            assert allowed.status_code == 200, allowed.status_code
            assert allowed.headers.get("mcp-session-id")


async def test_a_foreign_host_header_is_refused(gumcp_http):
    """DNS-rebinding protection: bound to loopback, only loopback Host names are served."""
    user = uid("rebind")
    with anyio.fail_after(LIMIT):
        async with http_client() as http:
            for method, url, body in (
                ("GET", f"{gumcp_http.base}/simple-tools-server/{user}", None),
                ("POST", f"{gumcp_http.base}/simple-tools-server/{user}/mcp", INIT),
            ):
                headers = {**MCP_HEADERS, "Host": "attacker.example"}
                refused = await http.request(method, url, json=body, headers=headers)
                assert refused.status_code in (403, 421), (method, url, refused.status_code)
            localhost = gumcp_http.base.replace("127.0.0.1", "localhost")
            allowed = await http.post(
                f"{gumcp_http.base}/simple-tools-server/{user}/mcp",
                json=INIT,
                headers={**MCP_HEADERS, "Host": localhost.removeprefix("http://")},
            )
            assert allowed.status_code == 200, allowed.status_code


async def test_an_oversize_body_is_413(gumcp_http):
    host, port = gumcp_http.host_port
    user = uid("big")
    body = oversize_initialize(5 * 1024 * 1024)  # over the 4 MiB default (protocol.max_message_bytes)
    with anyio.fail_after(LIMIT):
        for path in (f"/simple-tools-server/{user}/mcp", "/simple-tools-server/mcp"):
            for chunked in (False, True):
                status, head = await anyio.to_thread.run_sync(raw_post, host, port, path, body, chunked)
                assert status == 413, (path, chunked, head)
        async with http_client() as http:
            async with legacy_sse(http, gumcp_http.base, "simple-tools-server", user) as session:
                path = session.endpoint.removeprefix(gumcp_http.base)
                for chunked in (False, True):
                    status, head = await anyio.to_thread.run_sync(raw_post, host, port, path, body, chunked)
                    assert status == 413, (path, chunked, head)
                await session.initialize()  # the session survives a refused body


async def test_an_unknown_server_is_404(gumcp_http):
    base = gumcp_http.base
    user = uid("lost")
    with anyio.fail_after(LIMIT):
        async with http_client() as http:
            async with open_sse(http, f"{base}/no-such-server/{user}") as stream:
                assert stream.response.status_code == 404
            for url in (f"{base}/no-such-server/{user}/mcp", f"{base}/no-such-server/mcp"):
                missing = await http.post(url, json=INIT, headers=MCP_HEADERS)
                assert missing.status_code == 404, (url, missing.status_code)
            messages = f"{base}/no-such-server/{user}/messages/?session_id={uuid.uuid4().hex}"
            missing = await http.post(messages, json=INITIALIZED)
            assert missing.status_code == 404, missing.status_code


async def test_health_routes(gumcp_http):
    expected = server_folders()
    assert {"simple-tools-server", "conformance-fixtures"} <= expected
    with anyio.fail_after(LIMIT):
        async with http_client() as http:
            root = await http.get(f"{gumcp_http.base}/")
            assert root.status_code == 200
            assert root.headers["content-type"].startswith("application/json")
            body = root.json()
            assert set(body) == {"status", "message", "servers"}, body
            assert body["status"] == "ok"
            assert body["message"] == "guMCP server running"  # guMCP main's text (gumcp-sse.md §3)
            assert set(body["servers"]) == expected and len(body["servers"]) == len(expected)

            health = await http.get(f"{gumcp_http.base}/health_check")
            assert health.status_code == 200
            assert health.headers["content-type"].startswith("application/json")
            assert health.json() == {"status": "ok", "servers": body["servers"]}


# =============================================================================================
# Streamable HTTP, raw


async def test_streamable_http_session_lifecycle(gumcp_http):
    url = f"{gumcp_http.base}/simple-tools-server/{uid('life')}/mcp"
    with anyio.fail_after(LIMIT):
        async with http_client() as http:
            opened = await http.post(url, json=INIT, headers=MCP_HEADERS)
            assert opened.status_code == 200, opened.text
            session_id = opened.headers.get("mcp-session-id")
            assert session_id and re.fullmatch(r"[\x21-\x7e]+", session_id), opened.headers
            assert answer_to(opened, 1)["result"]["protocolVersion"] == "2025-11-25"

            headers = {**MCP_HEADERS, "Mcp-Session-Id": session_id, "MCP-Protocol-Version": "2025-11-25"}
            note = await http.post(url, json=INITIALIZED, headers=headers)
            assert note.status_code == 202, (note.status_code, note.text)

            listed = await http.post(url, json=request(2, "tools/list"), headers=headers)
            assert listed.status_code == 200
            assert [tool["name"] for tool in answer_to(listed, 2)["result"]["tools"]] == SIMPLE_TOOLS
            stored = await http.post(url, json=tool_call(3, "store-data", {"key": "k", "value": "v"}), headers=headers)
            assert answer_to(stored, 3)["result"]["content"][0]["text"] == "Stored 'k' with value: v"

            unknown = await http.post(
                url, json=request(4, "tools/list"), headers={**headers, "Mcp-Session-Id": uuid.uuid4().hex}
            )
            assert unknown.status_code == 404, unknown.status_code

            ended = await http.delete(url, headers=headers)
            assert ended.status_code in (200, 202, 204), ended.status_code
            reused = await http.post(url, json=request(5, "tools/list"), headers=headers)
            assert reused.status_code == 404, reused.status_code


async def test_a_session_id_is_bound_to_its_user(gumcp_http):
    base = gumcp_http.base
    owner, intruder = uid("owner"), uid("intruder")
    with anyio.fail_after(LIMIT):
        async with http_client() as http:
            opened = await http.post(f"{base}/simple-tools-server/{owner}/mcp", json=INIT, headers=MCP_HEADERS)
            session_id = opened.headers["mcp-session-id"]
            headers = {**MCP_HEADERS, "Mcp-Session-Id": session_id, "MCP-Protocol-Version": "2025-11-25"}
            note = await http.post(f"{base}/simple-tools-server/{owner}/mcp", json=INITIALIZED, headers=headers)
            assert note.status_code == 202, note.status_code
            stolen = await http.post(
                f"{base}/simple-tools-server/{intruder}/mcp",
                json=tool_call(2, "list-data", {}),
                headers=headers,
            )
            assert stolen.status_code == 404, (stolen.status_code, stolen.text[:300])
            other_server = await http.post(
                f"{base}/conformance-fixtures/{owner}/mcp", json=request(3, "tools/list"), headers=headers
            )
            assert other_server.status_code == 404, other_server.status_code


async def test_2026_is_stateless_post_only(gumcp_http):
    base = gumcp_http.base
    modern = {"MCP-Protocol-Version": "2026-07-28"}
    with anyio.fail_after(LIMIT):
        async with http_client() as http:
            for url in (f"{base}/simple-tools-server/{uid('modern')}/mcp", f"{base}/simple-tools-server/mcp"):
                listed = await http.post(
                    url,
                    json=request(1, "tools/list", {"_meta": MODERN_META}),
                    headers={**MCP_HEADERS, **modern, "Mcp-Method": "tools/list"},
                )
                assert listed.status_code == 200, (url, listed.status_code, listed.text[:300])
                assert "mcp-session-id" not in listed.headers, listed.headers
                result = answer_to(listed, 1)["result"]
                assert result["resultType"] == "complete"
                assert [tool["name"] for tool in result["tools"]] == SIMPLE_TOOLS

                stream = await http.get(url, headers={"Accept": "text/event-stream", **modern})
                assert stream.status_code == 405, (url, stream.status_code)
                ended = await http.delete(url, headers=modern)
                assert ended.status_code == 405, (url, ended.status_code)
