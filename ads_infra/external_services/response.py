"""What comes back from an upstream: ServiceResponse, and the readable part of an error body."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
from multidict import CIMultiDictProxy

__all__ = ["ServiceResponse", "UpstreamErrorBody", "read_error", "upstream_message"]


class ServiceResponse:
    """A completed HTTP response: status, headers and the whole body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: CIMultiDictProxy[str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None

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
