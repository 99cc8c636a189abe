"""A mock OAuth provider and API for the connect tests, checking what a real provider checks:
the client id and secret, the redirect URI of the authorization request, the PKCE verifier
against its S256 challenge, and single-use codes. `/authorize` approves at once (a 302 back
to the redirect URI); `/revoke` (RFC 7009) records what was revoked; `/user` answers only a
token it issued that nobody revoked. Also writes the project (manifest, OAuth app, config)
that points `gumcp-actors serve` at it."""

import base64
import contextlib
import hashlib
import json
import pathlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

CLIENT_ID = "cid"
CLIENT_SECRET = "csecret"


class ProviderState:
    def __init__(self):
        self.lock = threading.Lock()
        self.codes = {}  # code -> (challenge, redirect_uri)
        self.issued = []
        self.revoked = []


def _handler(state: ProviderState):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _send(self, status, body=b"", headers=None):
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status, value):
            self._send(status, json.dumps(value).encode(), {"Content-Type": "application/json"})

        def _form(self):
            length = int(self.headers.get("Content-Length", "0"))
            return {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}

        def do_GET(self):
            url = urlsplit(self.path)
            params = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/authorize":
                if (
                    params.get("client_id") != CLIENT_ID
                    or params.get("code_challenge_method") != "S256"
                    or params.get("response_type") != "code"
                ):
                    return self._send(400, b"bad authorization request")
                with state.lock:
                    code = f"code-{len(state.codes) + 1}"
                    state.codes[code] = (params["code_challenge"], params["redirect_uri"])
                back = params["redirect_uri"] + "?" + urlencode({"code": code, "state": params["state"]})
                return self._send(302, headers={"Location": back})
            if url.path == "/user":
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                with state.lock:
                    live = token in state.issued and token.replace("tok-", "ref-") not in state.revoked
                if live:
                    return self._json(200, {"login": "alice-gh"})
                return self._json(401, {"message": "Bad credentials"})
            return self._send(404)

        def do_POST(self):
            url = urlsplit(self.path)
            body = self._form()
            if body.get("client_id") != CLIENT_ID or body.get("client_secret") != CLIENT_SECRET:
                return self._json(401, {"error": "invalid_client"})
            if url.path == "/token":
                with state.lock:
                    found = state.codes.pop(body.get("code", ""), None)
                    if found is None or body.get("grant_type") != "authorization_code":
                        return self._json(400, {"error": "invalid_grant"})
                    challenge, redirect = found
                    verifier = body.get("code_verifier", "").encode()
                    computed = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
                    if body.get("redirect_uri") != redirect or computed != challenge:
                        return self._json(400, {"error": "invalid_grant"})
                    n = len(state.issued) + 1
                    state.issued.append(f"tok-{n}")
                return self._json(
                    200,
                    {
                        "access_token": f"tok-{n}",
                        "refresh_token": f"ref-{n}",
                        "token_type": "bearer",
                        "expires_in": 3600,
                        "scope": "repo read:user",
                    },
                )
            if url.path == "/revoke":
                with state.lock:
                    state.revoked.append(body.get("token"))
                return self._send(200)
            return self._send(404)

    return Handler


@contextlib.contextmanager
def provider():
    """Runs the mock on a free loopback port; yields (base URL, ProviderState)."""
    state = ProviderState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


ALICE_KEY = "alice-key"


def project(root: pathlib.Path, provider_url: str) -> dict[str, str]:
    """Writes `mockhub` (an OAuth `http` server whose `whoami` tool reads `/user`), its OAuth
    app and a config (API keys: alice) into `root`; the environment that points serve at them."""
    server = root / "servers" / "mockhub"
    server.mkdir(parents=True)
    (server / "server.toml").write_text(
        f"""name = "mockhub"
title = "Mock Hub"
description = "test"
version = "1"
kind = "http"
base_url = "{provider_url}"

[auth]
kind = "oauth2"
scopes = ["repo", "read:user"]
authorize_url = "{provider_url}/authorize"
token_url = "{provider_url}/token"
revoke_url = "{provider_url}/revoke"

[[tools]]
name = "whoami"
description = "who the account is"
method = "GET"
path = "/user"

[tools.input_schema]
type = "object"
"""
    )
    app = root / "local_auth" / "oauth_configs" / "mockhub"
    app.mkdir(parents=True)
    (app / "oauth.json").write_text(json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}))
    digest = hashlib.sha256(ALICE_KEY.encode()).hexdigest()
    config = root / "gumcp.toml"
    config.write_text(
        f"""[auth]
local_dir = "{root / 'local_auth'}"
[access]
mode = "api_keys"
api_keys = [{{ user_id = "alice", sha256 = "{digest}" }}]
"""
    )
    return {"GUMCP_CONFIG": str(config), "GUMCP__SERVERS__DIR": str(root / "servers")}
