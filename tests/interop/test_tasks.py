"""Tasks (2025-11-25, experimental `tasks` capability) through the official Python SDK's client
over Streamable HTTP: a task-augmented `tools/call` outlives the session that made it and its
result is fetched from a new session of the same user; `tasks/cancel` stops the call on the
server; another user's task id is unknown to them. The SDK has the types but no helper for
tasks, so requests go through `ClientSession.send_request`, typed with the SDK's own models.
"""

import uuid

import anyio
import pytest
from mcp import Client, MCPError, types
from mcp.client.streamable_http import streamable_http_client

pytestmark = pytest.mark.anyio

LIMIT = 60


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def text_of(result) -> str:
    return "".join(block.text for block in result.content if block.type == "text")


def fixtures(base: str, user: str) -> Client:
    """A 2025-11-25 session of `user` on conformance-fixtures."""
    return Client(streamable_http_client(f"{base}/conformance-fixtures/{user}/mcp"), mode="legacy")


async def start_task(client: Client, tool: str, arguments: dict) -> types.CreateTaskResult:
    """A task-augmented `tools/call`. The SDK checks every `tools/call` answer against its
    2025-11-25 result surface, which leaves tasks out (a `CreateTaskResult` is refused there as
    a malformed `CallToolResult`), so this one request goes through the session's own JSON-RPC
    dispatcher — the same wire and transport — and its answer is checked against the SDK's
    `CreateTaskResult` model instead."""
    params = types.CallToolRequestParams(name=tool, arguments=arguments, task=types.TaskMetadata(ttl=60_000))
    raw = await client.session._dispatcher.send_raw_request(
        "tools/call", params.model_dump(by_alias=True, mode="json", exclude_none=True)
    )
    return types.CreateTaskResult.model_validate(raw, by_name=False)


async def get_task(client: Client, task_id: str) -> types.GetTaskResult:
    request = types.GetTaskRequest(params=types.GetTaskRequestParams(task_id=task_id))
    return await client.session.send_request(request, types.GetTaskResult)


async def task_result(client: Client, task_id: str) -> types.CallToolResult:
    request = types.GetTaskPayloadRequest(params=types.GetTaskPayloadRequestParams(task_id=task_id))
    return await client.session.send_request(request, types.CallToolResult)


async def cancel_task(client: Client, task_id: str) -> types.CancelTaskResult:
    request = types.CancelTaskRequest(params=types.CancelTaskRequestParams(task_id=task_id))
    return await client.session.send_request(request, types.CancelTaskResult)


async def list_tasks(client: Client) -> types.ListTasksResult:
    return await client.session.send_request(types.ListTasksRequest(), types.ListTasksResult)


async def test_a_task_outlives_its_session_and_a_new_session_fetches_its_result(gumcp_http):
    user = uid("task-user")
    with anyio.fail_after(LIMIT):
        async with fixtures(gumcp_http.base, user) as client:
            assert client.protocol_version == "2025-11-25"
            assert client.server_capabilities.tasks.requests.tools.call is not None
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            assert tools["slow_compute"].execution.task_support == "optional"
            assert tools["failing_job"].execution.task_support == "required"
            assert tools["greet"].execution is None
            created = await start_task(client, "slow_compute", {"seconds": 1, "label": "survivor"})
            assert created.task.status == "working"
            task_id = created.task.task_id
            # A tool that runs only as a task is refused as a plain call (-32601).
            with pytest.raises(MCPError) as refused:
                await client.call_tool("failing_job", {})
            assert refused.value.error.code == -32601
        # That session is gone (DELETE); the same user comes back with a new one.
        async with fixtures(gumcp_http.base, user) as client:
            listed = await list_tasks(client)
            assert task_id in [task.task_id for task in listed.tasks]
            result = await task_result(client, task_id)  # waits for the end
            assert text_of(result) == "Computed survivor in 1 s"
            assert result.meta["io.modelcontextprotocol/related-task"]["taskId"] == task_id
            got = await get_task(client, task_id)
            assert got.status == "completed" and got.task_id == task_id


async def test_cancelling_a_task_stops_its_call_on_the_server(gumcp_http):
    user = uid("cancel-user")
    label = uid("stop-me")
    with anyio.fail_after(LIMIT):
        async with fixtures(gumcp_http.base, user) as client:
            created = await start_task(client, "slow_compute", {"seconds": 600, "label": label})
            task_id = created.task.task_id
            cancelled = await cancel_task(client, task_id)
            assert cancelled.status == "cancelled"
            # The tool's own future was dropped mid-way: the server noticed the cancellation.
            stopped = ""
            for _ in range(200):
                stopped = text_of(await client.call_tool("slow_compute_stopped", {}))
                if label in stopped:
                    break
                await anyio.sleep(0.05)
            assert label in stopped, stopped
            assert (await get_task(client, task_id)).status == "cancelled"
            # A task that ended cannot be cancelled again (-32602).
            with pytest.raises(MCPError) as again:
                await cancel_task(client, task_id)
            assert again.value.error.code == -32602


async def test_another_users_task_id_is_unknown_to_them(gumcp_http):
    owner, other = uid("owner"), uid("other")
    with anyio.fail_after(LIMIT):
        async with fixtures(gumcp_http.base, owner) as mine, fixtures(gumcp_http.base, other) as theirs:
            created = await start_task(mine, "slow_compute", {"seconds": 600, "label": "private"})
            task_id = created.task.task_id
            for attempt in (get_task, task_result, cancel_task):
                with pytest.raises(MCPError) as refused:
                    await attempt(theirs, task_id)
                assert refused.value.error.code == -32602, attempt.__name__
            assert task_id not in [task.task_id for task in (await list_tasks(theirs)).tasks]
            # Still the owner's, untouched.
            assert (await get_task(mine, task_id)).status == "working"
            assert (await cancel_task(mine, task_id)).status == "cancelled"
