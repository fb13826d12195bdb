"""Where the ads-infra schema's revision is kept, and its move there from Alembic's default.

Alembic keeps a project's revision in ``alembic_version`` unless told
otherwise. A host application that migrates the same database with its own
Alembic uses that table too, and each side then finds the other's revision
there ("Can't locate revision ..."). The revision of this package's schema
is kept in :data:`VERSION_TABLE` instead; :func:`adopt_legacy_version` moves
it there from a database migrated by an earlier release.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, inspect, select
from sqlalchemy.engine import Connection

__all__ = ["LEGACY_TABLE", "VERSION_TABLE", "adopt_legacy_version"]

VERSION_TABLE = "ads_infra_alembic_version"
LEGACY_TABLE = "alembic_version"
# Tables only this package's schema has together: a database holding them was
# migrated by it, so a revision of ours in the legacy table is ours.
_OURS = frozenset({"campaigns", "ad_groups", "ads", "performance_daily"})


def _version_table(name: str) -> Table:
    """A version table as Alembic creates it (same column, same constraint name)."""
    return Table(
        name,
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name=f"{name}_pkc"),
    )


def adopt_legacy_version(connection: Connection, revisions: Iterable[str]) -> None:
    """Move this package's revision from ``alembic_version`` to :data:`VERSION_TABLE`, once.

    ``revisions``: the revision ids this package ships. Only those move, and
    only where the schema's tables exist: a host's own revision stays where it
    is, and the legacy table is dropped only when nothing else is left in it.
    Runs in the migration's transaction, so the move is all or nothing.
    """
    tables = set(inspect(connection).get_table_names())
    if VERSION_TABLE in tables or LEGACY_TABLE not in tables or not tables >= _OURS:
        return
    legacy = _version_table(LEGACY_TABLE)
    found = list(connection.scalars(select(legacy.c.version_num)))
    ours = [revision for revision in found if revision in set(revisions)]
    if not ours:
        return
    if len(ours) == len(found):
        legacy.drop(connection)
    else:
        connection.execute(legacy.delete().where(legacy.c.version_num.in_(ours)))
    version = _version_table(VERSION_TABLE)
    version.create(connection)
    connection.execute(version.insert(), [{"version_num": revision} for revision in ours])
