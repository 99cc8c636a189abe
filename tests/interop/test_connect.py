"""Connecting an account from an MCP client, through the official Python SDK: a 2025-11-25
session that declared URL elicitation calls a tool of a server whose account is not connected;
it receives `elicitation/create` in URL mode, the test follows the link with an HTTP client
through the mock provider (as the user's browser would), answers `accept`, and the original
call completes with the new token — after `notifications/elicitation/complete` for the same
elicitation."""

import pathlib
import tempfile

import anyio
import httpx2
import pytest
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client

from conftest import serve
from mock_oauth import ALICE_KEY, project, provider

pytestmark = pytest.mark.anyio

LIMIT = 60


def text_of(result) -> str:
    return "".join(block.text for block in result.content if block.type == "text")


async def follow(url: str) -> httpx2.Response:
    """Opens `url` the way a browser does: redirects followed, cookies kept."""
    async with httpx2.AsyncClient(trust_env=False, follow_redirects=True, timeout=15) as browser:
        return await browser.get(url)


async def test_a_url_elicitation_connects_the_account_and_the_call_completes():
    with tempfile.TemporaryDirectory() as tmp, provider() as (provider_url, state):
        root = pathlib.Path(tmp)
        env = project(root, provider_url)
        with serve(env) as served:
            asked = []
            completed = []

            async def elicitation(context, params):
                asked.append(params)
                page = await follow(params.url)
                assert page.status_code == 200, page.text
                assert "Connected <strong>mockhub</strong> for user <strong>alice</strong>" in page.text
                return types.ElicitResult(action="accept")

            async def on_message(message):
                if isinstance(message, types.ElicitCompleteNotification):
                    completed.append(message.params.elicitation_id)

            http = httpx2.AsyncClient(
                trust_env=False,
                headers={"Authorization": f"Bearer {ALICE_KEY}"},
                timeout=httpx2.Timeout(15.0, read=60.0),
            )
            async with http:
                transport = streamable_http_client(f"{served.base}/mockhub/mcp", http_client=http)
                with anyio.fail_after(LIMIT):
                    async with Client(
                        transport,
                        mode="legacy",
                        elicitation_callback=elicitation,
                        message_handler=on_message,
                    ) as client:
                        assert client.session.protocol_version == "2025-11-25"
                        result = await client.call_tool("whoami", {})
                        assert not result.is_error, text_of(result)
                        assert "alice-gh" in text_of(result)
                        # Connected now: the next call needs nothing from the user.
                        again = await client.call_tool("whoami", {})
                        assert "alice-gh" in text_of(again)

            assert len(asked) == 1
            params = asked[0]
            assert params.mode == "url"
            assert params.url.startswith(f"{served.base}/connect/mockhub?t=")
            assert "mockhub" in params.message
            assert completed == [params.elicitation_id]
            assert state.issued == ["tok-1"]
            saved = root / "local_auth" / "credentials" / "mockhub" / "alice_credentials.json"
            assert '"access_token": "tok-1"' in saved.read_text()


async def test_a_declined_elicitation_answers_with_the_link_in_the_tool_error():
    with tempfile.TemporaryDirectory() as tmp, provider() as (provider_url, state):
        env = project(pathlib.Path(tmp), provider_url)
        with serve(env) as served:

            async def decline(context, params):
                return types.ElicitResult(action="decline")

            http = httpx2.AsyncClient(trust_env=False, headers={"Authorization": f"Bearer {ALICE_KEY}"}, timeout=15)
            async with http:
                transport = streamable_http_client(f"{served.base}/mockhub/mcp", http_client=http)
                with anyio.fail_after(LIMIT):
                    async with Client(transport, mode="legacy", elicitation_callback=decline) as client:
                        result = await client.call_tool("whoami", {})
            assert result.is_error
            assert f"connect one at {served.base}/connect/mockhub?t=" in text_of(result)
            assert state.issued == []
