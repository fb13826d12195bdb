"""The main job on PostgreSQL, Redis and S3, switched by environment variables alone.

What the demo wrote is then read back by other clients: psql, redis-cli, boto3.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from ads_infra.entrypoints.cli import cli
from tests.redis_server import RedisServer
from tests.s3 import ACCESS_KEY, SECRET_KEY

REPO = Path(__file__).resolve().parents[2]


def test_demo_on_postgresql_redis_and_s3_by_environment_alone(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    postgres_url: str,
    private_redis: RedisServer,
    moto_endpoint: str,
    s3_bucket: str,
    s3_client: Any,
) -> None:
    shutil.copy(REPO / "config.yml", tmp_path / "config.yml")
    monkeypatch.chdir(tmp_path)
    environment = {
        "ADS_DATABASE_URL": postgres_url,
        "ADS_CACHE_TYPE": "redis",
        "ADS_REDIS_URL": private_redis.url,
        "ADS_STORAGE_TYPE": "s3",
        "ADS_S3_ENDPOINT_URL": moto_endpoint,
        "ADS_S3_BUCKET": s3_bucket,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    result = CliRunner().invoke(cli, ["demo", "--json", "--users", "2", "--days", "30"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["stats"]["pool"]["backend"] == "postgresql"
    assert report["cache"]["backend"] == "redis" and report["cache"]["hits"] > 0
    assert report["stats"]["storage"]["backend"] == "s3"
    assert not (tmp_path / "var").exists()  # nothing fell back to the embedded defaults

    # psql sees the rows
    dsn = make_url(postgres_url).set(drivername="postgresql").render_as_string(False)
    counted = subprocess.run(
        ["psql", dsn, "-tAc", "SELECT count(*) FROM ads; SELECT count(*) FROM performance_daily"],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    ads, rows = (int(line) for line in counted.stdout.split())
    assert ads == report["seed"]["ads"] == 36
    assert rows == report["seed"]["performance_rows"] == 36 * 30

    # redis-cli sees the cached ads under the namespace; attaching a creative invalidated 8
    keys = private_redis.cli("--scan", "--pattern", "ads:*").split()
    cached_ads = [k for k in keys if re.search(r":ad:\d+$", k)]
    assert len(cached_ads) == ads - report["storage"]["saved"]
    assert private_redis.cli("GET", cached_ads[0]).startswith("{")  # readable JSON

    # boto3 sees the creatives, byte-identical to what the demo verified
    listed = s3_client.list_objects_v2(Bucket=s3_bucket).get("Contents", [])
    stored = [item for item in listed if item["Key"]]
    assert len(stored) == report["storage"]["total_files"] == report["storage"]["saved"] == 8
    body = s3_client.get_object(Bucket=s3_bucket, Key=stored[0]["Key"])["Body"].read()
    assert body.startswith(b"\x89PNG\r\n\x1a\n")  # the creative itself, readable by any client
