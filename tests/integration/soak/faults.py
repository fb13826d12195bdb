"""The fault the soak tests inject into PostgreSQL: killing the soak's backends."""

from __future__ import annotations

import asyncpg
from sqlalchemy.engine import make_url


async def terminate_backends(postgres_url: str, *, application_name: str | None = None) -> int:
    """pg_terminate_backend on every connection to the URL's database; returns how many.

    ``application_name`` narrows it to one client's connections (PgBouncer's
    server connections carry their own name, so through PgBouncer it is None).
    """
    url = make_url(postgres_url)
    admin = await asyncpg.connect(
        url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    )
    try:
        rows = await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid() "
            "AND ($2::text IS NULL OR application_name = $2)",
            url.database,
            application_name,
        )
    finally:
        await admin.close()
    return sum(1 for row in rows if row[0])
