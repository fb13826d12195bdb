"""DatabaseManager: one SQLAlchemy AsyncEngine, sessions, retried units of work, pool stats.

PostgreSQL goes through asyncpg, the embedded default is SQLite through
aiosqlite. The constructor does no I/O and binds to no event loop: the engine
is built on first use. Sessions commit on success and roll back on error;
:meth:`DatabaseManager.run` runs a whole unit of work again on transient
failures. Errors are classified in :mod:`ads_infra.database.errors`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
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
from ads_infra.database.errors import (
    commit_was_refused,
    first_line,
    is_transient_error,
    translate_error,
    translated,
)

__all__ = ["AFTER_COMMIT", "ConnectionPool", "DatabaseManager"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# session.info key: coroutine functions the session's owner awaits right after
# its commit (a unit of work that joined the session drops cache entries there).
AFTER_COMMIT = "ads_infra.after_commit"


class ConnectionPool:
    """A read-only view of the engine's connection pool (the seed's name).

    Works for every pool class: QueuePool-style pools report their sizes,
    the others (SQLite ``:memory:``'s StaticPool, NullPool) report zeros.
    """

    def __init__(self, engine: AsyncEngine | None) -> None:
        self._engine = engine

    def _call(self, name: str) -> int:
        pool = self._engine.pool if self._engine is not None else None
        method = getattr(pool, name, None)
        return int(method()) if callable(method) else 0

    @property
    def pool_class(self) -> str:
        return type(self._engine.pool).__name__ if self._engine is not None else "none"

    @property
    def size(self) -> int:
        return self._call("size")

    @property
    def checked_in(self) -> int:
        return self._call("checkedin")

    @property
    def checked_out(self) -> int:
        return self._call("checkedout")

    @property
    def overflow(self) -> int:
        # QueuePool reports -pool_size before any connection exists.
        return max(self._call("overflow"), 0)

    def stats(self) -> dict[str, Any]:
        return {
            "pool_class": self.pool_class,
            "pool_size": self.size,
            "checked_in": self.checked_in,
            "checked_out": self.checked_out,
            "active_connections": self.checked_out,
            "overflow": self.overflow,
        }


class DatabaseManager:
    """Owns the AsyncEngine; gives out sessions and runs retried units of work.

    >>> db = DatabaseManager()                     # embedded SQLite under ./var
    >>> async with db.get_session() as session:    # commit on success
    ...     await session.execute(text("select 1"))
    >>> await db.run(lambda session: repo_call(session))   # retried on transient errors
    """

    def __init__(self, config: DatabaseConfig | None = None) -> None:
        self.config = config or environment_settings().database
        self._engine: AsyncEngine | None = None
        self.retries = 0
        self.failures = 0
        self.transactions = 0

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
        cfg = self.config
        kwargs: dict[str, Any] = {"echo": cfg.echo, "pool_pre_ping": cfg.pool_pre_ping}
        if cfg.is_sqlite:
            self._prepare_sqlite_path()
            if ":memory:" not in cfg.url and "mode=memory" not in cfg.url:
                kwargs.update(self._queue_pool_kwargs())
            # sqlite3's busy timeout: how long a writer waits for another's lock
            # before "database is locked" (which run() then retries).
            kwargs["connect_args"] = {"timeout": cfg.statement_timeout}
        else:
            kwargs.update(self._queue_pool_kwargs())
            kwargs["connect_args"] = {
                "server_settings": {
                    "application_name": "ads-infra",
                    "statement_timeout": str(int(cfg.statement_timeout * 1000)),
                },
                "timeout": cfg.pool_timeout,
            }
        engine = create_async_engine(cfg.url, **kwargs)
        if cfg.is_sqlite:
            event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        return engine

    def _queue_pool_kwargs(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "pool_size": cfg.pool_size,
            "max_overflow": cfg.max_overflow,
            "pool_recycle": cfg.pool_recycle,
            "pool_timeout": cfg.pool_timeout,
        }

    def _prepare_sqlite_path(self) -> None:
        database = make_url(self.config.url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)

    @property
    def pool(self) -> ConnectionPool:
        return ConnectionPool(self._engine)

    async def start(self) -> None:
        """Open the pool now and fail fast if the database is unreachable."""
        with translated(self.config.masked_url):
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        logger.info("database ready: %s", self.config.masked_url)

    async def close(self) -> None:
        """Close every pooled connection; the manager can be used again later."""
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

    @asynccontextmanager
    async def _session_scope(self) -> AsyncIterator[AsyncSession]:
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
        """Run ``fn(session)`` in one transaction, again from the start on transient errors.

        Each attempt gets a fresh session (and so a fresh connection). Backoff
        is exponential with full jitter, capped at ``retry_max_delay``; at most
        ``max_retries`` retries. A constraint violation or programming error is
        raised at once. A connection lost while committing raises
        :class:`CommitOutcomeUnknownError` unless ``idempotent`` says that
        running ``fn`` twice leaves the same state as once (an upsert, a
        delete): then it is retried like any transient error.
        """
        cfg = self.config
        attempts = 0

        def _before_sleep(state: RetryCallState) -> None:
            self.retries += 1
            exc = state.outcome.exception() if state.outcome else None
            logger.warning(
                "database unit of work failed (%s), retry %d/%d",
                type(exc).__name__,
                state.attempt_number,
                cfg.max_retries,
            )

        def worth_retrying(exc: BaseException) -> bool:
            if isinstance(exc, CommitOutcomeUnknownError):
                return idempotent
            return is_transient_error(exc)

        retrying = AsyncRetrying(
            retry=retry_if_exception(worth_retrying),
            stop=stop_after_attempt(cfg.max_retries + 1),
            wait=wait_random_exponential(multiplier=cfg.retry_delay, max=cfg.retry_max_delay),
            before_sleep=_before_sleep,
            reraise=True,
        )
        with translated(
            self.config.masked_url, attempts=lambda: attempts, on_error=self._count_failure
        ):
            async for attempt in retrying:
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    async with self._session_scope() as session:
                        return await fn(session)
        raise AssertionError("unreachable: tenacity either returns or raises")

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
        )
        return stats

    async def health_check(self) -> HealthStatus:
        """Run ``SELECT 1``; never raises."""
        started = time.perf_counter()
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            detail = str(translate_error(exc, target=self.config.masked_url))
            return HealthStatus(
                "database", self.backend, False, detail=detail, target=self.config.masked_url
            )
        latency = (time.perf_counter() - started) * 1000
        return HealthStatus(
            "database", self.backend, True, round(latency, 2), "SELECT 1 ok",
            target=self.config.masked_url,
        )  # fmt: skip


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    """Foreign keys on (SQLite's default is off) and WAL, so readers don't block the writer."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()
