"""conformance-fixtures through the official Python SDK over stdio: every tool, resource, template
and prompt, in the legacy era and in 2026-07-28, including the client-side features (sampling,
elicitation, roots), progress, logging, cancellation and list changes."""

import anyio
import pytest
from mcp import Client, MCPError, types

from conftest import MODES, stdio

pytestmark = pytest.mark.anyio

MODERN = ["2026-07-28", "auto"]


def text_of(result) -> str:
    return "".join(block.text for block in result.content if block.type == "text")


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


async def roots(context):
    return types.ListRootsResult(roots=[types.Root(uri="file:///workspace", name="workspace")])


def fixtures(mode, **extra):
    return Client(
        stdio("conformance-fixtures"),
        mode=mode,
        sampling_callback=sampling,
        elicitation_callback=elicitation,
        list_roots_callback=roots,
        **extra,
    )


@pytest.mark.parametrize("mode", MODES)
async def test_content_tools(mode):
    async with fixtures(mode) as client:
        simple = await client.call_tool("test_simple_text", {})
        assert text_of(simple) == "This is a simple text response for testing."

        image = await client.call_tool("test_image_content", {})
        assert image.content[0].type == "image" and image.content[0].mime_type == "image/png"

        audio = await client.call_tool("test_audio_content", {})
        assert audio.content[0].type == "audio" and audio.content[0].mime_type == "audio/wav"

        embedded = await client.call_tool("test_embedded_resource", {})
        assert embedded.content[0].type == "resource"
        assert embedded.content[0].resource.text == "This is an embedded resource content."

        mixed = await client.call_tool("test_multiple_content_types", {})
        assert [block.type for block in mixed.content] == ["text", "image", "resource"]

        structured = await client.call_tool("test_structured_content", {"location": "Oslo"})
        assert structured.structured_content["location"] == "Oslo"

        failing = await client.call_tool("test_error_handling", {})
        assert failing.is_error
        assert text_of(failing) == "This tool intentionally returns an error for testing"


@pytest.mark.parametrize("mode", MODES)
async def test_progress_is_reported_before_the_result(mode):
    seen = []

    async def on_progress(progress, total, message):
        seen.append((progress, total))

    async with fixtures(mode) as client:
        result = await client.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)
        assert not result.is_error
    assert seen == [(0, 100), (50, 100), (100, 100)]


async def test_logging_in_a_legacy_session_follows_set_level():
    messages = []

    async def on_log(params):
        messages.append((params.level, params.data))

    async with fixtures("legacy", logging_callback=on_log) as client:
        await client.call_tool("test_tool_with_logging", {})
        assert [data for _, data in messages] == [
            "Tool execution started",
            "Tool processing data",
            "Tool execution completed",
        ]
        messages.clear()
        await client.set_logging_level("error")
        await client.call_tool("test_tool_with_logging", {})
        assert messages == []


async def test_modern_logging_only_when_the_request_asks():
    messages = []

    async def on_log(params):
        messages.append(params.data)

    async with fixtures("2026-07-28", logging_callback=on_log) as client:
        await client.call_tool("test_logging_tool", {})
        assert messages == []
    async with fixtures("2026-07-28", logging_callback=on_log, log_level="info") as client:
        await client.call_tool("test_logging_tool", {})
        assert len(messages) == 3


@pytest.mark.parametrize("mode", MODES)
async def test_sampling_and_elicitation_round_trips(mode):
    async with fixtures(mode) as client:
        sampled = await client.call_tool("test_sampling", {"prompt": "What is 2+2?"})
        assert text_of(sampled) == "LLM response: answer to 'What is 2+2?'"

        elicited = await client.call_tool("test_elicitation", {"message": "Who are you?"})
        assert text_of(elicited).startswith("User response: action=accept")
        assert "username-value" in text_of(elicited)

        defaults = await client.call_tool("test_elicitation_sep1034_defaults", {})
        assert text_of(defaults).startswith("Elicitation completed: action=accept")


@pytest.mark.parametrize("mode", MODES)
async def test_multi_round_trip_tools(mode):
    async with fixtures(mode) as client:
        hello = await client.call_tool("test_input_required_result_elicitation", {})
        assert text_of(hello) == "Hello, name-value!"

        capital = await client.call_tool("test_input_required_result_sampling", {})
        assert "capital of France" in text_of(capital)

        listed = await client.call_tool("test_input_required_result_list_roots", {})
        assert "file:///workspace" in text_of(listed)

        several = await client.call_tool("test_input_required_result_multiple_inputs", {})
        assert "name-value" in text_of(several) and "roots: 1" in text_of(several)

        rounds = await client.call_tool("test_input_required_result_multi_round", {})
        assert text_of(rounds) == "Hello, name-value! Your favorite color is color-value."

        prompt = await client.get_prompt("test_input_required_result_prompt", {})
        assert prompt.messages[0].content.text == "Use this context: context-value"


@pytest.mark.parametrize("mode", MODERN)
async def test_request_state_is_sealed_and_checked(mode):
    async with fixtures(mode) as client:
        confirmed = await client.call_tool("test_input_required_result_request_state", {})
        assert "state-ok" in text_of(confirmed)

        first = await client.session.call_tool(
            "test_input_required_result_tampered_state", {}, allow_input_required=True
        )
        assert first.result_type == "input_required"
        tampered = first.request_state[:-2] + ("AA" if not first.request_state.endswith("AA") else "BB")
        with pytest.raises(MCPError) as raised:
            await client.session.call_tool(
                "test_input_required_result_tampered_state",
                {},
                input_responses={"confirm": {"action": "accept", "content": {"ok": True}}},
                request_state=tampered,
                allow_input_required=True,
            )
        assert raised.value.error.code == -32602


async def test_a_missing_client_capability_is_minus_32021():
    async with Client(stdio("conformance-fixtures"), mode="2026-07-28") as client:
        with pytest.raises(MCPError) as raised:
            await client.call_tool("test_missing_capability", {})
        assert raised.value.error.code == -32021
        assert raised.value.error.data["requiredCapabilities"] == {"sampling": {}}


@pytest.mark.parametrize("mode", MODES)
async def test_resources_templates_and_prompts(mode):
    async with fixtures(mode) as client:
        listed = await client.list_resources()
        uris = [str(resource.uri) for resource in listed.resources]
        assert "test://static-text" in uris and "test://static-binary" in uris
        assert all(resource.description for resource in listed.resources)

        text = await client.read_resource("test://static-text")
        assert text.contents[0].text == "This is the content of the static text resource."
        binary = await client.read_resource("test://static-binary")
        assert binary.contents[0].mime_type == "image/png" and binary.contents[0].blob

        templates = await client.list_resource_templates()
        assert templates.resource_templates[0].uri_template == "test://template/{id}/data"
        data = await client.read_resource("test://template/123/data")
        assert '"id":"123"' in data.contents[0].text

        with pytest.raises(MCPError) as raised:
            await client.read_resource("test://nonexistent-resource-for-conformance-testing")
        expected = -32002 if mode == "legacy" else -32602
        assert raised.value.error.code == expected

        prompts = await client.list_prompts()
        assert {"test_simple_prompt", "test_prompt_with_arguments"} <= {p.name for p in prompts.prompts}
        simple = await client.get_prompt("test_simple_prompt", {})
        assert simple.messages[0].content.text == "This is a simple prompt for testing."
        with_args = await client.get_prompt("test_prompt_with_arguments", {"arg1": "hello", "arg2": "world"})
        assert with_args.messages[0].content.text == "Prompt with arguments: arg1='hello', arg2='world'"
        embedded = await client.get_prompt("test_prompt_with_embedded_resource", {"resourceUri": "test://x"})
        assert embedded.messages[0].content.type == "resource"
        image = await client.get_prompt("test_prompt_with_image", {})
        assert image.messages[0].content.type == "image"

        with pytest.raises(MCPError) as raised:
            await client.get_prompt("no_such_prompt", {})
        assert raised.value.error.code == -32602

        completion = await client.complete(
            types.PromptReference(type="ref/prompt", name="test_prompt_with_arguments"),
            {"name": "arg1", "value": "par"},
        )
        assert completion.completion.values == ["paris", "park", "party"]


async def test_resource_subscription_in_a_legacy_session():
    async with fixtures("legacy") as client:
        assert await client.subscribe_resource("test://watched-resource") is not None
        assert await client.unsubscribe_resource("test://watched-resource") is not None


async def test_list_changes_reach_a_legacy_session():
    changes = []

    async def on_message(message):
        if isinstance(message, types.ToolListChangedNotification):
            changes.append("tools")

    async with fixtures("legacy", message_handler=on_message) as client:
        before = {tool.name for tool in (await client.list_tools()).tools}
        await client.call_tool("test_trigger_tool_change", {})
        with anyio.fail_after(10):
            while not changes:
                await anyio.sleep(0.02)
        after = {tool.name for tool in (await client.list_tools()).tools}
        assert after - before == {"test_added_tool"}


async def test_list_changes_reach_a_modern_listen_stream():
    async with fixtures("2026-07-28") as client:
        async with client.listen(tools_list_changed=True, prompts_list_changed=True) as subscription:
            await client.call_tool("test_trigger_prompt_change", {})
            with anyio.fail_after(10):
                async for event in subscription:
                    assert "prompt" in type(event).__name__.lower() or "prompt" in str(event).lower()
                    break
        prompts = {prompt.name for prompt in (await client.list_prompts()).prompts}
        assert "test_added_prompt" in prompts


@pytest.mark.parametrize("mode", MODES)
async def test_a_cancelled_call_leaves_the_connection_working(mode):
    async with fixtures(mode) as client:
        with anyio.move_on_after(0.3) as scope:
            await client.call_tool("test_slow", {"ms": 30000})
        assert scope.cancelled_caught
        after = await client.call_tool("test_simple_text", {})
        assert text_of(after) == "This is a simple text response for testing."


@pytest.mark.parametrize("mode", MODES)
async def test_a_slow_call_does_not_block_others(mode):
    async with fixtures(mode) as client:
        finished = []

        async def slow():
            await client.call_tool("test_slow", {"ms": 1500})
            finished.append("slow")

        async def quick():
            await client.call_tool("test_simple_text", {})
            finished.append("quick")

        async with anyio.create_task_group() as group:
            group.start_soon(slow)
            await anyio.sleep(0.1)
            group.start_soon(quick)
        assert finished == ["quick", "slow"]


@pytest.mark.parametrize("mode", MODES)
async def test_a_panicking_tool_fails_only_its_own_call(mode):
    async with fixtures(mode) as client:
        with pytest.raises(MCPError) as raised:
            await client.call_tool("test_panic", {})
        assert raised.value.error.code == -32603
        after = await client.call_tool("test_simple_text", {})
        assert not after.is_error


async def test_json_schema_2020_12_keywords_are_kept_and_enforced():
    async with fixtures("legacy") as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        schema = tools["json_schema_2020_12_tool"].input_schema
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$defs"]["address"]["$anchor"] == "addressDef"
        assert "if" in schema and "allOf" in schema and schema["additionalProperties"] is False
        ok = await client.call_tool("json_schema_2020_12_tool", {"contactMethod": "email", "email": "a@b"})
        assert not ok.is_error
        bad = await client.call_tool("json_schema_2020_12_tool", {"contactMethod": "phone"})
        assert bad.is_error


ARGUMENTS = {
    "test_sampling": {"prompt": "hi"},
    "test_elicitation": {"message": "hi"},
    "test_structured_content": {"location": "Oslo"},
    "test_slow": {"ms": 100},
    "json_schema_2020_12_tool": {"email": "a@b"},
    "test_x_mcp_header": {"region": "us-west1"},
    "greet": {"name": "Ada"},
    "slow_compute": {"seconds": 0},
    "confirm_delete": {"filename": "a.txt"},
}
# Tools that answer a plain call with a JSON-RPC error: a protocol error on purpose, and tools
# that run only as tasks (-32601 in 2025-11-25, -32021 to a 2026-07-28 request without the
# tasks extension; test_tasks.py and the conformance suite run them as tasks).
PROTOCOL_ERRORS = {"protocol_error_job": -32603, "failing_job": None, "test_tool_with_task": None}


@pytest.mark.parametrize("mode", MODES)
async def test_every_listed_tool_answers(mode):
    async with fixtures(mode) as client:
        tools = (await client.list_tools()).tools
        assert len(tools) >= 29
        for tool in tools:
            if tool.name == "test_panic":
                continue
            if tool.name in PROTOCOL_ERRORS:
                with pytest.raises(MCPError) as refused:
                    await client.call_tool(tool.name, ARGUMENTS.get(tool.name, {}))
                expected = PROTOCOL_ERRORS[tool.name] or (-32601 if mode == "legacy" else -32021)
                assert refused.value.error.code == expected, tool.name
                continue
            result = await client.call_tool(tool.name, ARGUMENTS.get(tool.name, {}))
            expect_error = tool.name == "test_error_handling"
            assert bool(result.is_error) == expect_error, (tool.name, result)
            assert result.content, tool.name
