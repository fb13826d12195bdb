"""Alembic migrations, run programmatically on a DatabaseManager's engine, or as SQL offline.

Used by ``ads-infra db upgrade|downgrade|current``, by the demo and by tests;
the migration scripts ship inside the package (``ads_infra/database/migrations``).
Database errors come out translated (one clear line: a wrong password, a
PgBouncer that needs ``database.pgbouncer``), never as the driver's chain.
:func:`upgrade_sql` renders the migrations as SQL for a DBA to review,
without connecting.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from ads_infra.database.errors import translated
from ads_infra.database.manager import DatabaseManager

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(output: io.StringIO | None = None) -> Config:
    cfg = Config(output_buffer=output) if output is not None else Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


async def _with_connection(db: DatabaseManager, action: Any, *args: Any) -> Any:
    def runner(connection: Connection) -> Any:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        return action(cfg, connection, *args)

    with translated(db.config.masked_url):
        async with db.engine.begin() as conn:
            return await conn.run_sync(runner)


async def upgrade(db: DatabaseManager, revision: str = "head") -> None:
    """Migrate the database up to ``revision``."""
    await _with_connection(db, lambda cfg, _conn, rev: command.upgrade(cfg, rev), revision)


async def downgrade(db: DatabaseManager, revision: str = "base") -> None:
    """Migrate the database down to ``revision`` (``base``: drop everything)."""
    await _with_connection(db, lambda cfg, _conn, rev: command.downgrade(cfg, rev), revision)


async def current(db: DatabaseManager) -> str | None:
    """The revision the database is at, or None when never migrated."""

    def read(_cfg: Config, conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

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
