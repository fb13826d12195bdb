"""Alembic migrations, run programmatically on a DatabaseManager's engine, or as SQL offline.

Used by ``ads-infra db upgrade|downgrade|current``, by the demo, by tests and
by repositories on first use where ``database.auto_migrate`` lets them
(:func:`ensure_schema`); the migration scripts ship inside the package
(``ads_infra/database/migrations``). A migration is one transaction that
other processes' migrations wait for (an advisory lock on PostgreSQL,
``BEGIN IMMEDIATE`` on SQLite), so processes starting together take turns
and the later ones find the work done. Database errors come out translated (one
clear line: a wrong password, a PgBouncer that needs ``database.pgbouncer``),
never as the driver's chain. :func:`upgrade_sql` renders the migrations as
SQL for a DBA to review, without connecting.
"""

from __future__ import annotations

import asyncio
import io
import logging
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from ads_infra.core.errors import DatabaseError
from ads_infra.database.connect import create_sqlite_engine
from ads_infra.database.errors import translated
from ads_infra.database.manager import DatabaseManager
from ads_infra.database.migrations.version_table import VERSION_TABLE, legacy_revisions

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# pg_advisory_xact_lock's key while migrating (any constant; "adsi" in ASCII).
LOCK_KEY = 0x61647369
# One first-use migration per manager at a time (created in the loop that needs it).
_first_use: weakref.WeakKeyDictionary[DatabaseManager, asyncio.Lock] = weakref.WeakKeyDictionary()


def alembic_config(output: io.StringIO | None = None) -> Config:
    cfg = Config(output_buffer=output) if output is not None else Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def _no_implicit_transactions(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # sqlite3 opens none itself; BEGIN below does


def _begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


@asynccontextmanager
async def _transaction(db: DatabaseManager, exclusive: bool) -> AsyncIterator[AsyncConnection]:
    """A connection in one transaction for a migration (``exclusive``) or a read of it.

    On PostgreSQL, DDL is transactional; a migration first lifts the
    statement timeout (a migration, or the wait for another process's, may
    take longer) and takes the advisory lock, held to the end of the
    transaction. The sqlite3 module opens no transaction before DDL, so on
    the manager's engine a migration would commit table by table: a file
    SQLite database is migrated on a short-lived engine that begins with
    ``BEGIN IMMEDIATE`` (SQLAlchemy's recipe for transactional DDL), which
    also makes a second process wait for the first. An in-memory database
    is only reachable through the manager's own engine.
    """
    url = db.config.url
    if exclusive and db.config.is_sqlite and ":memory:" not in url and "mode=memory" not in url:
        engine = create_sqlite_engine(db.config)
        event.listen(engine.sync_engine, "connect", _no_implicit_transactions)
        event.listen(engine.sync_engine, "begin", _begin_immediate)
        try:
            async with engine.begin() as conn:
                yield conn
        finally:
            await engine.dispose()
        return
    async with db.engine.begin() as conn:
        if exclusive and conn.dialect.name == "postgresql":
            await conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
            await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({LOCK_KEY})")
        yield conn


async def _with_connection(
    db: DatabaseManager, action: Any, *args: Any, exclusive: bool = False
) -> Any:
    def runner(connection: Connection) -> Any:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        return action(cfg, connection, *args)

    with translated(db.config.masked_url):
        async with _transaction(db, exclusive) as conn:
            return await conn.run_sync(runner)


async def upgrade(db: DatabaseManager, revision: str = "head") -> None:
    """Migrate the database up to ``revision``."""
    await _with_connection(
        db, lambda cfg, _conn, rev: command.upgrade(cfg, rev), revision, exclusive=True
    )
    if revision == "head":
        db.migrate_pending = False


async def downgrade(db: DatabaseManager, revision: str = "base") -> None:
    """Migrate the database down to ``revision`` (``base``: drop everything)."""
    await _with_connection(
        db, lambda cfg, _conn, rev: command.downgrade(cfg, rev), revision, exclusive=True
    )
    db.migrate_pending = db.config.migrates_on_first_use


def head() -> str | None:
    """The newest revision the package ships."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def ensure_schema(db: DatabaseManager) -> None:
    """Bring the schema up to date before a repository's first statement, where
    ``database.auto_migrate`` lets repositories do so (``db.migrate_pending``).

    Once per manager: callers arriving meanwhile wait for the first one's
    migration; other processes wait for the database's lock (see
    :func:`_transaction`) and then find the work done. Should one still fail
    on what another did meanwhile, the work is taken as done when the
    revision is the head.
    """
    lock = _first_use.setdefault(db, asyncio.Lock())
    async with lock:
        if not db.migrate_pending:
            return
        logger.info(
            "bringing the ads-infra schema of %s up to date (database.auto_migrate: %s)",
            db.config.masked_url,
            db.config.auto_migrate,
        )
        try:
            await upgrade(db)
        except CommandError as exc:
            # A revision this release does not know: the database was migrated by a
            # newer one (a rollback, two releases on one file). Used as it is, as
            # before auto_migrate; `ads-infra db current` tells which revision.
            logger.warning("ads-infra schema of %s left as it is: %s", db.config.masked_url, exc)
            db.migrate_pending = False
        except DatabaseError:
            if await current(db) != head():
                raise
            db.migrate_pending = False


async def current(db: DatabaseManager) -> str | None:
    """The revision the database is at, or None when never migrated."""

    def read(cfg: Config, conn: Connection) -> str | None:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        found = context.get_current_revision()
        if found is None:  # an earlier release's, which the next upgrade adopts
            scripts = ScriptDirectory.from_config(cfg).walk_revisions()
            legacy = legacy_revisions(conn, (script.revision for script in scripts))
            found = legacy[0] if legacy else None
        return found

    result: str | None = await _with_connection(db, read)
    return result


def upgrade_sql(dialect: str, revision: str = "head") -> str:
    """The SQL that migrates a ``dialect`` ("postgresql", "sqlite") database up to ``revision``.

    ``revision`` may be a range, ``FROM:TO``, as in Alembic. Nothing connects.
    """
    output = io.StringIO()
    cfg = alembic_config(output)
    cfg.attributes["dialect_name"] = dialect
    command.upgrade(cfg, revision, sql=True)
    return output.getvalue()
