"""The soak through PgBouncer (transaction pooling) while the server's backends are terminated.

PgBouncer's server connections are killed under it (pg_terminate_backend on
every backend of the soak's database): the clients' connections to PgBouncer
stay up and the next transaction gets a fresh server connection, a
transaction in flight fails and is retried, a COMMIT in flight is reported
as unknown. Every write the soak saw acknowledged must be there at the end.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from ads_infra.entrypoints.soak import run_soak
from ads_infra.testing import build_test_container
from tests.integration.soak.faults import terminate_backends
from tests.pg_servers import PgBouncer

SECONDS = float(os.environ.get("ADS_SOAK_SECONDS", "9"))


async def test_soak_through_pgbouncer_loses_no_acknowledged_write(
    tmp_path: Path, postgres_url: str, pgbouncer: PgBouncer
) -> None:
    through = make_url(postgres_url).set(port=pgbouncer.port).render_as_string(hide_password=False)
    container = build_test_container(
        tmp_path / "soak",
        {
            "database": {
                "url": through,
                "pgbouncer": True,
                "retry_delay": 0.05,
                "retry_max_delay": 0.5,
            },
        },
    )
    terminated: list[int] = []

    async def faults() -> None:
        deadline = asyncio.get_running_loop().time() + SECONDS - 2.0
        await asyncio.sleep(1.0)
        while asyncio.get_running_loop().time() < deadline:
            terminated.append(await terminate_backends(postgres_url))
            await asyncio.sleep(0.8)

    report = await run_soak(container, seconds=SECONDS, concurrency=8, fault_hook=faults)
    summary: dict[str, Any] = report.to_dict()
    print("\n".join(report.summary_lines()))
    print(
        f"faults: {sum(terminated)} backends behind PgBouncer terminated, {len(terminated)} rounds"
    )

    assert sum(terminated) >= 3, terminated  # the faults hit
    assert report.database_retries > 0  # and units of work were cut off and retried
    assert summary["writes_lost"] == 0, summary
    assert summary["unhandled_exceptions"] == 0, summary["unhandled_samples"]
    assert all(n > 0 for n in summary["writes_acknowledged"].values()), summary
    assert summary["final_database_healthy"] is True
