"""What a failed statement on the driver path means: pure logic over asyncpg's own exceptions.

A write whose statement was not applied is run again; one that may have been applied
is not (CommitOutcomeUnknownError); a connection is handed back only when the server
refused the statement.
"""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]
import pytest

from ads_infra.database.direct import outcome_unknown, server_refused

TERMINATED = "terminating connection due to administrator command"


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.exceptions.UniqueViolationError("duplicate key value"),
        asyncpg.exceptions.CheckViolationError("violates check constraint"),
        asyncpg.exceptions.SerializationError("could not serialize access"),
        asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
        asyncpg.exceptions.InterfaceError("cannot perform operation: connection is closed"),
        asyncpg.exceptions.InterfaceError(
            "cannot perform operation: another operation (2) is in progress"
        ),
        asyncpg.exceptions.AdminShutdownError(TERMINATED),
        asyncpg.exceptions.ConnectionDoesNotExistError(
            f"connection was closed in the middle of operation: {TERMINATED}"
        ),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_statements_that_were_not_applied(exc: BaseException) -> None:
    assert not outcome_unknown(exc)


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.exceptions.ConnectionDoesNotExistError(
            "connection was closed in the middle of operation"
        ),
        ConnectionResetError("Connection reset by peer"),
        TimeoutError(),
        asyncpg.exceptions.CrashShutdownError("terminating connection because of crash"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_statements_that_may_have_been_applied(exc: BaseException) -> None:
    assert outcome_unknown(exc)


def test_a_termination_behind_the_error_counts_too() -> None:
    lost = asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed")
    lost.__cause__ = asyncpg.exceptions.AdminShutdownError(TERMINATED)
    assert not outcome_unknown(lost)


def test_only_the_servers_refusal_keeps_the_connection() -> None:
    assert server_refused(asyncpg.exceptions.UniqueViolationError("duplicate key value"))
    assert server_refused(asyncpg.exceptions.UndefinedTableError('relation "ads" does not exist'))
    assert not server_refused(asyncpg.exceptions.SerializationError("could not serialize"))
    assert not server_refused(asyncpg.exceptions.AdminShutdownError(TERMINATED))
    assert not server_refused(ConnectionResetError("reset"))
    assert not server_refused(TimeoutError())
