"""Real upstream HTTP servers on 127.0.0.1 for the external-services tests.

One aiohttp application plays every upstream the services talk to:

- ``POST /v1/chat/completions``: OpenAI-compatible; 401 with OpenAI's error
  object (echoing the presented key, as OpenAI does) on a wrong bearer token;
- ``POST /v1/batch``: Segment-style, HTTP Basic with the write key;
- ``POST /services/...``: a Slack-style incoming webhook (``{"text"}``, answers ``ok``);
- ``POST /hooks/...``: a generic JSON webhook;
- ``ANY /fault/{name}``: scriptable replies (status, headers, body, delay), queued
  per name with :meth:`Upstream.script`, then 200; every hit's arrival time
  (``time.monotonic()``, server side) is recorded per name.

Every test module here fails on a ResourceWarning (an unclosed client session).
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from ads_infra.external_services import ExternalServiceManager

# A Standard Webhooks secret for the tests' webhook channels (not a real one).
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"test-webhook-signing-key-32bytes").decode()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = __file__.rsplit("/", 1)[0]
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.filterwarnings("error::ResourceWarning"))


async def eventually(condition: Callable[[], bool], *, tries: int = 300) -> None:
    """Wait (up to ~3 s) for something in the background; fails only if it never happens."""
    for _ in range(tries):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never became true")


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=lambda: {"ok": True})
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Hit:
    at: float  # time.monotonic() when the handler started
    method: str
    headers: dict[str, str]
    body: bytes


class Upstream:
    """The fake upstream's state, for tests to script and inspect."""

    def __init__(self) -> None:
        self.url = ""
        self.api_key = f"sk-test-{uuid.uuid4().hex}"
        self.write_key = f"wk-test-{uuid.uuid4().hex}"
        self.scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self.hits: dict[str, list[Hit]] = defaultdict(list)
        self.chat: list[dict[str, Any]] = []
        self.batches: list[dict[str, Any]] = []
        self.slack: list[dict[str, Any]] = []
        self.webhooks: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.webhook_bodies: list[bytes] = []  # as received, for signature checks

    def script(self, name: str, *replies: Reply) -> None:
        self.scripts[name].extend(replies)

    def times(self, name: str) -> list[float]:
        return [hit.at for hit in self.hits[name]]

    def count(self, name: str) -> int:
        return len(self.hits[name])

    async def _reply(self, name: str, default: web.StreamResponse) -> web.StreamResponse:
        queue = self.scripts.get(name)
        if not queue:
            return default
        reply = queue.popleft()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if isinstance(reply.body, str | bytes):
            return web.Response(status=reply.status, body=reply.body, headers=reply.headers)
        return web.json_response(reply.body, status=reply.status, headers=reply.headers)

    # --- handlers -----------------------------------------------------------------

    async def fault(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        at = time.monotonic()
        body = await request.read()
        self.hits[name].append(Hit(at, request.method, dict(request.headers), body))
        return await self._reply(name, web.json_response({"ok": True}))

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        self.hits["chat"].append(Hit(time.monotonic(), request.method, dict(request.headers), b""))
        presented = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if presented != self.api_key:
            return web.json_response(
                {
                    "error": {
                        "message": f"Incorrect API key provided: {presented}.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
                status=401,
            )
        body = await request.json()
        self.chat.append(body)
        scripted = await self._reply("chat", web.Response(status=204))
        if scripted.status != 204:
            return scripted
        prompt = body["messages"][-1]["content"]
        content = f"Ad copy for: {prompt}"
        prompt_tokens, completion_tokens = len(prompt.split()), len(content.split())
        return web.json_response(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )

    async def batch(self, request: web.Request) -> web.StreamResponse:
        self.hits["batch"].append(Hit(time.monotonic(), request.method, dict(request.headers), b""))
        expected = "Basic " + base64.b64encode(f"{self.write_key}:".encode()).decode()
        presented = request.headers.get("Authorization", "")
        if presented != expected:
            return web.json_response({"error": f"invalid write key in {presented!r}"}, status=401)
        body = await request.json()
        scripted = await self._reply("batch", web.Response(status=204))
        if scripted.status >= 300:
            return scripted
        self.batches.append(body)
        return scripted if scripted.status != 204 else web.json_response({"success": True})

    async def slack_webhook(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if not isinstance(body.get("text"), str):
            return web.Response(status=400, text="invalid_payload")
        self.slack.append({"path": request.path, **body})
        return web.Response(text="ok")

    async def generic_webhook(self, request: web.Request) -> web.StreamResponse:
        self.webhook_bodies.append(await request.read())
        self.webhooks.append((dict(request.headers), await request.json()))
        return web.json_response({"received": True})


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    state = Upstream()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", state.chat_completions)
    app.router.add_post("/v1/batch", state.batch)
    app.router.add_post("/services/{path:.*}", state.slack_webhook)
    app.router.add_post("/hooks/{path:.*}", state.generic_webhook)
    app.router.add_route("*", "/fault/{name}", state.fault)
    runner = web.AppRunner(app, shutdown_timeout=0.5, handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    state.url = f"http://{host}:{port}"
    try:
        yield state
    finally:
        await runner.cleanup()


@pytest.fixture
async def manager() -> AsyncIterator[ExternalServiceManager]:
    service_manager = ExternalServiceManager()
    try:
        yield service_manager
    finally:
        await service_manager.close()


class ManualClock:
    """A monotonic clock that moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def clocked_manager(clock: ManualClock) -> AsyncIterator[ExternalServiceManager]:
    """A manager whose breakers time their recovery by ``clock``: no test sleeps for it."""
    service_manager = ExternalServiceManager(clock=clock)
    try:
        yield service_manager
    finally:
        await service_manager.close()
