"""A recording Segment ``/v1/batch`` endpoint that enforces Segment's documented limits.

Both our AnalyticsService and the official segment-analytics-python client
(run in a thread: it is synchronous) send to it, so a test compares what each
put on the wire. Like Segment's HTTP Tracking API it answers 400 to a batch
over ``max_batch_bytes`` (500 KB) or holding a message over 32 KB, and
accepts gzip bodies (``Content-Encoding: gzip``; aiohttp decodes them).
"""

from __future__ import annotations

import base64
import json
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024


@dataclass
class Arrival:
    headers: dict[str, str]
    wire_bytes: int  # Content-Length: the body as sent (compressed, with gzip)
    body_bytes: int  # the JSON body, decoded
    body: dict[str, Any]
    status: int


@dataclass
class SegmentServer:
    write_key: str = "wk-segment-test"
    max_batch_bytes: int = MAX_BATCH_BYTES
    url: str = ""
    arrivals: list[Arrival] = field(default_factory=list)
    # Replies to send first, in order: (status, headers).
    script: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)
    # Refuses (400) a batch holding a message this returns True for.
    poison: Callable[[dict[str, Any]], bool] = lambda message: False

    @property
    def accepted(self) -> list[dict[str, Any]]:
        return [a.body for a in self.arrivals if a.status == 200]

    def batch_sizes(self) -> list[int]:
        return [len(body["batch"]) for body in self.accepted]

    def messages(self) -> list[dict[str, Any]]:
        return [m for body in self.accepted for m in body["batch"]]

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = json.loads(raw)
        status, headers, answer = 200, {}, {"success": True}
        expected = "Basic " + base64.b64encode(f"{self.write_key}:".encode()).decode()
        if self.script:
            status, headers = self.script.popleft()
            answer = {"code": "scripted", "message": f"scripted {status}"}
        elif request.headers.get("Authorization") != expected:
            status, answer = 401, {"code": "unauthorized", "message": "invalid write key"}
        elif len(raw) > self.max_batch_bytes:
            status, answer = 400, {"code": "invalid_request", "message": "batch exceeds 500KB"}
        elif any(len(json.dumps(m).encode()) > MAX_MESSAGE_BYTES for m in body["batch"]):
            status, answer = 400, {"code": "invalid_request", "message": "message exceeds 32KB"}
        elif any(self.poison(m) for m in body["batch"]):
            status, answer = 400, {"code": "invalid_request", "message": "invalid message"}
        self.arrivals.append(
            Arrival(dict(request.headers), request.content_length or 0, len(raw), body, status)
        )
        return web.json_response(answer, status=status, headers=headers)


async def serve(server: SegmentServer) -> AsyncIterator[SegmentServer]:
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_post("/v1/batch", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    server.url = f"http://{host}:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()
