"""Which database errors are transient (retried) and how they are translated: pure logic."""

from __future__ import annotations

import ssl

import pytest
from sqlalchemy import exc as sa_exc

from ads_infra.database import PoolExhaustedError, is_transient_error, translate_error
from ads_infra.database.errors import PoolTimeout
from ads_infra.errors import (
    IntegrityViolationError,
    PermanentDatabaseError,
    TransientDatabaseError,
)


class DriverError(Exception):
    """Stands in for a DBAPI exception carrying a SQLSTATE, as asyncpg's adapter does."""

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def dbapi(
    cls: type[sa_exc.DBAPIError],
    message: str,
    sqlstate: str | None = None,
    invalidated: bool = False,
) -> sa_exc.DBAPIError:
    return cls("SELECT 1", {}, DriverError(message, sqlstate), connection_invalidated=invalidated)


@pytest.mark.parametrize(
    "sqlstate", ["08000", "08003", "08006", "40001", "40P01", "57P01", "57P03", "53300"]
)
def test_transient_sqlstates_are_retried(sqlstate: str) -> None:
    assert is_transient_error(dbapi(sa_exc.OperationalError, "x", sqlstate))
    assert isinstance(
        translate_error(dbapi(sa_exc.DBAPIError, "x", sqlstate)), TransientDatabaseError
    )


@pytest.mark.parametrize("sqlstate", ["23505", "23503", "42P01", "42601", "22001", "XX000"])
def test_other_sqlstates_are_not_retried(sqlstate: str) -> None:
    assert not is_transient_error(dbapi(sa_exc.DBAPIError, "x", sqlstate))


def test_an_invalidated_connection_is_transient() -> None:
    assert is_transient_error(dbapi(sa_exc.DBAPIError, "connection is closed", invalidated=True))


def test_sqlite_lock_is_transient_but_other_operational_errors_are_not() -> None:
    assert is_transient_error(dbapi(sa_exc.OperationalError, "database is locked"))
    assert not is_transient_error(dbapi(sa_exc.OperationalError, "no such table: ads"))


def test_constraint_and_programming_errors_are_never_transient_even_with_08_state() -> None:
    assert not is_transient_error(dbapi(sa_exc.IntegrityError, "dup", "08000"))
    assert not is_transient_error(dbapi(sa_exc.ProgrammingError, "bad", "08000"))


def test_connect_level_os_errors_are_transient() -> None:
    assert is_transient_error(ConnectionRefusedError(111, "refused"))
    assert is_transient_error(TimeoutError())
    assert not is_transient_error(ValueError("bug"))


def test_a_pool_timeout_is_not_retried_and_says_how_exhausted_the_pool_was() -> None:
    # Retried, the shipped 30 s timeout and 5 retries kept a caller ~3 minutes.
    plain = sa_exc.TimeoutError("QueuePool limit of size 5 overflow 5 reached")
    plain.__context__ = TimeoutError()  # what asyncio's queue raised underneath
    assert not is_transient_error(plain)
    counted = PoolTimeout(size=5, overflow=5, waiting=7, timeout=30)
    error = translate_error(counted, target="postgresql+asyncpg://u:***@h/db")
    assert isinstance(error, PoolExhaustedError)
    assert not is_transient_error(error)
    message = str(error)
    assert "exhausted" in message and "7 callers were waiting" in message
    assert "pool_size 5 + max_overflow 5" in message and "30 s" in message


@pytest.mark.parametrize(
    ("message", "sqlstate"),
    [
        ("unsupported startup parameter: statement_timeout", "08P01"),
        ('prepared statement "__asyncpg_stmt_1__" already exists', "42P05"),
        ('prepared statement "__asyncpg_stmt_9__" does not exist', "26000"),
    ],
)
def test_pgbouncer_errors_are_permanent_and_name_the_setting(message: str, sqlstate: str) -> None:
    error = dbapi(sa_exc.DBAPIError, message, sqlstate)
    assert not is_transient_error(error)  # 08P01 is class 08, yet no outage
    translated = translate_error(error)
    assert isinstance(translated, PermanentDatabaseError)
    assert "database.pgbouncer: true" in str(translated)
    assert "ADS_DATABASE_PGBOUNCER=1" in str(translated)


def test_a_refused_certificate_is_permanent_and_points_at_the_tls_settings() -> None:
    cause = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify")
    assert not is_transient_error(cause)
    error = translate_error(cause)
    assert isinstance(error, PermanentDatabaseError)
    assert "sslrootcert" in str(error) and "CERTIFICATE_VERIFY_FAILED" in str(error)


def test_a_refused_login_names_the_url_not_a_statement() -> None:
    error = translate_error(dbapi(sa_exc.DBAPIError, "password authentication failed", "28P01"))
    assert isinstance(error, PermanentDatabaseError)
    assert "refused the login" in str(error) and "statement" not in str(error)


def test_translation_keeps_the_family() -> None:
    assert isinstance(
        translate_error(dbapi(sa_exc.IntegrityError, "dup key", "23505")), IntegrityViolationError
    )
    permanent = translate_error(dbapi(sa_exc.ProgrammingError, "syntax error", "42601"))
    assert isinstance(permanent, PermanentDatabaseError)
    assert not isinstance(permanent, IntegrityViolationError)
    assert "syntax error" in str(permanent)


class ConnectionDoesNotExistError(Exception):
    """Shaped like asyncpg's: raised by the driver itself, with a SQLSTATE."""

    sqlstate = "08003"


class UniqueViolationError(Exception):
    sqlstate = "23505"


class InterfaceError(Exception):
    """Shaped like asyncpg's client-side state error: no SQLSTATE."""


InterfaceError.__module__ = "asyncpg.exceptions"  # classified as the driver's own


def test_a_broken_connection_state_is_transient() -> None:
    busy = "cannot switch to state 12; another operation (2) is in progress"
    assert is_transient_error(InterfaceError(busy))
    assert is_transient_error(dbapi(sa_exc.InterfaceError, busy))
    assert is_transient_error(dbapi(sa_exc.InterfaceError, "connection is closed"))
    lost = "cannot use Connection.transaction() in a manually started transaction"
    assert is_transient_error(InterfaceError(lost))


def test_raw_driver_errors_are_classified_by_sqlstate() -> None:
    assert is_transient_error(ConnectionDoesNotExistError("connection was closed"))
    assert not is_transient_error(UniqueViolationError("duplicate key"))
    assert isinstance(translate_error(UniqueViolationError("dup")), IntegrityViolationError)
    assert isinstance(translate_error(ConnectionDoesNotExistError("x")), TransientDatabaseError)


def test_an_echo_of_a_broken_connection_is_transient() -> None:
    try:
        try:
            raise ConnectionDoesNotExistError("connection was closed in the middle of operation")
        except ConnectionDoesNotExistError:
            raise InterfaceError("cannot perform operation: another operation is in progress")  # noqa: B904  (an implicit __context__, as in asyncpg)
    except InterfaceError as echo:
        assert is_transient_error(echo)


def test_a_client_error_on_its_own_is_not_transient() -> None:
    assert not is_transient_error(InterfaceError("the pool is closing"))
    try:
        try:
            raise UniqueViolationError("duplicate key")
        except UniqueViolationError:
            raise InterfaceError("echo")  # noqa: B904
    except InterfaceError as echo:
        assert not is_transient_error(echo)  # the cause was a constraint: never retried
