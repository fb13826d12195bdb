"""A hostile upstream: a body of a gigabyte, a body that is not JSON.

The body is read up to the service's max_response_bytes and no further (peak
memory measured with tracemalloc); a body that does not parse is an
UpstreamError naming the service, not a raw decoder error.
"""

from __future__ import annotations

import tracemalloc
import zlib
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from ads_infra.errors import UpstreamError
from ads_infra.external_services import ExternalServiceConfig, ExternalServiceManager

GIB = 1 << 30


async def endless(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.enable_chunked_encoding()  # no Content-Length to refuse up front
    await response.prepare(request)
    chunk = b" " * (1 << 20)
    try:
        for _ in range(GIB // len(chunk)):
            await response.write(chunk)
    except (ConnectionResetError, RuntimeError):
        pass  # the client stopped reading: what we want
    return response


async def declared(_request: web.Request) -> web.Response:
    return web.Response(body=b"x" * (11 << 20))  # Content-Length: 11 MiB


def _gzip_of_zeros(size: int) -> bytes:
    """``size`` zero bytes, gzip-compressed a MiB at a time (never all in memory)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip framing
    chunk = bytes(1 << 20)
    return b"".join(packer.compress(chunk) for _ in range(size // len(chunk))) + packer.flush()


async def gzip_bomb(_request: web.Request) -> web.Response:
    # 64 MiB of zeros in about 64 KiB: Content-Length is small, what it inflates to is not.
    return web.Response(body=_gzip_of_zeros(64 << 20), headers={"Content-Encoding": "gzip"})


async def not_json(_request: web.Request) -> web.Response:
    return web.Response(text="<html>502 Bad Gateway</html>", content_type="application/json")


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/endless", endless)
    app.router.add_get("/declared", declared)
    app.router.add_get("/html", not_json)
    app.router.add_get("/bomb", gzip_bomb)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def manager(upstream: str) -> AsyncIterator[ExternalServiceManager]:
    manager = ExternalServiceManager()
    manager.register_service(
        "up", ExternalServiceConfig(base_url=upstream, max_retries=0, timeout=30)
    )
    await manager.start()
    yield manager
    await manager.close()


@pytest.mark.parametrize(
    "path", ["/endless", "/bomb"], ids=["a gigabyte, chunked", "gzip, inflating to 64 MiB"]
)
async def test_a_large_body_is_cut_off_at_the_limit(
    manager: ExternalServiceManager, path: str
) -> None:
    """Counted as it arrives, after inflating: neither body is held beyond the limit."""
    tracemalloc.start()
    try:
        with pytest.raises(UpstreamError, match=r"up answered with more than 10,485,760 bytes"):
            await manager.request("up", "GET", path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, f"peak {peak / 2**20:.0f} MiB"


async def test_a_declared_oversize_body_is_refused_before_reading(
    manager: ExternalServiceManager,
) -> None:
    with pytest.raises(UpstreamError, match="max_response_bytes"):
        await manager.request("up", "GET", "/declared")


async def test_a_body_that_is_not_json_is_an_upstream_error(
    manager: ExternalServiceManager,
) -> None:
    with pytest.raises(UpstreamError, match=r"up answered 200 with a body that is not JSON"):
        await manager.request_json("up", "GET", "/html")
