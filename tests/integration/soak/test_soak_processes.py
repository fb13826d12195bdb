"""``ads-infra soak --processes N``: real soak processes on PostgreSQL and one Redis.

The CLI migrates once, runs two workers (each its own soak user, coordination
on the same private Redis) and adds up their reports; it exits non-zero when
a write is lost. ``ADS_SOAK_PROCESS_SECONDS`` sets each worker's run
(default 3 s) and ``ADS_SOAK_PROCESSES`` the workers (default 2); the
README's figures: ``ADS_SOAK_PROCESSES=4 ADS_SOAK_PROCESS_SECONDS=30``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.redis_server import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECONDS = float(os.environ.get("ADS_SOAK_PROCESS_SECONDS", "3"))
PROCESSES = int(os.environ.get("ADS_SOAK_PROCESSES", "2"))


def test_soak_processes_add_up_and_lose_no_write(
    tmp_path: Path, postgres_url: str, private_redis: RedisServer
) -> None:
    config = {
        "database": {"url": postgres_url},
        "cache": {"cache_type": "redis", "redis_url": private_redis.url},
        "storage": {"storage_type": "local", "base_path": str(tmp_path / "storage")},
        "services": {"ai": {"provider": "offline"}},
        "coordination": {"backend": "redis", "redis_url": private_redis.url},
    }
    config_file = tmp_path / "ads-infra.yml"
    config_file.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "ads_infra.entrypoints.cli", "--config", str(config_file)]
    command += ["soak", "--processes", str(PROCESSES), "--seconds", str(SECONDS)]
    command += ["--concurrency", "4"]
    done = subprocess.run(
        [*command, "--json"], capture_output=True, text=True, timeout=SECONDS + 240, check=False
    )
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    report = json.loads(done.stdout)
    print(f"soak --processes {PROCESSES}:", json.dumps(report))
    assert report["processes"] == PROCESSES
    assert report["workers_failed"] == 0
    assert report["writes_lost"] == 0
    acknowledged = sum(report["writes_acknowledged"].values())
    assert acknowledged > 0
    assert sum(report["writes_found"].values()) == acknowledged
    # Both workers ran the mix: each contributes operations of every kind it drew.
    assert len(report["per_process_operations"]) == PROCESSES
    assert all(n > 0 for n in report["per_process_operations"])
