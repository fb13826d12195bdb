"""Alembic environment: runs migrations on the async engine of a DatabaseManager, or offline.

:mod:`ads_infra.database.migrate` puts the connection into
``config.attributes`` so the CLI, the demo and tests all migrate through the
same code path; offline (``ads-infra db upgrade --sql``) it puts the dialect's
name there instead and the migrations are rendered as SQL.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from ads_infra.database.tables import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_offline(dialect_name: str) -> None:
    context.configure(
        dialect_name=dialect_name,
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=dialect_name == "sqlite",
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
