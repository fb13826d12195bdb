"""What comes back from an upstream: ServiceResponse, and the readable part of an error body."""

from __future__ import annotations

from typing import Any

import orjson
from multidict import CIMultiDictProxy

__all__ = ["ServiceResponse", "upstream_message"]


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


def upstream_message(payload: bytes, limit: int = 300) -> str:
    """The human part of an error body: OpenAI's ``error.message``, or the text."""
    try:
        data = orjson.loads(payload) if payload else None
    except orjson.JSONDecodeError:
        data = None
    message: Any = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            message = error.get("message") or error.get("code") or error.get("type")
        elif isinstance(error, str):
            message = error
        message = message or data.get("message") or data.get("detail")
    if message is None:
        message = payload[:limit].decode("utf-8", errors="replace").strip()
    text = str(message)
    return text if len(text) <= limit else text[: limit - 3] + "..."
