"""The ads-infra command line, as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ads_infra.core.template import render_config
from ads_infra.entrypoints.cli import cli

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def in_project_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding the repository's config.yml, environment cleared."""
    shutil.copy(REPO / "config.yml", tmp_path / "config.yml")
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("ADS_") and name not in ("ADS_REQUIRE_SERVICES",):
            monkeypatch.delenv(name)
    return tmp_path


def test_health_on_embedded_defaults_reports_sqlite_under_var(in_project_copy: Path) -> None:
    result = CliRunner().invoke(cli, ["health"])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("database"))
    assert "sqlite" in line and "healthy" in line and "./var/ads.db" in line
    assert (in_project_copy / "var" / "ads.db").exists()


def test_health_reports_postgresql_from_the_environment(
    in_project_copy: Path, postgres_server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADS_DATABASE_URL", postgres_server_url)
    result = CliRunner().invoke(cli, ["health", "--json"])
    assert result.exit_code == 0, result.output
    assert '"backend": "postgresql"' in result.output
    assert '"healthy": true' in result.output


def test_health_exits_non_zero_naming_the_unreachable_backend(
    in_project_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADS_DATABASE_URL", "postgresql+asyncpg://ads:hunter2@127.0.0.1:1/x")
    result = CliRunner().invoke(cli, ["health"])
    assert result.exit_code == 1
    assert "UNHEALTHY" in result.output
    assert "unhealthy: database (postgresql)" in result.output
    assert "Connect call failed" in result.output  # the why
    assert "hunter2" not in result.output


def test_health_checks_the_coordination_redis_when_the_fleet_shares_one(
    in_project_copy: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADS_COORDINATION_BACKEND", "redis")
    monkeypatch.setenv("ADS_COORDINATION_URL", redis_url)
    result = CliRunner().invoke(cli, ["health", "--json"])
    assert result.exit_code == 0, result.output
    (report,) = [r for r in json.loads(result.output) if r["component"] == "coordination"]
    assert report["healthy"] and report["backend"] == "redis" and report["latency_ms"] >= 0

    # Unreachable: named, with why and what it means, and no password.
    monkeypatch.setenv("ADS_COORDINATION_URL", "redis://:hunter2@127.0.0.1:1/0")
    result = CliRunner().invoke(cli, ["health"])
    assert result.exit_code == 1
    assert "unhealthy: coordination (redis)" in result.output
    assert "each process coordinates alone" in result.output
    assert "hunter2" not in result.output


def test_health_has_no_coordination_line_when_each_process_coordinates_alone(
    in_project_copy: Path,
) -> None:
    result = CliRunner().invoke(cli, ["health", "--json"])
    assert result.exit_code == 0, result.output
    assert "coordination" not in {r["component"] for r in json.loads(result.output)}


def test_a_bad_backend_prints_one_line_and_exits_2(in_project_copy: Path) -> None:
    bad = in_project_copy / "bad.yml"
    bad.write_text("cache: {cache_type: memcached}\n")
    result = CliRunner().invoke(cli, ["--config", str(bad), "config", "show"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "cache.cache_type" in lines[0]
    assert "memory, redis, redis_cluster" in lines[0]
    assert "Traceback" not in result.output


def test_config_show_masks_secrets(in_project_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADS_AI_API_KEY", "sk-should-not-print")
    monkeypatch.setenv("ADS_DATABASE_URL", "postgresql+asyncpg://ads:hunter2@db.internal/ads")
    for args in (["config", "show"], ["config", "show", "--json"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert "sk-should-not-print" not in result.output
        assert "hunter2" not in result.output
        assert "ads:***@db.internal" in result.output


def test_bench_rejects_an_unknown_area() -> None:
    result = CliRunner().invoke(cli, ["bench", "nosuch"])
    assert result.exit_code == 2
    assert "unknown benchmark area 'nosuch'" in result.output


def test_bench_quick_json_emits_rows_with_ratios_and_targets() -> None:
    """One fast area through the real command: well-formed rows; no speed is checked."""
    command = ["bench", "services", "--quick", "--json"]
    result = subprocess.run(
        [sys.executable, "-m", "ads_infra.entrypoints.cli", *command],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["run"]["mode"] == "quick" and "pool_pre_ping" in report["run"]["config"]
    rows = report["measurements"]
    assert [r["operation"] for r in rows] == [
        "GET through the manager",
        "POST JSON through the manager (decoded)",
        "GET, 2 discovered instances (round robin)",
    ]
    for r in rows:
        assert r["ours"] > 0 and r["baseline"] > 0 and r["ratio"] > 0
        assert r["p50_ms"] > 0 and r["p99_ms"] >= r["p50_ms"]
        assert r["target"] == 0.9 and r["meets_target"] in (True, False)


def test_db_upgrade_current_and_downgrade_on_sqlite(in_project_copy: Path) -> None:
    # docs/repositories.md's three commands, in its order.
    runner = CliRunner()
    upgraded = runner.invoke(cli, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    current = runner.invoke(cli, ["db", "current"])
    assert current.exit_code == 0, current.output
    assert current.output.strip() not in ("", "(not migrated)")
    downgraded = runner.invoke(cli, ["db", "downgrade"])
    assert downgraded.exit_code == 0, downgraded.output
    assert runner.invoke(cli, ["db", "current"]).output.strip() == "(not migrated)"


def _run_pytest(target: str, **environment: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", target],
        cwd=REPO,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_required_services_turn_skips_into_failures() -> None:
    """With ADS_REQUIRE_SERVICES=1 and the test database on a closed port, tests fail."""
    target = (
        "tests/integration/database/test_database_manager.py"
        "::test_the_seed_database_snippet_runs_as_written"
    )
    closed = "postgresql+asyncpg://postgres@127.0.0.1:1/test"
    failed = _run_pytest(target, ADS_REQUIRE_SERVICES="1", ADS_TEST_DATABASE_URL=closed)
    assert failed.returncode == 1, failed.stdout
    assert "required service unavailable" in failed.stdout
    skipped = _run_pytest(target, ADS_REQUIRE_SERVICES="0", ADS_TEST_DATABASE_URL=closed)
    assert skipped.returncode == 0, skipped.stdout
    assert "1 skipped" in skipped.stdout


def test_config_init_writes_a_file_that_config_show_accepts_and_never_overwrites(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "conf" / "ads.yml"
    result = CliRunner().invoke(cli, ["config", "init", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text() == render_config()
    shown = CliRunner().invoke(cli, ["--config", str(target), "config", "show", "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["source"] == str(target)
    target.write_text("cache: {max_size: 5}\n")
    again = CliRunner().invoke(cli, ["config", "init", str(target)])
    assert again.exit_code == 2 and "--force" in again.output
    assert target.read_text() == "cache: {max_size: 5}\n"
    forced = CliRunner().invoke(cli, ["config", "init", str(target), "--force"])
    assert forced.exit_code == 0 and target.read_text() == render_config()


def test_config_show_names_the_packaged_defaults_when_no_file_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ADS_INFRA_CONFIG", raising=False)
    monkeypatch.setenv("ADS_STORAGE_PATH", str(tmp_path / "files"))
    result = CliRunner().invoke(cli, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["source"] == "ads_infra.core.template"
    assert report["settings"]["storage"]["base_path"] == str(tmp_path / "files")
