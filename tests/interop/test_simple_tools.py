"""simple-tools-server through the official Python SDK over stdio, in every era."""

import pytest
from mcp import Client, MCPError

from conftest import MODES, stdio

pytestmark = pytest.mark.anyio


def text_of(result) -> str:
    return "".join(block.text for block in result.content if block.type == "text")


@pytest.mark.parametrize("mode", MODES)
async def test_lists_and_calls_every_tool(mode):
    async with Client(stdio("simple-tools-server"), mode=mode) as client:
        tools = await client.list_tools()
        names = [tool.name for tool in tools.tools]
        assert names == ["store-data", "retrieve-data", "list-data"]
        store = next(tool for tool in tools.tools if tool.name == "store-data")
        assert store.input_schema["required"] == ["key", "value"]

        empty = await client.call_tool("list-data", {})
        assert text_of(empty) == "No data stored"

        stored = await client.call_tool("store-data", {"key": "colour", "value": "teal"})
        assert not stored.is_error
        assert text_of(stored) == "Stored 'colour' with value: teal"

        got = await client.call_tool("retrieve-data", {"key": "colour"})
        assert text_of(got) == "Value for 'colour': teal"

        await client.call_tool("store-data", {"key": "size", "value": "L"})
        listed = await client.call_tool("list-data", {})
        assert text_of(listed) == "Stored data:\n- colour: teal\n- size: L"

        missing = await client.call_tool("retrieve-data", {"key": "nothing-here"})
        assert text_of(missing) == "Key 'nothing-here' not found"

        blank = await client.call_tool("store-data", {"key": "", "value": "x"})
        assert blank.is_error and text_of(blank) == "Missing key or value"


@pytest.mark.parametrize("mode", MODES)
async def test_invalid_arguments_are_a_tool_error_the_model_can_fix(mode):
    async with Client(stdio("simple-tools-server"), mode=mode) as client:
        result = await client.call_tool("store-data", {"key": "only-a-key"})
        assert result.is_error
        assert "value" in text_of(result)


@pytest.mark.parametrize("mode", MODES)
async def test_unknown_tool_is_a_protocol_error(mode):
    async with Client(stdio("simple-tools-server"), mode=mode) as client:
        with pytest.raises(MCPError) as raised:
            await client.call_tool("no-such-tool", {})
        assert raised.value.error.code == -32602


async def test_the_era_is_what_the_client_asked_for():
    async with Client(stdio("simple-tools-server"), mode="legacy") as client:
        assert client.protocol_version == "2025-11-25"
        assert client.server_info.name == "simple-tools-server"
    async with Client(stdio("simple-tools-server"), mode="auto") as client:
        assert client.protocol_version == "2026-07-28"
