"""Alembic migrations, run programmatically on a DatabaseManager's engine, or as SQL offline.

Used by ``ads-infra db upgrade|downgrade|current``, by the demo, by tests and
by repositories on first use where ``database.auto_migrate`` lets them
(:func:`ensure_schema`); the migration scripts ship inside the package
(``ads_infra/database/migrations``). On PostgreSQL an upgrade or downgrade
holds an advisory lock, so processes migrating at once take turns and the
later ones find the work done. Database errors come out translated (one
clear line: a wrong password, a PgBouncer that needs ``database.pgbouncer``),
never as the driver's chain. :func:`upgrade_sql` renders the migrations as
SQL for a DBA to review, without connecting.
"""

from __future__ import annotations

import asyncio
import io
import logging
import weakref
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from ads_infra.core.errors import DatabaseError
from ads_infra.database.errors import translated
from ads_infra.database.manager import DatabaseManager
from ads_infra.database.migrations.version_table import VERSION_TABLE, adopt_legacy_version

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


async def _with_connection(
    db: DatabaseManager, action: Any, *args: Any, exclusive: bool = False
) -> Any:
    def runner(connection: Connection) -> Any:
        if exclusive and connection.dialect.name == "postgresql":
            # Held to the end of this transaction, which the migration runs in.
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({LOCK_KEY})")
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        return action(cfg, connection, *args)

    with translated(db.config.masked_url):
        async with db.engine.begin() as conn:
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
    migration. Another process migrating the same SQLite file at the same time
    may win the race; its work is taken as done when the revision is the head.
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
        except DatabaseError:
            if await current(db) != head():
                raise
            db.migrate_pending = False


async def current(db: DatabaseManager) -> str | None:
    """The revision the database is at, or None when never migrated."""

    def read(cfg: Config, conn: Connection) -> str | None:
        # A database an earlier release migrated has its revision moved first.
        shipped = (script.revision for script in ScriptDirectory.from_config(cfg).walk_revisions())
        adopt_legacy_version(conn, shipped)
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()

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
