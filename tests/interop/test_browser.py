"""The connect pages in a real browser: Debian's Chromium, headless, driven by playwright
(scripts/browser-env.sh installs both; no browser is downloaded). As user alice: open the list
from a signed link, connect the mock provider's account end to end, see it connected, make a
tool call that succeeds with the new token, disconnect, and see the call answer "not connected"
with a link again. Screenshots of the three pages go to $GUMCP_SCREENSHOTS_DIR when set (the
README's are made that way), else to a temporary folder."""

import json
import os
import pathlib
import tempfile

import httpx2
import pytest

from conftest import serve
from mock_oauth import ALICE_KEY, project, provider

CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="Chromium is installed by scripts/browser-env.sh"
)

META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "browser-test", "version": "1"},
}


def whoami(http: httpx2.Client, base: str) -> dict:
    """A 2026-07-28 `tools/call` of mockhub's whoami as alice; its result."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "whoami", "arguments": {}, "_meta": META},
    }
    answer = http.post(
        f"{base}/mockhub/mcp",
        content=json.dumps(body),
        headers={
            "Authorization": f"Bearer {ALICE_KEY}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2026-07-28",
            "Mcp-Method": "tools/call",
            "Mcp-Name": "whoami",
        },
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["result"]


def text_of(result: dict) -> str:
    return "".join(block.get("text", "") for block in result["content"])


def test_a_user_connects_and_disconnects_an_account_in_a_browser():
    from playwright.sync_api import sync_playwright

    shots = os.environ.get("GUMCP_SCREENSHOTS_DIR")
    with (
        tempfile.TemporaryDirectory() as tmp,
        provider() as (provider_url, state),
        httpx2.Client(trust_env=False, timeout=15) as http,
    ):
        root = pathlib.Path(tmp)
        out = pathlib.Path(shots) if shots else root / "shots"
        out.mkdir(parents=True, exist_ok=True)
        with serve(project(root, provider_url)) as served:
            before = whoami(http, served.base)
            assert before["isError"] and f"connect one at {served.base}/connect/mockhub?t=" in text_of(before)
            link = http.post(
                f"{served.base}/connect/link", headers={"Authorization": f"Bearer {ALICE_KEY}"}
            ).json()["url"]

            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
                )
                try:
                    page = browser.new_page(viewport={"width": 900, "height": 520})
                    violations = []
                    page.on(
                        "console",
                        lambda message: violations.append(message.text)
                        if "Content Security Policy" in message.text
                        else None,
                    )
                    page.goto(link)
                    row = page.locator("#server-mockhub")
                    assert row.locator(".not-connected").inner_text() == "Not connected"

                    row.get_by_role("link", name="Connect").click()
                    page.wait_for_load_state()
                    assert page.locator("h1").inner_text() == "Connected"
                    assert "Connected mockhub for user alice." in page.locator(".ok").inner_text()
                    assert "repo read:user" in page.inner_text("body")
                    page.screenshot(path=str(out / "connect-connected.png"), full_page=True)

                    after = whoami(http, served.base)
                    assert not after["isError"] and "alice-gh" in text_of(after)

                    page.get_by_role("link", name="Back to your accounts").click()
                    page.wait_for_load_state()
                    assert row.locator(".connected").inner_text() == "Connected"
                    page.screenshot(path=str(out / "connect-list.png"), full_page=True)
                    row.get_by_role("button", name="Disconnect").click()
                    page.wait_for_load_state()
                    assert page.locator("h1").inner_text() == "Disconnected"
                    assert "told to revoke" in page.inner_text("body")
                    page.screenshot(path=str(out / "connect-disconnected.png"), full_page=True)
                    assert violations == []
                finally:
                    browser.close()

            assert state.revoked == ["ref-1"]
            again = whoami(http, served.base)
            assert again["isError"] and f"connect one at {served.base}/connect/mockhub?t=" in text_of(again)
            for name in ["connect-list.png", "connect-connected.png", "connect-disconnected.png"]:
                assert (out / name).stat().st_size > 1000
