"""The fleet tests' Redis: db 15 of the test Redis, a unique key prefix, cleaned up after."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis


@pytest.fixture
async def fleet_redis(redis_url: str) -> AsyncIterator[tuple[str, str]]:
    """(the Redis URL on db 15, a unique key prefix); the prefix's keys are deleted after."""
    url = redis_url.rsplit("/", 1)[0] + "/15"
    prefix = f"fleet-test-{uuid.uuid4().hex[:8]}"
    yield url, prefix
    client = Redis.from_url(url)
    keys = [k async for k in client.scan_iter(f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
