"""A PostgreSQL database of the bench's own: created for an area, dropped after it.

The server is ADS_BENCH_DATABASE_URL, else ADS_TEST_DATABASE_URL, else
postgresql+asyncpg://postgres@127.0.0.1:5432/test; the database is named
``ads_bench_<random>`` so runs sharing the server never meet.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url


def server_url() -> str:
    return os.environ.get(
        "ADS_BENCH_DATABASE_URL",
        os.environ.get(
            "ADS_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
        ),
    )


def dsn(url: str) -> str:
    """The asyncpg DSN of a SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(dsn(server_url()))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def bench_database() -> AsyncIterator[str]:
    """The SQLAlchemy URL of a new, empty database; dropped (connections and all) afterwards."""
    name = f"ads_bench_{uuid.uuid4().hex[:10]}"
    await _admin(f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        yield make_url(server_url()).set(database=name).render_as_string(hide_password=False)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
