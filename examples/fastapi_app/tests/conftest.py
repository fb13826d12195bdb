"""The example app on embedded backends (ads_infra.testing), called in-process with httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from aiohttp import web

from ads_infra.database import migrate
from ads_infra.testing import build_test_container
from examples.fastapi_app.app import create_app
from examples.fastapi_app.containers import AppContainer


@pytest.fixture
async def container(tmp_path: Path) -> AsyncIterator[AppContainer]:
    # Declarative containers instantiate as DynamicContainer: a cast, not an isinstance check.
    built = cast(AppContainer, build_test_container(tmp_path / "ads", container_cls=AppContainer))
    await migrate.upgrade(built.database.manager())
    yield built
    built.unwire()


@pytest.fixture
async def client(container: AppContainer) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on the app, inside its lifespan (resources started, then stopped)."""
    app = create_app(container)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            yield http


@pytest.fixture
async def openai_server() -> AsyncIterator[dict[str, Any]]:
    """A local OpenAI-compatible chat completions server that records what it was asked."""
    seen: list[dict[str, Any]] = []
    # Queued (content, finish_reason) replies; then the default one.
    replies: list[tuple[str | None, str]] = []

    async def completions(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append({"body": body, "auth": request.headers.get("Authorization")})
        content: str | None = "Run Further, Ache Less\nTrail shoes with grip for every mile."
        finish_reason = "stop"
        if replies:
            content, finish_reason = replies.pop(0)
        return web.json_response(
            {
                "id": "chatcmpl-1",
                "model": body["model"],
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": finish_reason}
                ],
                "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
            }
        )  # fmt: skip

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield {"url": f"http://127.0.0.1:{port}", "seen": seen, "replies": replies}
    await runner.cleanup()
