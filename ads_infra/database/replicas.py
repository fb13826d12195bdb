"""Read replicas: which one a read may use, how far behind each one is, and when it is back.

How far behind: every ``replica_check_interval`` seconds (lazily, when reads
ask) a probe reads the primary's WAL position, then each replica's replayed
position. A replica that has replayed what the primary had written at an
earlier probe holds every commit made before that probe started: that instant
is the replica's *safe time*, and ``now - safe time`` bounds how stale it is.
No clock of the servers is compared, and an idle primary costs nothing (the
replica has replayed all there is: staleness ~0).

A read may go to a replica when it answered its last probe, is a standby,
is at most ``max_replica_lag`` seconds stale, and its safe time is later than
this process's last commit on the primary, so a writer reads its own writes
(it reads the primary until a probe has seen the replica replay them).

A replica whose read fails on a connection error is marked down at once
(the read is then served by the primary); the next probe that reaches it
marks it up again, with a fresh pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ads_infra.core.health import HealthStatus
from ads_infra.core.redact import mask_url
from ads_infra.core.settings import DatabaseConfig
from ads_infra.database.connect import create_engine_for
from ads_infra.database.errors import first_line

__all__ = ["Replica", "ReplicaSet"]

logger = logging.getLogger(__name__)

# The insert position, not the write position: with synchronous_commit off a
# commit returns before its record is written, and must still count as made.
PRIMARY_POSITION = text("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')")
REPLICA_POSITION = text(
    "SELECT pg_is_in_recovery(), pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')"
)
# A probe that hangs (a host that drops packets) must not hold reads' routing back.
PROBE_TIMEOUT = 5.0
# Primary positions kept: enough for a replica several probes behind to find its safe time.
HISTORY = 256


class Replica:
    """One read replica: its engine (built on first use) and what the last probe found."""

    def __init__(self, index: int, url: str, config: DatabaseConfig) -> None:
        self.index = index
        self.url = url
        self.masked_url = mask_url(url)
        self._config = config
        self._engine: AsyncEngine | None = None
        self.up = False
        self.standby = True
        self.safe_time: float | None = None
        self.checked_at: float | None = None
        self.problem = "not checked yet"
        self.reads = 0
        self.failures = 0

    @property
    def name(self) -> str:
        return f"database.replica[{self.index}]"

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            key = f"database.replica_urls[{self.index}]"
            self._engine = create_engine_for(self.url, self._config, key=key)
        return self._engine

    def staleness(self, now: float | None = None) -> float | None:
        """Seconds of commits this replica may be missing, as of its last probe."""
        if self.safe_time is None or self.checked_at is None:
            return None
        return max(0.0, (self.checked_at if now is None else now) - self.safe_time)

    def usable(self, max_lag: float, last_write: float) -> bool:
        stale = self.staleness()
        return (
            self.up
            and self.standby
            and stale is not None
            and stale <= max_lag
            and self.safe_time is not None
            and self.safe_time > last_write
        )

    def mark_down(self, exc: BaseException) -> None:
        self.failures += 1
        self.up = False
        self.problem = f"unreachable: {first_line(exc)}"

    async def reset_pool(self) -> None:
        """Close the idle pooled connections (those checked out close when returned)."""
        if self._engine is not None:
            await self._engine.dispose()

    async def close(self) -> None:
        if self._engine is not None:
            engine, self._engine = self._engine, None
            await engine.dispose()

    def stats(self) -> dict[str, Any]:
        stale = self.staleness()
        pool = self._engine.pool if self._engine is not None else None
        return {
            "url": self.masked_url,
            "up": self.up,
            "staleness_s": None if stale is None else round(stale, 3),
            "problem": "" if self.up else self.problem,
            "reads": self.reads,
            "failures": self.failures,
            "checked_out": int(pool.checkedout()) if pool is not None else 0,  # type: ignore[attr-defined]
        }


class ReplicaSet:
    """The configured replicas, their probe, and the choice of one for a read."""

    def __init__(self, config: DatabaseConfig, primary: Callable[[], AsyncEngine]) -> None:
        self._config = config
        self._primary = primary
        self.replicas = [Replica(i, url, config) for i, url in enumerate(config.replica_urls)]
        self._turn = itertools.count()
        self._history: deque[tuple[float, int]] = deque(maxlen=HISTORY)
        self._probe_task: asyncio.Task[None] | None = None
        self._probe_started = float("-inf")
        self.fallbacks = 0

    def __bool__(self) -> bool:
        return bool(self.replicas)

    def pick(self, last_write: float) -> Replica | None:
        """A replica for one read, or None for the primary; starts a probe when one is due."""
        if not self.replicas:
            return None
        self._probe_if_due()
        usable = [r for r in self.replicas if r.usable(self._config.max_replica_lag, last_write)]
        if not usable:
            return None
        return usable[next(self._turn) % len(usable)]

    def _probe_if_due(self) -> None:
        now = time.monotonic()
        if self._probe_task is not None and not self._probe_task.done():
            return
        if now - self._probe_started < self._config.replica_check_interval:
            return
        self._probe_started = now
        self._probe_task = asyncio.get_running_loop().create_task(self.probe())

    async def probe(self) -> None:
        """Read the primary's WAL position, then each replica's; never raises."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                async with self._primary().connect() as conn:
                    position = int((await conn.execute(PRIMARY_POSITION)).scalar_one())
            self._history.append((started, position))
        except Exception as exc:  # the primary's own trouble shows in its own calls
            logger.debug("replica probe could not read the primary's position: %s", exc)
        await asyncio.gather(*(self._probe_one(r) for r in self.replicas))

    async def _probe_one(self, replica: Replica) -> None:
        was_up = replica.up
        try:
            if not was_up:
                await replica.reset_pool()  # connections from before it went down are dead
            async with asyncio.timeout(PROBE_TIMEOUT):
                async with replica.engine.connect() as conn:
                    standby, replayed = (await conn.execute(REPLICA_POSITION)).one()
        except Exception as exc:
            replica.checked_at = time.monotonic()
            if was_up:
                logger.warning("replica %s is down: %s", replica.masked_url, first_line(exc))
            replica.mark_down(exc)
            return
        replica.checked_at = time.monotonic()
        replica.standby = bool(standby)
        if not standby:
            replica.up = False
            replica.problem = "not a standby (pg_is_in_recovery() is false): never read from"
            return
        reached = [t for t, pos in self._history if replayed is not None and pos <= replayed]
        if reached:
            replica.safe_time = max(reached)
        replica.up = True
        if not was_up:
            logger.info("replica %s is up", replica.masked_url)

    async def close(self) -> None:
        task, self._probe_task = self._probe_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for replica in self.replicas:
            await replica.close()
        self._probe_started = float("-inf")

    def stats(self) -> list[dict[str, Any]]:
        return [r.stats() for r in self.replicas]

    async def health(self) -> list[HealthStatus]:
        """One status per replica, from a probe made now."""
        started = time.perf_counter()
        await self.probe()
        latency = round((time.perf_counter() - started) * 1000, 2)
        max_lag = self._config.max_replica_lag
        out = []
        for r in self.replicas:
            stale = r.staleness()
            if not r.up:
                healthy, detail = False, f"{r.problem}; reads go to the primary"
            elif stale is None:
                healthy, detail = False, "its replay position is unknown yet; not read from"
            elif stale > max_lag:
                healthy = False
                detail = f"{stale:.1f} s behind > max_replica_lag {max_lag:g} s; skipped"
            else:
                healthy, detail = True, f"standby, at most {stale:.1f} s behind; {r.reads} reads"
            out.append(
                HealthStatus(r.name, "postgresql", healthy, latency if healthy else None,
                             detail, target=r.masked_url)
            )  # fmt: skip
        return out
