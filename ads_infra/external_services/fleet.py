"""What the services need from a fleet of processes, and the breaker sync built on it.

The protocols are what ``ads_infra.coordination.Coordinator`` provides (the
container passes it in; this package never imports that one). With no fleet
link, every limit and breaker is per process, as it always was.

:class:`BreakerSync` keeps this process's breakers in step with the
fleet's: it publishes the openings and closings this process decides, reads
the shared states every ``breaker_sync_interval`` seconds and follows them,
and claims the one fleet-wide half-open probe. :class:`Outbox` is the
analytics service's durable queue. A Redis failure anywhere
here leaves the local breakers to decide alone (logged once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from ads_infra.external_services.breaker import CircuitBreaker, CircuitState

__all__ = ["BreakerStore", "BreakerSync", "FleetLink", "Outbox", "Pacer"]

logger = logging.getLogger("ads_infra.external_services")


class Pacer(Protocol):
    async def acquire(self) -> None: ...


class BreakerStore(Protocol):
    async def claim_probe(self, name: str, recovery_timeout: float) -> float: ...

    async def opened(self, name: str, recovery_timeout: float, *, replace: bool) -> float: ...

    async def closed(self, name: str) -> None: ...

    async def read(self, names: Sequence[str]) -> Mapping[str, float | None]: ...


class Outbox(Protocol):
    """A durable queue shared by the fleet (analytics: a Redis Stream, one consumer each)."""

    async def add(self, message: bytes, max_entries: int) -> bool: ...

    async def take(self, count: int) -> list[tuple[str, bytes]]: ...

    async def settle(self, ids: Sequence[str], outcome: str) -> int: ...

    async def counts(self) -> dict[str, int]: ...


class FleetLink(Protocol):
    @property
    def breakers(self) -> BreakerStore: ...

    @property
    def breaker_sync_interval(self) -> float: ...

    def pacer(self, service: str, rate: float, period: float) -> Pacer: ...

    def outbox(self, name: str) -> Outbox: ...


class BreakerSync:
    """Shares the breakers returned by ``breakers()`` (name -> breaker) with the fleet."""

    def __init__(
        self, link: FleetLink, breakers: Callable[[], Mapping[str, CircuitBreaker]]
    ) -> None:
        self._store = link.breakers
        self._interval = link.breaker_sync_interval
        self._breakers = breakers
        self._following = False  # True while applying the fleet's state: not ours to publish
        self._pending: dict[str, int] = {}  # name -> publishes in flight
        self._tasks: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    # --- this process's decisions ------------------------------------------------

    def changed(self, name: str, breaker: CircuitBreaker, previous: CircuitState) -> None:
        """A local breaker changed state by its own outcomes: tell the fleet."""
        if self._following:
            return
        state = breaker.state
        if state is CircuitState.HALF_OPEN:
            return  # the probe claim (claim()) is the fleet's half-open
        replace = previous is CircuitState.HALF_OPEN  # a failed probe restarts the period
        self._pending[name] = self._pending.get(name, 0) + 1
        task = asyncio.get_running_loop().create_task(self._publish(name, breaker, replace))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, name: str, breaker: CircuitBreaker, replace: bool) -> None:
        try:
            if breaker.state is CircuitState.OPEN:
                left = await self._store.opened(name, breaker.recovery_timeout, replace=replace)
                if breaker.state is CircuitState.OPEN:
                    self._follow(breaker, left)  # the fleet's period, if it opened first
            else:
                await self._store.closed(name)
            self._ok()
        except Exception as exc:
            self._failed(exc)
        finally:
            self._pending[name] -= 1

    async def claim(self, name: str, breaker: CircuitBreaker) -> bool:
        """Half-open here: True if this process sends the fleet's one probe."""
        try:
            wait = await self._store.claim_probe(name, breaker.recovery_timeout)
        except Exception as exc:
            self._failed(exc)
            return True  # alone again: the local breaker's own probe
        self._ok()
        if wait <= 0:
            return True
        self._follow(breaker, wait)
        return False

    # --- following the fleet --------------------------------------------------------

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="ads-breakers")

    async def close(self) -> None:
        tasks = [t for t in (self._task, *self._tasks) if t is not None]
        self._task = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            breakers = self._breakers()
            try:
                states = await self._store.read(list(breakers))
            except Exception as exc:
                self._failed(exc)
                continue
            self._ok()
            for name, due in states.items():
                breaker = breakers.get(name)
                if breaker is not None and not self._pending.get(name):
                    self._apply(breaker, due)

    def _apply(self, breaker: CircuitBreaker, due: float | None) -> None:
        if breaker.probing:
            return  # our probe is out: its outcome decides, and is published
        if due is None:
            if breaker.state is not CircuitState.CLOSED:
                self._following = True
                try:
                    breaker.reset()
                finally:
                    self._following = False
            return
        self._follow(breaker, max(due, 0.0))

    def _follow(self, breaker: CircuitBreaker, left: float) -> None:
        self._following = True
        try:
            breaker.follow_open(left)
        finally:
            self._following = False

    def _ok(self) -> None:
        if self._failing:
            self._failing = False
            logger.warning("circuit breakers: shared through the coordination Redis again")

    def _failed(self, exc: BaseException) -> None:
        if not self._failing:
            self._failing = True
            logger.warning(
                "circuit breakers: coordination Redis failed (%s: %s); each process decides "
                "alone until it answers",
                type(exc).__name__,
                exc,
            )
