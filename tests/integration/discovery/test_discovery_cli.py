"""``ads-infra discovery list`` and ``register``, run as a user runs them, against a real etcd."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ads_infra.discovery.etcd_client import EtcdClient
from tests.etcd_server import EtcdServer
from tests.integration.discovery.conftest import ROOT

# The CLI as this interpreter runs it (the venv's ads-infra script may not be on PATH).
ADS_INFRA = [sys.executable, "-m", "ads_infra.entrypoints.cli"]
PREFIX = "/ads-infra/services/"


def _env(etcd: EtcdServer, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADS_")}
    env.update(
        ADS_INFRA_CONFIG=str(ROOT / "config.yml"),
        ADS_DISCOVERY_BACKEND="etcd",
        ADS_ETCD_URL=etcd.url,
        ADS_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/ads.db",
    )
    return env


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ADS_INFRA, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _keys(etcd: EtcdServer) -> dict[str, str]:
    async def read() -> dict[str, str]:
        client = EtcdClient([etcd.url])
        try:
            return (await client.get_prefix(PREFIX))[1]
        finally:
            await client.close()

    return asyncio.run(read())


def test_register_keeps_an_instance_until_interrupted_and_list_shows_it(
    etcd_server: EtcdServer, tmp_path: Path
) -> None:
    env = _env(etcd_server, tmp_path)
    # A long TTL: the key disappearing right after SIGTERM can only be the revocation.
    process = subprocess.Popen(
        [*ADS_INFRA, "discovery", "register", "hooks", "http://127.0.0.1:9/", "--ttl", "60"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert line.startswith("registered hooks at http://127.0.0.1:9"), line
        keys = _keys(etcd_server)
        assert list(keys.values()) == ["http://127.0.0.1:9"]

        listed = _run(env, "discovery", "list", "hooks", "--json")
        assert listed.returncode == 0, listed.stderr
        report = json.loads(listed.stdout)
        assert report["backend"] == "etcd" and report["healthy"] is True
        assert report["services"]["hooks"]["instances"] == ["http://127.0.0.1:9"]

        text = _run(env, "discovery", "list", "hooks")
        assert "hooks: 1 instance(s)" in text.stdout and "http://127.0.0.1:9" in text.stdout
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        if process.stderr is not None:
            process.stderr.close()
    assert _keys(etcd_server) == {}  # deregistered at once, not after 60 s


def test_list_says_when_etcd_is_unreachable(etcd_server: EtcdServer, tmp_path: Path) -> None:
    env = _env(etcd_server, tmp_path)
    etcd_server.stop()
    result = _run(env, "discovery", "list", "--json")
    assert result.returncode == 1
    assert "etcd" in result.stderr and etcd_server.url in result.stderr
    assert "Traceback" not in result.stderr


def test_list_on_static_shows_the_configured_urls(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADS_")}
    env.update(
        ADS_INFRA_CONFIG=str(ROOT / "config.yml"),
        ADS_AI_PROVIDER="openai",
        ADS_AI_BASE_URL="https://llm.example/v1",
        ADS_AI_API_KEY="sk-not-shown",
    )
    result = _run(env, "discovery", "list", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["backend"] == "static"
    assert report["services"]["ai.openai"]["instances"] == ["https://llm.example/v1"]
    assert "sk-not-shown" not in result.stdout


@pytest.mark.parametrize("bad", ["not-a-url", "ftp://x"])
def test_register_refuses_a_bad_url_with_a_clear_error(
    etcd_server: EtcdServer, tmp_path: Path, bad: str
) -> None:
    result = _run(_env(etcd_server, tmp_path), "discovery", "register", "hooks", bad)
    assert result.returncode == 2
    assert "discovery.register" in result.stderr or "register" in result.stderr
    assert "Traceback" not in result.stderr


def test_health_does_not_register_this_process(etcd_server: EtcdServer, tmp_path: Path) -> None:
    """A probe checks etcd but writes nothing: no instance appears, even for a moment."""
    import yaml

    document = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    document["discovery"]["register"] = ["hooks=http://127.0.0.1:9/"]
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump(document), encoding="utf-8")
    env = _env(etcd_server, tmp_path)

    async def revision() -> int:
        client = EtcdClient([etcd_server.url])
        try:
            return (await client.get_prefix("/"))[0]
        finally:
            await client.close()

    before = asyncio.run(revision())
    result = _run(env, "--config", str(config), "health")
    assert "discovery" in result.stdout, result.stdout + result.stderr
    assert asyncio.run(revision()) == before  # no put, no lease revoked: nothing written
