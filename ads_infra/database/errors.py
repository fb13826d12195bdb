"""Database errors: what failed, whether running it again may help, and what to tell the user.

Classifies SQLAlchemy and driver (asyncpg, aiosqlite) exceptions into the
ads-infra hierarchy (transient vs permanent, integrity, schema not migrated,
commit outcome unknown), with no secret in any message. :func:`translated`
is the one place that wraps a block's database errors; the manager and the
repositories' direct driver paths all go through it.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc

from ads_infra.core.errors import (
    CommitOutcomeUnknownError,
    DatabaseError,
    IntegrityViolationError,
    PermanentDatabaseError,
    PoolExhaustedError,
    SchemaNotMigratedError,
    TransientDatabaseError,
)

__all__ = [
    "PoolExhaustedError",
    "PoolTimeout",
    "commit_was_refused",
    "first_line",
    "is_database_error",
    "is_transient_error",
    "schema_error",
    "translate_error",
    "translated",
]

# SQLSTATEs worth a retry: serialization failure, deadlock, admin/crash
# shutdown, cannot connect now, too many connections; plus the whole class 08
# (connection exceptions).
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "57P01", "57P02", "57P03", "53300"})
# Of those, what the server answers to a COMMIT it did not carry out: a commit
# failing any other transient way (the connection dropped, the backend was
# killed) may have been applied before the reply was lost.
ROLLED_BACK_SQLSTATES = frozenset({"40001", "40P01"})

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


PGBOUNCER_HINT = (
    "the server looks like PgBouncer in transaction pooling mode: set database.pgbouncer: "
    "true (ADS_DATABASE_PGBOUNCER=1)"
)
# What a client that is not in PgBouncer mode meets behind one: the startup
# parameter it refuses, and prepared statements that land on another client's
# server connection (or not on this one's).
_PGBOUNCER_SIGNS = (
    "unsupported startup parameter",
    'prepared statement "__asyncpg_',
)
_PGBOUNCER_SQLSTATES = frozenset({"42P05", "26000"})  # duplicate / unknown prepared statement


class PoolTimeout(sa_exc.TimeoutError):
    """A caller waited ``timeout`` seconds for a pooled connection (raised by the pool)."""

    def __init__(self, *, size: int, overflow: int, waiting: int, timeout: float) -> None:
        self.size, self.overflow, self.waiting, self.timeout = size, overflow, waiting, timeout
        super().__init__(
            f"all {size + overflow} pooled connections (pool_size {size} + max_overflow "
            f"{overflow}) stayed in use for {timeout:g} s (pool_timeout) while {waiting} "
            f"caller{'s were' if waiting != 1 else ' was'} waiting"
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
    if isinstance(exc, sa_exc.TimeoutError):  # pool checkout timed out: never retried
        return False
    if isinstance(exc, ssl.SSLCertVerificationError) or _tls_refused(message):
        return False  # the certificate or the server's TLS setup: the same next time
    # Connecting (before SQLAlchemy wraps anything) fails with OS-level errors.
    return isinstance(exc, ConnectionError | TimeoutError | OSError)


def _tls_refused(message: str) -> bool:
    return "rejected SSL upgrade" in message or ("SSL" in message and "certificate" in message)


def _chain(exc: BaseException, limit: int = 6) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < limit:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        current = (
            (orig if isinstance(orig, BaseException) and id(orig) not in seen else None)
            or current.__cause__
            or current.__context__
        )


def _pgbouncer_problem(exc: BaseException) -> str | None:
    for current in _chain(exc):
        text = str(current)
        if any(sign in text for sign in _PGBOUNCER_SIGNS) or (
            _sqlstate(current) in _PGBOUNCER_SQLSTATES and "prepared statement" in text
        ):
            return first_line(current)
    return None


def _pool_timeout(exc: BaseException) -> PoolTimeout | sa_exc.TimeoutError | None:
    for current in _chain(exc):
        if isinstance(current, sa_exc.TimeoutError):
            return current
    return None


def _tls_problem(exc: BaseException) -> str | None:
    for current in _chain(exc):
        if isinstance(current, ssl.SSLError) or _tls_refused(str(current)):
            return first_line(current)
    return None


def is_transient_error(exc: BaseException) -> bool:
    """True when running the same unit of work again may succeed.

    Never true for a constraint violation or a programming error. A
    client-side error with no SQLSTATE of its own (asyncpg's "another
    operation is in progress", "connection is closed") that was raised while
    handling a transient one (a backend killed mid-COPY) is transient too:
    the first failure is the cause, the second only its echo.
    """
    if isinstance(exc, CommitOutcomeUnknownError | PoolExhaustedError):
        return False  # its cause is transient, but running the unit again may repeat it
    if _pgbouncer_problem(exc) or _tls_problem(exc) or _pool_timeout(exc) is not None:
        # PgBouncer's "08P01 unsupported startup parameter" is no outage, a refused
        # certificate is refused again, and a busy pool is not broken.
        return False
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


def first_line(exc: BaseException) -> str:
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0:1]
    return reason[0] if reason else type(exc).__name__


def commit_was_refused(exc: BaseException) -> bool:
    """True when the server answered the COMMIT with a rollback (safe to run again)."""
    if _sqlstate(exc) in ROLLED_BACK_SQLSTATES:
        return True
    return "database is locked" in str(exc)  # SQLite: the commit never started


def _schema_problem(exc: BaseException) -> str | None:
    """The missing table's message when ``exc`` (or what caused it) says the schema is not there."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        text = str(current)
        state = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if (
            "no such table" in text
            or state == "42P01"
            or ('relation "' in text and "does not exist" in text)
        ):
            return text.strip().splitlines()[0]
        for nxt in (getattr(current, "orig", None), current.__cause__, current.__context__):
            if isinstance(nxt, BaseException):
                todo.append(nxt)
    return None


def schema_error(problem: str, target: str) -> SchemaNotMigratedError:
    """The error for a database without the ads-infra tables, telling what to run."""
    return SchemaNotMigratedError(
        f"the database {target} has no ads-infra schema ({problem}); "
        "run `ads-infra db upgrade` (or `await RepositoryFactory(db).migrate()`) first"
    )


def translate_error(exc: BaseException, *, attempts: int = 1, target: str = "") -> DatabaseError:
    """Map a SQLAlchemy/driver error to the ads-infra hierarchy (no secrets).

    ``target`` is the masked URL of the database, named when its schema is missing.
    """
    if isinstance(exc, DatabaseError):
        return exc
    detail = first_line(exc)
    state = _sqlstate(exc)
    special = _special_error(exc, target)
    if special is not None:
        return special
    if not is_transient_error(exc):
        problem = _schema_problem(exc)
        if problem is not None:
            return schema_error(problem, target or "in use")
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


def _special_error(exc: BaseException, target: str) -> DatabaseError | None:
    """The errors whose fix is a setting: an exhausted pool, PgBouncer, TLS, the login."""
    where = f" ({target})" if target else ""
    timeout = _pool_timeout(exc)
    if timeout is not None:
        return PoolExhaustedError(
            f"the database connection pool is exhausted{where}: {first_line(timeout)}; "
            "raise database.pool_size / max_overflow (within the server's max_connections), "
            "run fewer concurrent calls, or find what holds connections"
        )
    problem = _pgbouncer_problem(exc)
    if problem is not None:
        return PermanentDatabaseError(f"{problem}{where}: {PGBOUNCER_HINT}")
    problem = _tls_problem(exc)
    if problem is not None:
        return PermanentDatabaseError(
            f"TLS to the database failed{where}: {problem}; check database.sslmode and "
            "sslrootcert (the CA that signed the server's certificate; verify-full also "
            "checks the host name)"
        )
    state = next((s for s in map(_sqlstate, _chain(exc)) if s), None)
    if state is not None and state.startswith("28"):
        return PermanentDatabaseError(
            f"the database refused the login{where}: {first_line(exc)}; check the user and "
            "password in database.url"
        )
    return None


@contextmanager
def translated(
    target: str = "",
    *,
    attempts: Callable[[], int] | None = None,
    on_error: Callable[[], None] | None = None,
) -> Iterator[None]:
    """Raise the block's database errors as ads-infra errors, chained to the driver's.

    ``target``: the database's masked URL (for the schema hint); ``attempts``
    reports how many tries the block made; ``on_error`` is told of each
    database error (the manager counts failures there). Errors that are not
    database errors pass through untouched, and so do ads-infra errors.
    """
    try:
        yield
    except Exception as exc:
        if not is_database_error(exc):
            raise
        if on_error is not None:
            on_error()
        if isinstance(exc, DatabaseError):
            raise
        tries = attempts() if attempts is not None else 1
        raise translate_error(exc, attempts=tries, target=target) from exc
