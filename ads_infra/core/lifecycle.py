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

__all__ = ["Startable", "running", "started", "started_after"]


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


async def started_after(component: C, _before: object) -> AsyncIterator[C]:
    """Resource initializer: start ``component`` once ``_before`` is running; close it first.

    ``_before`` is another Resource (the external services' manager, for the
    services built on its session), passed only so the container orders the
    two: this one starts after it and shuts down before it. A host app's
    stand-in without ``start``/``close`` (a fake AI) is provided as it is.
    """
    start, close = getattr(component, "start", None), getattr(component, "close", None)
    if start is not None:
        await start()
    try:
        yield component
    finally:
        if close is not None:
            await close()


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
