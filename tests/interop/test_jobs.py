"""A tool that follows an upstream job (firecrawl's crawl_website) through the official Python
SDK over stdio, in both eras: progress reaches the client's callback while the call waits,
and a call the client gives up on stops the job upstream (DELETE /crawl/{id})."""

import contextlib
import http.server
import json
import os
import pathlib
import tempfile
import threading

import anyio
import pytest
from mcp import Client, StdioServerParameters

from conftest import BIN, MODES

pytestmark = pytest.mark.anyio


class Firecrawl(http.server.BaseHTTPRequestHandler):
    """Firecrawl's crawl endpoints: crawl `c1` is done at its third status request, `c2` never."""

    polls: dict = {}
    deleted: list = []

    def log_message(self, *args):
        pass

    def answer(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("content-length", 0))
        url = json.loads(self.rfile.read(length))["url"]
        crawl = "c2" if "forever" in url else "c1"
        self.answer({"success": True, "id": crawl, "url": f"https://api.firecrawl.dev/v1/crawl/{crawl}"})

    def do_GET(self):
        crawl = self.path.rsplit("/", 1)[-1]
        polls = self.polls[crawl] = self.polls.get(crawl, 0) + 1
        done = crawl == "c1" and polls >= 3
        self.answer({
            "status": "completed" if done else "scraping",
            "total": 3, "completed": min(polls, 3),
            "data": [{"markdown": f"# Page {n}"} for n in range(1, min(polls, 3) + 1)],
        })

    def do_DELETE(self):
        self.deleted.append(self.path)
        self.answer({"status": "cancelled"})


@contextlib.contextmanager
def firecrawl_server():
    Firecrawl.polls, Firecrawl.deleted = {}, []
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Firecrawl)
    thread = threading.Thread(target=upstream.serve_forever, daemon=True)
    thread.start()
    with tempfile.TemporaryDirectory() as root:
        saved = pathlib.Path(root, "local_auth/credentials/firecrawl")
        saved.mkdir(parents=True)
        (saved / "alice_credentials.json").write_text(json.dumps({"api_key": "fc-test"}))
        config = pathlib.Path(root, "gumcp.toml")
        port = upstream.server_address[1]
        config.write_text(
            f'[servers.base_urls]\nfirecrawl = "http://127.0.0.1:{port}"\n'
            f'[auth]\nlocal_dir = "{root}/local_auth"\n'
        )
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "warn")
        yield StdioServerParameters(
            command=BIN,
            args=["--config", str(config), "stdio", "--server", "firecrawl", "--user-id", "alice"],
            env=env,
        )
    upstream.shutdown()


@pytest.mark.parametrize("mode", MODES)
async def test_a_crawl_reports_progress_and_answers_its_pages(mode):
    seen = []

    async def on_progress(progress, total, message):
        seen.append((progress, total, message))

    with firecrawl_server() as server:
        async with Client(server, mode=mode) as client:
            result = await client.call_tool(
                "crawl_website", {"url": "https://docs.example"}, progress_callback=on_progress
            )
    assert not result.is_error, result
    assert result.structured_content["status"] == "completed"
    assert result.structured_content["id"] == "c1"
    assert seen == [(1, 3, "scraping: 1 of 3"), (2, 3, "scraping: 2 of 3")]


@pytest.mark.parametrize("mode", MODES)
async def test_a_crawl_the_client_gives_up_on_is_cancelled_upstream(mode):
    with firecrawl_server() as server:
        async with Client(server, mode=mode) as client:
            with anyio.move_on_after(1.5) as scope:
                await client.call_tool("crawl_website", {"url": "https://forever.example"})
            assert scope.cancelled_caught
            for _ in range(200):
                if Firecrawl.deleted:
                    break
                await anyio.sleep(0.05)
    assert Firecrawl.deleted == ["/crawl/c2"]
    assert Firecrawl.polls.get("c2", 0) >= 1
