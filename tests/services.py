"""Reaching the real services the integration tests use: PostgreSQL and Redis on 127.0.0.1.

Where a service is unreachable its tests skip with the reason, except when
ADS_REQUIRE_SERVICES=1 (set by .ci/run): then they fail.
"""

from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlsplit

import pytest

TEST_DATABASE_URL = os.environ.get(
    "ADS_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
TEST_REDIS_URL = os.environ.get("ADS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def services_required() -> bool:
    return os.environ.get("ADS_REQUIRE_SERVICES", "") not in ("", "0", "false", "no")


def unavailable(reason: str) -> None:
    """Skip the test, or fail it when ADS_REQUIRE_SERVICES=1."""
    if services_required():
        pytest.fail(f"required service unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


def tcp_reachable(url: str, default_port: int, timeout: float = 1.0) -> str | None:
    """None when host:port of ``url`` accepts a TCP connection, else why not."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return f"{host}:{port} is not reachable ({exc.strerror or exc})"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"
