"""The connection budget: this process's pool maximum against the server's ``max_connections``.

Every process holds up to ``pool_size + max_overflow`` connections (and as
many again per replica, on the replica's server). PostgreSQL refuses
connections past ``max_connections`` minus the slots reserved for superusers,
and then even ``psql`` gets "too many clients". ``ads-infra health`` prints
how many processes like this one fit, and warns when only a few do.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["WARN_BELOW_PROCESSES", "ConnectionBudget", "read_budget"]

# Fewer processes than this fitting on the server is worth a warning: a
# rolling deploy alone runs two generations of every process side by side.
WARN_BELOW_PROCESSES = 4

BUDGET_QUERY = text(
    "SELECT current_setting('max_connections')::int, "
    "current_setting('superuser_reserved_connections')::int, "
    "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
)


@dataclasses.dataclass(frozen=True)
class ConnectionBudget:
    """What the server accepts and what one process may take of it."""

    max_connections: int
    reserved: int
    in_use: int
    pool_max: int
    pgbouncer: bool = False

    @property
    def usable(self) -> int:
        return max(self.max_connections - self.reserved, 0)

    @property
    def processes(self) -> int:
        """How many processes with this pool fit on the server at once."""
        return self.usable // self.pool_max if self.pool_max else 0

    @property
    def warning(self) -> str | None:
        if self.pgbouncer or self.processes >= WARN_BELOW_PROCESSES:
            return None
        return (
            f"warning: {self.processes} process(es) with this pool fill the server's "
            f"{self.usable} usable connections; lower database.pool_size + max_overflow, "
            "raise max_connections, or put PgBouncer in front"
        )

    def describe(self) -> str:
        text_ = (
            f"pool max {self.pool_max} of max_connections {self.max_connections} "
            f"({self.reserved} reserved, {self.in_use} in use now): "
            f"{self.processes} processes like this one fit"
        )
        if self.pgbouncer:
            text_ += " (behind PgBouncer: its pool sizes bound the server's connections)"
        warning = self.warning
        return f"{text_}; {warning}" if warning else text_


async def read_budget(conn: AsyncConnection, pool_max: int, pgbouncer: bool) -> ConnectionBudget:
    """The server's limits, read on ``conn``."""
    max_connections, reserved, in_use = (await conn.execute(BUDGET_QUERY)).one()
    return ConnectionBudget(int(max_connections), int(reserved), int(in_use), pool_max, pgbouncer)
