"""Database access: one SQLAlchemy AsyncEngine, sessions, retries, pool statistics.

PostgreSQL goes through asyncpg, the embedded default is SQLite through
aiosqlite. :class:`DatabaseManager` builds the engine on first use (its
constructor does no I/O and binds to no event loop), hands out sessions that
commit on success and roll back on error, and runs whole units of work again
on transient failures (:meth:`DatabaseManager.run`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from ads_infra.config import DatabaseConfig, mask_url
from ads_infra.errors import (
    CommitOutcomeUnknownError,
    DatabaseError,
    IntegrityViolationError,
    PermanentDatabaseError,
    TransientDatabaseError,
)
from ads_infra.health import HealthStatus

__all__ = [
    "ConnectionPool",
    "DatabaseConfig",
    "DatabaseManager",
    "is_database_error",
    "is_transient_error",
    "translate_error",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# SQLSTATEs worth a retry: serialization failure, deadlock, admin/crash
# shutdown, cannot connect now, too many connections; plus the whole class 08
# (connection exceptions).
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "57P01", "57P02", "57P03", "53300"})
# Of those, what the server answers to a COMMIT it did not carry out: a commit
# failing any other transient way (the connection dropped, the backend was
# killed) may have been applied before the reply was lost.
ROLLED_BACK_SQLSTATES = frozenset({"40001", "40P01"})

# session.info key: coroutine functions the session's owner awaits right after
# its commit (a unit of work that joined the session drops cache entries there).
AFTER_COMMIT = "ads_infra.after_commit"

# asyncpg's client-side errors (no SQLSTATE) of a connection the server has
# just dropped: a backend killed while a pooled connection was between
# statements surfaces as "another operation is in progress" (the protocol is
# still consuming the FATAL message) rather than as a disconnect. A new
# connection fixes it, so the unit is worth running again.
BROKEN_CONNECTION = (
    "another operation",  # "... another operation (2) is in progress"
    "connection is closed",
    "connection was closed",
    "in a manually started transaction",  # the driver lost track of a killed transaction
)


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None) or exc
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return state if isinstance(state, str) else None


def is_database_error(exc: BaseException) -> bool:
    """An error from SQLAlchemy or from the driver itself.

    Repositories talk to asyncpg directly on their hottest paths (COPY,
    prepared fetches); its exceptions carry a ``sqlstate`` (server errors) or
    come from the ``asyncpg`` package (client-side state errors).
    """
    return (
        isinstance(exc, sa_exc.SQLAlchemyError | OSError | DatabaseError)
        or isinstance(getattr(exc, "sqlstate", None), str)
        or type(exc).__module__.startswith("asyncpg")
    )


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.IntegrityError | sa_exc.ProgrammingError | sa_exc.DataError):
        return False
    state = _sqlstate(exc)
    message = str(getattr(exc, "orig", None) or exc)
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        if state is not None:
            return state.startswith("08") or state in TRANSIENT_SQLSTATES
        if any(sign in message for sign in BROKEN_CONNECTION):
            return True
        return isinstance(exc, sa_exc.OperationalError) and "database is locked" in message
    if state is not None:  # a driver error raised directly (asyncpg's COPY, fetchrow)
        return state.startswith("08") or state in TRANSIENT_SQLSTATES
    if type(exc).__module__.startswith("asyncpg"):
        return any(sign in message for sign in BROKEN_CONNECTION)
    if isinstance(exc, sa_exc.TimeoutError):  # pool checkout timed out
        return True
    # Connecting (before SQLAlchemy wraps anything) fails with OS-level errors.
    return isinstance(exc, ConnectionError | TimeoutError | OSError)


def is_transient_error(exc: BaseException) -> bool:
    """True when running the same unit of work again may succeed.

    Never true for a constraint violation or a programming error. A
    client-side error with no SQLSTATE of its own (asyncpg's "another
    operation is in progress", "connection is closed") that was raised while
    handling a transient one (a backend killed mid-COPY) is transient too:
    the first failure is the cause, the second only its echo.
    """
    if isinstance(exc, CommitOutcomeUnknownError):
        return False  # its cause is transient, but running the unit again may repeat it
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        if _is_transient(current):
            return True
        if _sqlstate(current) is not None or isinstance(current, sa_exc.IntegrityError):
            return False  # the server said what is wrong: that is the cause
        current = current.__cause__ or current.__context__
        seen += 1
    return False


def _first_line(exc: BaseException) -> str:
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0:1]
    return reason[0] if reason else type(exc).__name__


def _commit_was_refused(exc: BaseException) -> bool:
    """True when the server answered the COMMIT with a rollback (safe to run again)."""
    if _sqlstate(exc) in ROLLED_BACK_SQLSTATES:
        return True
    return "database is locked" in str(exc)  # SQLite: the commit never started


def translate_error(exc: BaseException, *, attempts: int = 1) -> DatabaseError:
    """Map a SQLAlchemy/driver error to the ads-infra hierarchy (no secrets)."""
    if isinstance(exc, DatabaseError):
        return exc
    detail = _first_line(exc)
    state = _sqlstate(exc)
    if isinstance(exc, sa_exc.IntegrityError) or (state is not None and state.startswith("23")):
        return IntegrityViolationError(
            f"a database constraint rejected the write: {detail}; fix the data, retrying "
            "will not help"
        )
    if is_transient_error(exc):
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        return TransientDatabaseError(
            f"the database is unavailable or busy{tries}: {detail}; check that it is "
            "running and reachable, then try again"
        )
    return PermanentDatabaseError(f"the database rejected the statement: {detail}")


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
        self.config = config or DatabaseConfig()
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
        from pathlib import Path

        from sqlalchemy.engine import make_url

        database = make_url(self.config.url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)

    @property
    def pool(self) -> ConnectionPool:
        return ConnectionPool(self._engine)

    async def start(self) -> None:
        """Open the pool now and fail fast if the database is unreachable."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            raise translate_error(exc) from exc
        logger.info("database ready: %s", self.config.masked_url)

    async def dispose(self) -> None:
        """Close every pooled connection; the manager can be used again later."""
        if self._engine is not None:
            engine, self._engine = self._engine, None
            await engine.dispose()

    async def close(self) -> None:
        """Alias of :meth:`dispose`, the name every manager shares."""
        await self.dispose()

    async def __aenter__(self) -> DatabaseManager:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.dispose()

    # --- sessions and units of work ----------------------------------------------

    @asynccontextmanager
    async def _session_scope(self) -> AsyncIterator[AsyncSession]:
        async with AsyncSession(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                try:
                    await session.commit()
                except Exception as exc:
                    if is_transient_error(exc) and not _commit_was_refused(exc):
                        with contextlib.suppress(Exception):
                            await session.invalidate()
                        raise CommitOutcomeUnknownError(
                            "the connection failed while committing, so the unit may or may "
                            f"not have been applied ({_first_line(exc)}); it was not retried, "
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
        try:
            async with self._session_scope() as session:
                yield session
        except Exception as exc:
            if not is_database_error(exc):
                raise
            self.failures += 1
            raise translate_error(exc) from exc

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
        try:
            async for attempt in retrying:
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    async with self._session_scope() as session:
                        return await fn(session)
        except Exception as exc:
            if not is_database_error(exc):
                raise
            self.failures += 1
            raise translate_error(exc, attempts=attempts) from exc
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
            detail = str(translate_error(exc))
            return HealthStatus(
                "database", self.backend, False, detail=detail, target=self.config.masked_url
            )
        latency = (time.perf_counter() - started) * 1000
        return HealthStatus(
            "database", self.backend, True, round(latency, 2), "SELECT 1 ok",
            target=mask_url(self.config.url),
        )  # fmt: skip


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    """Foreign keys on (SQLite's default is off) and WAL, so readers don't block the writer."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()
