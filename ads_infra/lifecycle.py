"""Lifecycle glue for ``providers.Resource``: start a manager, close it on shutdown.

Every manager has ``async start()`` (open connections, fail fast) and
``async close()`` (release them). The container wraps each in
:func:`started`, so ``await container.init_resources()`` starts exactly the
managers the configuration selects and ``shutdown_resources()`` closes them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, TypeVar


class Startable(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...


M = TypeVar("M", bound=Startable)


async def started(manager: M) -> AsyncIterator[M]:
    """Resource initializer: ``await manager.start()``, then ``close()`` at shutdown."""
    await manager.start()
    try:
        yield manager
    finally:
        await manager.close()
