"""`@modelcontextprotocol/server-everything` (npm, not written here) hosted as a `kind = "stdio"`
server and used through our stdio and HTTP transports by the official Python client: tools,
resources, prompts, completion, progress, logging, and the child's sampling and elicitation
requests relayed to the client and answered. scripts/hosted-env.sh installs the package."""

import os
import pathlib
import subprocess
import tempfile

import anyio
import pytest
from mcp import Client, StdioServerParameters, types

from conftest import BIN, ROOT, serve

pytestmark = pytest.mark.anyio

EVERYTHING = ROOT / ".tools/hosted-npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js"


@pytest.fixture(scope="module")
def servers_dir():
    node = subprocess.run(
        ["bash", str(ROOT / "scripts/hosted-env.sh")], check=True, capture_output=True, text=True, timeout=600
    ).stdout.strip()
    with tempfile.TemporaryDirectory() as root:
        folder = pathlib.Path(root) / "everything"
        folder.mkdir()
        (folder / "server.toml").write_text(
            f"""name = "everything"
description = "The MCP reference server from npm, one process per user"
version = "2026.8.31"
kind = "stdio"
[stdio]
command = "{node}"
args = ["{EVERYTHING}", "stdio"]
"""
        )
        yield str(pathlib.Path(root))


@pytest.fixture(scope="module")
def everything_http(servers_dir):
    with serve({"GUMCP__SERVERS__DIR": servers_dir}) as served:
        yield served


def text_of(result) -> str:
    return "".join(block.text for block in result.content if block.type == "text")


async def sampling(context, params):
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text="sampled by the test client"),
        model="test-model",
        stop_reason="endTurn",
    )


async def elicitation(context, params):
    content = {}
    for name, schema in params.requested_schema.get("properties", {}).items():
        kind = schema.get("type")
        if "enum" in schema:
            content[name] = schema["enum"][0]
        elif kind == "array":
            content[name] = [schema.get("items", {}).get("enum", ["x"])[0]]
        else:
            content[name] = {"boolean": True, "integer": 7, "number": 1.5}.get(kind, f"{name}-value")
    return types.ElicitResult(action="accept", content=content)


@pytest.fixture(params=["stdio", "http"])
def connect(request, servers_dir):
    def client(mode="legacy", **extra):
        if request.param == "stdio":
            env = dict(os.environ, RUST_LOG="warn", GUMCP__SERVERS__DIR=servers_dir)
            transport = StdioServerParameters(command=BIN, args=["stdio", "--server", "everything"], env=env)
        else:
            transport = f"{request.getfixturevalue('everything_http').base}/everything/local/mcp"
        return Client(
            transport, mode=mode, sampling_callback=sampling, elicitation_callback=elicitation, **extra
        )

    return client


async def test_tools_resources_prompts_and_completion(connect):
    async with connect() as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"echo", "get-sum", "trigger-long-running-operation"} <= names
        echoed = await client.call_tool("echo", {"message": "hello"})
        assert "hello" in text_of(echoed)
        summed = await client.call_tool("get-sum", {"a": 2, "b": 3})
        assert "5" in text_of(summed)

        resources = (await client.list_resources()).resources
        assert resources
        read = await client.read_resource(resources[0].uri)
        assert read.contents

        prompts = {prompt.name for prompt in (await client.list_prompts()).prompts}
        assert "simple-prompt" in prompts
        prompt = await client.get_prompt("simple-prompt")
        assert prompt.messages

        completed = await client.complete(
            types.PromptReference(type="ref/prompt", name="completable-prompt"),
            {"name": "department", "value": "E"},
        )
        assert "Engineering" in completed.completion.values


async def test_progress_and_logging_reach_the_client(connect):
    progress, logs = [], []

    async def on_progress(done, total, message):
        progress.append((done, total))

    async def on_log(params):
        logs.append(params.data)

    async with connect(logging_callback=on_log) as client:
        await client.set_logging_level("debug")
        result = await client.call_tool(
            "trigger-long-running-operation", {"duration": 0.2, "steps": 2}, progress_callback=on_progress
        )
        assert "completed" in text_of(result)
        assert progress == [(1, 2), (2, 2)]
        await client.call_tool("toggle-simulated-logging", {})
        assert logs, "the child's log message was not relayed"


async def test_sampling_and_elicitation_are_relayed_and_answered(connect):
    async with connect() as client:
        sampled = await client.call_tool("trigger-sampling-request", {"prompt": "hi", "maxTokens": 10})
        assert "sampled by the test client" in text_of(sampled)
        elicited = await client.call_tool("trigger-elicitation-request", {})
        assert "name-value" in text_of(elicited)


async def test_a_cancelled_call_leaves_the_child_serving(connect):
    async with connect() as client:
        with anyio.move_on_after(1) as scope:
            await client.call_tool("trigger-long-running-operation", {"duration": 30, "steps": 3})
        assert scope.cancelled_caught
        echoed = await client.call_tool("echo", {"message": "still here"})
        assert "still here" in text_of(echoed)


async def test_a_2026_client_is_served_by_the_same_child(connect):
    async with connect(mode="2026-07-28") as client:
        echoed = await client.call_tool("echo", {"message": "modern"})
        assert "modern" in text_of(echoed)
        summed = await client.call_tool("get-sum", {"a": 20, "b": 22})
        assert "42" in text_of(summed)


async def test_a_subscription_reaches_the_child_and_its_updates_reach_the_client(connect):
    updated = []

    async def on_message(message):
        if getattr(message, "method", None) == "notifications/resources/updated":
            updated.append(str(message.params.uri))

    async with connect(message_handler=on_message) as client:
        uri = str((await client.list_resources()).resources[0].uri)
        await client.subscribe_resource(uri)
        # The child announces its subscribed resources' updates once this is on (at once,
        # then every 5 s); only a subscription it received makes it announce any.
        await client.call_tool("toggle-subscriber-updates", {})
        with anyio.fail_after(30):
            while uri not in updated:
                await anyio.sleep(0.05)
        await client.unsubscribe_resource(uri)
        await client.call_tool("toggle-subscriber-updates", {})
