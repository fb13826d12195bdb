"""What comes back from an upstream: ServiceResponse, and the readable part of an error body."""

from __future__ import annotations

import dataclasses
from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDictProxy

from ads_infra.core.errors import UpstreamError

__all__ = [
    "ServiceResponse",
    "UpstreamErrorBody",
    "read_bounded",
    "read_error",
    "upstream_message",
]


class ServiceResponse:
    """A completed HTTP response: status, headers and the whole body."""

    __slots__ = ("body", "headers", "service", "status")

    def __init__(
        self, status: int, headers: CIMultiDictProxy[str], body: bytes, service: str = ""
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.service = service

    def json(self) -> Any:
        """The decoded JSON body (None when empty); UpstreamError when it is not JSON."""
        try:
            return orjson.loads(self.body) if self.body else None
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(
                f"{self.service or 'the upstream'} answered {self.status} with a body that is "
                f"not JSON ({exc.msg} at byte {exc.pos}); check that the service's base_url "
                "points at the API",
                service=self.service or None,
                status=self.status,
            ) from None


async def read_bounded(response: aiohttp.ClientResponse, service: str, limit: int) -> bytes:
    """The whole body, or UpstreamError once it passes ``limit`` bytes (read no further)."""
    declared = response.content_length
    if declared is not None and declared > limit:
        raise _too_large(service, limit)
    if declared is not None and "Content-Encoding" not in response.headers:
        # aiohttp's parser stops at Content-Length, so read() holds at most that;
        # a compressed body is inflated on the way and is read by chunks below.
        return await response.read()
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > limit:
            raise _too_large(service, limit)
    return bytes(body)


def _too_large(service: str, limit: int) -> UpstreamError:
    return UpstreamError(
        f"{service} answered with more than {limit:,} bytes; the body was not read "
        "(raise the service's max_response_bytes if that size is expected)",
        service=service,
    )

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def __repr__(self) -> str:
        return f"ServiceResponse(status={self.status}, bytes={len(self.body)})"


@dataclasses.dataclass(frozen=True, slots=True)
class UpstreamErrorBody:
    """What an error body says: the readable message and, if given, the provider's fields.

    OpenAI (and the APIs copying it) answer ``{"error": {"message", "type",
    "param", "code"}}``; Segment ``{"code", "message"}``; others plain text.
    """

    message: str
    code: str | None = None
    type: str | None = None
    param: str | None = None


def _field(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)[:100]


def read_error(payload: bytes, limit: int = 300) -> UpstreamErrorBody:
    """The readable message of an error body and the provider's ``code``/``type``/``param``."""
    try:
        data = orjson.loads(payload) if payload else None
    except orjson.JSONDecodeError:
        data = None
    message: Any = None
    code = type_ = param = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            message = error.get("message") or error.get("code") or error.get("type")
            code, type_, param = (_field(error.get(k)) for k in ("code", "type", "param"))
        elif isinstance(error, str):
            message = error
        message = message or data.get("message") or data.get("detail")
        if code is None and isinstance(data.get("code"), str | int):
            code = _field(data.get("code"))
    if message is None:
        message = payload[:limit].decode("utf-8", errors="replace").strip()
    text = str(message)
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return UpstreamErrorBody(text, code, type_, param)


def upstream_message(payload: bytes, limit: int = 300) -> str:
    """The human part of an error body: OpenAI's ``error.message``, or the text."""
    return read_error(payload, limit).message
