"""Where the ads-infra schema's revision is kept, and its adoption from Alembic's default.

Alembic keeps a project's revision in ``alembic_version`` unless told
otherwise. A host application that migrates the same database with its own
Alembic uses that table too, and each side then finds the other's revision
there ("Can't locate revision ..."). The revision of this package's schema
is kept in :data:`VERSION_TABLE` instead; :func:`adopt_legacy_version` copies
it there from a database migrated by an earlier release.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, inspect, select
from sqlalchemy.engine import Connection

__all__ = ["LEGACY_TABLE", "VERSION_TABLE", "adopt_legacy_version", "legacy_revisions"]

logger = logging.getLogger(__name__)

VERSION_TABLE = "ads_infra_alembic_version"
LEGACY_TABLE = "alembic_version"
# Tables only this package's schema has together: where they are, a revision of
# ours in the legacy table was written by it.
_OURS = frozenset({"campaigns", "ad_groups", "ads", "performance_daily"})


def _version_table(name: str) -> Table:
    """A version table as Alembic creates it (same column, same constraint name)."""
    return Table(
        name,
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name=f"{name}_pkc"),
    )


def legacy_revisions(connection: Connection, revisions: Iterable[str]) -> list[str]:
    """This package's revisions an earlier release left in ``alembic_version`` (read only).

    Empty where the revision already has its own table, where there is no
    legacy table, or where the schema's tables are missing (a revision there
    is a host's).
    """
    tables = set(inspect(connection).get_table_names())
    if VERSION_TABLE in tables or LEGACY_TABLE not in tables or not tables >= _OURS:
        return []
    shipped = set(revisions)
    legacy = _version_table(LEGACY_TABLE)
    return [r for r in connection.scalars(select(legacy.c.version_num)) if r in shipped]


def adopt_legacy_version(connection: Connection, revisions: Iterable[str]) -> None:
    """Copy this package's revision from ``alembic_version`` into :data:`VERSION_TABLE`.

    ``revisions``: the revision ids this package ships. The legacy table is
    left as it is: a host that builds these tables in its own migrations may
    have a revision of the same name there, which is not ours to remove.
    Runs in the migration's transaction, so the copy is all or nothing.
    """
    ours = legacy_revisions(connection, revisions)
    if not ours:
        return
    version = _version_table(VERSION_TABLE)
    version.create(connection)
    connection.execute(version.insert(), [{"version_num": revision} for revision in ours])
    logger.warning(
        "ads-infra's schema revision %s was copied from alembic_version to %s; if no "
        "Alembic of your application uses alembic_version, the row (or the table) can go",
        ", ".join(ours),
        VERSION_TABLE,
    )
