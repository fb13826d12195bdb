"""DatabaseManager: the primary's AsyncEngine, read replicas, sessions, retried units of work.

PostgreSQL goes through asyncpg, the embedded default is SQLite through
aiosqlite. The constructor does no I/O and binds to no event loop: engines
are built on first use (:mod:`.connect`). Sessions commit on success and roll
back on error; :meth:`DatabaseManager.run` runs a whole unit of work again on
transient failures; :meth:`DatabaseManager.run_read` runs a read on a
replica when one is fit for it (:mod:`.replicas`), else on the primary.
Errors are classified in :mod:`ads_infra.database.errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from ads_infra.core.errors import CommitOutcomeUnknownError
from ads_infra.core.health import HealthStatus
from ads_infra.core.loader import environment_settings
from ads_infra.core.settings import DatabaseConfig
from ads_infra.database.budget import read_budget
from ads_infra.database.connect import create_engine_for, create_sqlite_engine
from ads_infra.database.direct import on_driver, outcome_unknown
from ads_infra.database.errors import (
    commit_was_refused,
    first_line,
    is_transient_error,
    translate_error,
    translated,
)
from ads_infra.database.pool import ConnectionPool
from ads_infra.database.replicas import Replica, ReplicaSet

__all__ = ["AFTER_COMMIT", "ConnectionPool", "DatabaseManager"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# session.info key: coroutine functions the session's owner awaits right after
# its commit (a unit of work that joined the session drops cache entries there).
AFTER_COMMIT = "ads_infra.after_commit"


class _WriteMark:
    """When a task last committed on the primary (monotonic seconds)."""

    __slots__ = ("at",)

    def __init__(self) -> None:
        self.at = float("-inf")


class DatabaseManager:
    """Owns the AsyncEngine; gives out sessions and runs retried units of work.

    >>> db = DatabaseManager()                     # embedded SQLite under ./var
    >>> async with db.get_session() as session:    # commit on success
    ...     await session.execute(text("select 1"))
    >>> await db.run(lambda session: repo_call(session))   # retried on transient errors
    >>> await db.run_read(lambda session: a_read(session)) # a replica when one is fit
    """

    def __init__(self, config: DatabaseConfig | None = None) -> None:
        self.config = config or environment_settings().database
        self._engine: AsyncEngine | None = None
        self.replicas = ReplicaSet(self.config, lambda: self.engine)
        # When the current task (and what it awaited, or started after) last
        # committed on the primary: its reads go to a replica only once the
        # replica is known to hold that commit. Per task, not per process: a
        # process that writes all the time would otherwise never read a replica.
        self._write_mark: ContextVar[_WriteMark | None] = ContextVar(
            f"ads_infra_write_mark_{id(self)}", default=None
        )
        self.retries = 0
        self.failures = 0
        self.transactions = 0
        # Whether repositories must create or upgrade the schema before their first
        # statement (``auto_migrate``): cleared once :mod:`.migrate` has brought it up.
        self.migrate_pending = self.config.migrates_on_first_use

    def __repr__(self) -> str:
        return f"DatabaseManager(url={self.config.masked_url!r})"

    @property
    def backend(self) -> str:
        return "sqlite" if self.config.is_sqlite else "postgresql"

    # --- engine -----------------------------------------------------------------

    @property
    def engine(self) -> AsyncEngine:
        """The engine, created on first access (no I/O happens here)."""
        if self._engine is None:
            self._engine = self._create_engine()
        return self._engine

    def _create_engine(self) -> AsyncEngine:
        if self.config.is_sqlite:
            return create_sqlite_engine(self.config)
        return create_engine_for(self.config.url, self.config)

    @property
    def pool(self) -> ConnectionPool:
        return ConnectionPool(self._engine)

    async def start(self) -> None:
        """Open the pool now and fail fast if the database is unreachable."""
        with translated(self.config.masked_url):
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        logger.info("database ready: %s", self.config.masked_url)
        if self.replicas:
            await self.replicas.probe()  # a replica that is down is no reason to fail

    async def close(self) -> None:
        """Close every pooled connection; the manager can be used again later."""
        await self.replicas.close()
        if self._engine is not None:
            engine, self._engine = self._engine, None
            await engine.dispose()

    async def __aenter__(self) -> DatabaseManager:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- sessions and units of work ----------------------------------------------

    def _count_failure(self) -> None:
        self.failures += 1

    def _mark_write(self) -> None:
        mark = self._write_mark.get()
        if mark is None:
            # A mutable mark: tasks this one starts from now on share it (they
            # copy the context), so they too see what it writes.
            mark = _WriteMark()
            self._write_mark.set(mark)
        mark.at = time.monotonic()

    def _last_write(self) -> float:
        mark = self._write_mark.get()
        return mark.at if mark is not None else float("-inf")

    @asynccontextmanager
    async def _session_scope(self, *, writes: bool = True) -> AsyncIterator[AsyncSession]:
        async with AsyncSession(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                try:
                    await session.commit()
                except Exception as exc:
                    if is_transient_error(exc) and not commit_was_refused(exc):
                        with contextlib.suppress(Exception):
                            await session.invalidate()
                        raise CommitOutcomeUnknownError(
                            "the connection failed while committing, so the unit may or may "
                            f"not have been applied ({first_line(exc)}); it was not retried, "
                            "as that could apply it twice: check, then repeat it if missing"
                        ) from exc
                    raise
                self.transactions += 1
                if writes:
                    self._mark_write()
                for hook in session.info.pop(AFTER_COMMIT, ()):
                    await hook()
            except CommitOutcomeUnknownError:
                raise
            except BaseException as exc:
                if isinstance(exc, Exception) and is_transient_error(exc):
                    # The connection may be broken in ways the pool cannot see
                    # (a killed backend's FATAL half-read, a transaction the
                    # driver lost track of): discard it rather than reuse it.
                    with contextlib.suppress(Exception):
                        await session.invalidate()
                    raise
                try:
                    await session.rollback()
                except Exception:
                    # The rollback failing means the connection is broken: drop it,
                    # and let the error that broke it, not the failed rollback,
                    # decide about a retry.
                    with contextlib.suppress(Exception):
                        await session.invalidate()
                raise

    @asynccontextmanager
    async def get_session(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on error.

        Database errors come out as :class:`~ads_infra.errors.DatabaseError`
        (IntegrityViolationError, TransientDatabaseError, ...), chained to the
        driver's error. No retry here: use :meth:`run` for that.
        """
        with translated(self.config.masked_url, on_error=self._count_failure):
            async with self._session_scope() as session:
                yield session

    async def run(
        self, fn: Callable[[AsyncSession], Awaitable[T]], *, idempotent: bool = False
    ) -> T:
        return await self._run(fn, idempotent=idempotent, writes=True)

    async def _run(
        self, fn: Callable[[AsyncSession], Awaitable[T]], *, idempotent: bool, writes: bool
    ) -> T:
        """Run ``fn(session)`` in one transaction, again from the start on transient errors.

        Each attempt gets a fresh session (and so a fresh connection). Backoff
        is exponential with full jitter, capped at ``retry_max_delay``; at most
        ``max_retries`` retries. A constraint violation or programming error is
        raised at once. A connection lost while committing raises
        :class:`CommitOutcomeUnknownError` unless ``idempotent`` says that
        running ``fn`` twice leaves the same state as once (an upsert, a
        delete): then it is retried like any transient error.
        """
        attempts = 0

        with translated(
            self.config.masked_url, attempts=lambda: attempts, on_error=self._count_failure
        ):
            async for attempt in self._retrying(idempotent):
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    async with self._session_scope(writes=writes) as session:
                        return await fn(session)
        raise AssertionError("unreachable: tenacity either returns or raises")

    @staticmethod
    def _worth_retrying(exc: BaseException, idempotent: bool) -> bool:
        if isinstance(exc, CommitOutcomeUnknownError):
            return idempotent
        return is_transient_error(exc)

    def _retrying(
        self, idempotent: bool, attempts: int | None = None, *, first: int = 1
    ) -> AsyncRetrying:
        """The retry policy of a unit of work (see :meth:`_run`): ``attempts`` tries at most
        (default ``max_retries + 1``), the first of them numbered ``first`` in the log."""
        cfg = self.config
        tries = cfg.max_retries + 1 if attempts is None else attempts

        def _before_sleep(state: RetryCallState) -> None:
            self.retries += 1
            exc = state.outcome.exception() if state.outcome else None
            logger.warning(
                "database unit of work failed (%s), retry %d/%d",
                type(exc).__name__,
                state.attempt_number + first - 1,
                cfg.max_retries,
            )

        return AsyncRetrying(
            retry=retry_if_exception(lambda exc: self._worth_retrying(exc, idempotent)),
            stop=stop_after_attempt(tries),
            wait=wait_random_exponential(
                multiplier=cfg.retry_delay * 2 ** (first - 1), max=cfg.retry_max_delay
            ),
            before_sleep=_before_sleep,
            reraise=True,
        )

    # --- one statement on the driver (PostgreSQL) ---------------------------------------

    async def run_write_driver(
        self, fn: Callable[[Any], Awaitable[T]], *, idempotent: bool = False
    ) -> T:
        """``fn(asyncpg connection)`` sends one statement that writes: on the primary, in
        autocommit (its own transaction, one round trip), retried like :meth:`run`.

        An attempt is run again when its statement was not applied (see
        :mod:`.direct`). One that may have been applied (the connection broke
        after the statement was sent) raises
        :class:`CommitOutcomeUnknownError`, unless ``idempotent``: then it is
        retried like any transient error. Errors come out translated.
        """
        cfg = self.config
        # The first attempt outside tenacity: building its retry loop costs more
        # than the statement's own client-side work, and most calls need one try.
        with translated(cfg.masked_url, on_error=self._count_failure):
            try:
                return await self._write_once(fn)
            except Exception as exc:
                if cfg.max_retries < 1 or not self._worth_retrying(exc, idempotent):
                    raise
                self.retries += 1
                logger.warning(
                    "database statement failed (%s), retry 1/%d", type(exc).__name__,
                    cfg.max_retries,
                )  # fmt: skip
        await asyncio.sleep(random.uniform(0, cfg.retry_delay))  # the policy's first wait
        attempts = 1
        with translated(cfg.masked_url, attempts=lambda: attempts, on_error=self._count_failure):
            async for attempt in self._retrying(idempotent, cfg.max_retries, first=2):
                with attempt:
                    attempts = attempt.retry_state.attempt_number + 1
                    return await self._write_once(fn)
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _write_once(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        sent = False

        async def call(driver: Any) -> T:
            nonlocal sent
            sent = True
            return await fn(driver)

        try:
            result = await on_driver(self.engine, call)
        except Exception as exc:
            if sent and outcome_unknown(exc):
                self._mark_write()
                raise CommitOutcomeUnknownError(
                    "the connection failed while the statement ran, so the write may or may "
                    f"not have been applied ({first_line(exc)}); it was not retried, as that "
                    "could apply it twice: check, then repeat it if missing"
                ) from exc
            raise
        self.transactions += 1
        self._mark_write()
        return result

    def run_read_driver(
        self, fn: Callable[[Any], Awaitable[T]], *, primary: bool = False
    ) -> Coroutine[Any, Any, T]:
        """``fn(asyncpg connection)`` sends one statement that reads, on a replica fit for it,
        else on the primary (see :meth:`run_read`); no retry. Await what it returns.

        The leanest read there is: a caller that wants retries goes
        :meth:`run_read` when this one fails transiently. With no replica to
        route to, the coroutine handed back is the primary's read itself: on
        the path of every get_by_id, a routing frame and its await are a
        measurable share.
        """
        if primary or not self.replicas:
            return on_driver(self.engine, fn)
        return self._routed_read_driver(fn)

    async def _routed_read_driver(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        replica = self.replicas.pick(self._last_write())
        if replica is not None:
            engine = replica.engine
            done, result = await self._on_replica(replica, lambda: on_driver(engine, fn))
            if done:
                return result  # type: ignore[return-value]
        return await on_driver(self.engine, fn)

    # --- reads that a replica may serve ----------------------------------------------

    async def run_read(
        self, fn: Callable[[AsyncSession], Awaitable[T]], *, primary: bool = False
    ) -> T:
        """``fn(session)``, a read, on a replica fit for it, else like :meth:`run` on the primary.

        A replica that fails on a connection error is marked down and the read
        runs on the primary instead: the caller sees no error. ``primary``
        forces the primary (a read whose result other processes will share,
        like a cache fill, must not come from a replica that is behind).
        """
        replica = None if primary else self.replicas.pick(self._last_write())
        if replica is not None:

            async def on_replica() -> T:
                # A read: nothing to commit; closing the session rolls its transaction back.
                async with AsyncSession(replica.engine, expire_on_commit=False) as session:
                    return await fn(session)

            done, result = await self._on_replica(replica, on_replica)
            if done:
                return result  # type: ignore[return-value]
        return await self._run(fn, idempotent=False, writes=False)

    async def run_read_connection(
        self, fn: Callable[[AsyncConnection], Awaitable[T]], *, primary: bool = False
    ) -> T:
        """``fn(connection)`` on a replica fit for it, else on the primary; no retry.

        The lean path of single-row reads (no session, no identity map): a
        caller that wants retries goes :meth:`run_read` when this one fails.
        """
        replica = None if primary else self.replicas.pick(self._last_write())
        if replica is not None:

            async def on_replica() -> T:
                async with replica.engine.connect() as conn:
                    return await fn(conn)

            done, result = await self._on_replica(replica, on_replica)
            if done:
                return result  # type: ignore[return-value]
        async with self.engine.connect() as conn:
            return await fn(conn)

    async def _on_replica(
        self, replica: Replica, call: Callable[[], Awaitable[T]]
    ) -> tuple[bool, T | None]:
        """(True, result) of ``call`` on ``replica``; (False, None) when the primary must answer."""
        try:
            result = await call()
        except Exception as exc:
            if not is_transient_error(exc):  # a bad query, a busy pool: the primary's answer
                with translated(replica.masked_url, on_error=self._count_failure):
                    raise
            replica.mark_down(exc)
            self.replicas.fallbacks += 1
            logger.warning(
                "replica %s failed (%s); reading from the primary until it is back",
                replica.masked_url,
                first_line(exc),
            )
            return False, None
        replica.reads += 1
        return True, result

    # --- monitoring ------------------------------------------------------------------

    async def get_pool_stats(self) -> dict[str, Any]:
        """Pool sizes and counters; ``active_connections`` is the checked-out count."""
        stats = self.pool.stats()
        stats.update(
            backend=self.backend,
            url=self.config.masked_url,
            max_overflow=self.config.max_overflow,
            retries=self.retries,
            failures=self.failures,
            transactions=self.transactions,
            pgbouncer=self.config.pgbouncer,
        )
        if self.replicas:
            stats.update(replicas=self.replicas.stats(), replica_fallbacks=self.replicas.fallbacks)
        return stats

    async def health_checks(self) -> list[HealthStatus]:
        """The primary's health, then one status per replica; never raises."""
        primary = await self.health_check()
        return [primary, *(await self.replicas.health())] if self.replicas else [primary]

    async def health_check(self) -> HealthStatus:
        """``SELECT 1`` on the primary, and its connection budget (PostgreSQL); never raises."""
        started = time.perf_counter()
        detail = "SELECT 1 ok"
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
                if self.backend == "postgresql":
                    pool_max = self.config.pool_size + self.config.max_overflow
                    budget = await read_budget(conn, pool_max, self.config.pgbouncer)
                    detail = f"SELECT 1 ok; {budget.describe()}"
        except Exception as exc:
            detail = str(translate_error(exc, target=self.config.masked_url))
            return HealthStatus(
                "database", self.backend, False, detail=detail, target=self.config.masked_url
            )
        latency = (time.perf_counter() - started) * 1000
        return HealthStatus(
            "database", self.backend, True, round(latency, 2), detail,
            target=self.config.masked_url,
        )  # fmt: skip
