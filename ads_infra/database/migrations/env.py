"""Alembic environment: runs migrations on the async engine of a DatabaseManager, or offline.

:mod:`ads_infra.database.migrate` puts the connection into
``config.attributes`` so the CLI, the demo and tests all migrate through the
same code path; offline (``ads-infra db upgrade --sql``) it puts the dialect's
name there instead and the migrations are rendered as SQL.

The revision is kept in a table of its own (``VERSION_TABLE``), not Alembic's
default ``alembic_version``: a host application migrating the same database
with its own Alembic keeps its revision there.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from ads_infra.database.migrations.version_table import VERSION_TABLE, adopt_legacy_version
from ads_infra.database.tables import metadata

config = context.config


def _run(connection: Connection) -> None:
    adopt_legacy_version(
        connection, (script.revision for script in context.script.walk_revisions())
    )
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
        compare_type=True,
        version_table=VERSION_TABLE,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_offline(dialect_name: str) -> None:
    context.configure(
        dialect_name=dialect_name,
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=dialect_name == "sqlite",
        version_table=VERSION_TABLE,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline(config.attributes.get("dialect_name", "postgresql"))
else:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through ads_infra.database.migrate (ads-infra db)")
    _run(connection)
