"""Alembic environment: runs migrations on the async engine of a DatabaseManager.

:mod:`ads_infra.migrate` puts the connection into ``config.attributes`` so
the CLI, the demo and tests all migrate through the same code path.
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


connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through ads_infra.migrate (ads-infra db upgrade)")
_run(connection)
