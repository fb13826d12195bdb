"""What counts as "the coordination Redis is away", and how to say why in a log line."""

from __future__ import annotations

import asyncio

from redis.exceptions import RedisError

__all__ = ["REDIS_ERRORS", "reason"]

REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, asyncio.TimeoutError)


def reason(exc: BaseException) -> str:
    """``Type: message`` (never the URL: redis-py's messages name host and port only)."""
    text = str(exc) or "no detail"
    return f"{type(exc).__name__}: {text}"
