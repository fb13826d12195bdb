"""One lifecycle for every manager and for the container that starts them.

Every manager has ``async start()`` (open connections, fail fast), ``async
close()`` (release them) and ``async with`` (both). The container wraps each
manager in :func:`started`, a ``providers.Resource``, so ``await
container.init_resources()`` starts exactly the managers the configuration
selects and ``shutdown_resources()`` closes them in reverse order.
:func:`running` is that pair as one ``async with`` for the CLI, the demo, the
soak, the pytest plugin and host apps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

__all__ = ["Startable", "running", "started"]


class Startable(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...


M = TypeVar("M", bound=Startable)
C = TypeVar("C")


async def started(manager: M) -> AsyncIterator[M]:
    """Resource initializer: ``await manager.start()``, then ``close()`` at shutdown."""
    await manager.start()
    try:
        yield manager
    finally:
        await manager.close()


async def _settle(result: Awaitable[Any] | None) -> None:
    # dependency-injector returns None from init/shutdown_resources() when no
    # resource is async, an awaitable otherwise.
    if result is not None:
        await result


@asynccontextmanager
async def running(container: C) -> AsyncIterator[C]:
    """``init_resources()`` on entry, ``shutdown_resources()`` on exit (even on error)."""
    await _settle(container.init_resources())  # type: ignore[attr-defined]
    try:
        yield container
    finally:
        await _settle(container.shutdown_resources())  # type: ignore[attr-defined]
