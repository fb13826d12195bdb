"""Configuration from etcd end to end: a real etcd, the container's running components.

The keys under ``discovery.config_prefix`` are laid over a configuration
file when the container starts and followed while it runs: a put changes the
running components, a transaction is one reload, a restart-only key or a bad
value leaves the configuration in force (one error line, counted), a deleted
key brings the file's value back, and changes still apply after etcd went
away and came back.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aetcd  # type: ignore[import-untyped]
import pytest
import yaml

from ads_infra.containers import Container, create_container
from ads_infra.core.lifecycle import running
from ads_infra.discovery.config_watch import EtcdConfigWatch
from ads_infra.discovery.etcd_client import EtcdClient
from tests.etcd_server import EtcdServer
from tests.integration.discovery.conftest import eventually

PREFIX = "/ads-infra/config/"
SECRET = "whsec_not-base64-and-secret"


def _container(etcd: EtcdServer, tmp_path: Path) -> Container:
    config = tmp_path / "config.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": {"url": f"sqlite+aiosqlite:///{tmp_path}/ads.db"},
                "storage": {"base_path": str(tmp_path / "storage")},
                "cache": {"cache_type": "memory", "default_ttl": 300},
                "services": {"ai": {"provider": "openai", "api_key": "sk-x", "rate_limit": 60}},
                "discovery": {"backend": "etcd", "etcd_url": etcd.url, "timeout": 1.0},
            }
        )
    )
    return create_container(config)


def _count(container: Container, result: str) -> float:
    value = container.metrics().get_sample_value("ads_config_reloads_total", {"result": result})
    return value or 0.0


def _rate_limit(container: Container) -> int:
    return int(container.services.manager().get_config("ai.openai").rate_limit)


def _watch(container: Container) -> EtcdConfigWatch:
    watch = container.config_watch()
    assert isinstance(watch, EtcdConfigWatch)
    return watch


@pytest.fixture
async def writer(etcd_server: EtcdServer) -> AsyncIterator[EtcdClient]:
    client = EtcdClient([etcd_server.url])
    yield client
    await client.close()


async def test_keys_apply_at_startup_and_follow_puts_and_deletes(
    etcd_server: EtcdServer,
    writer: EtcdClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await writer.put(f"{PREFIX}services.ai.rate_limit", "5")
    container = _container(etcd_server, tmp_path)
    with caplog.at_level(logging.INFO, logger="ads_infra.config"):
        async with running(container):
            # Applied before the container is up: no request saw the file's 60.
            assert _rate_limit(container) == 5
            assert container.settings().services.ai.rate_limit == 5
            assert _count(container, "applied") == 1
            line = f"config reloaded from etcd:{PREFIX}: services.ai.rate_limit (60 -> 5)"
            assert line in caplog.messages

            await writer.put(f"{PREFIX}cache.default_ttl", "7")
            await eventually(lambda: container.cache.manager().config.default_ttl == 7)
            assert _rate_limit(container) == 5  # the other key stays laid over the file
            assert _count(container, "applied") == 2

            # A file reload (SIGHUP) keeps etcd's keys over the file.
            result = await container.reloader().reload_from_file()
            assert result.result == "unchanged" and _rate_limit(container) == 5

            await writer.delete(f"{PREFIX}services.ai.rate_limit")
            await eventually(lambda: _rate_limit(container) == 60)  # the file's value
            assert container.cache.manager().config.default_ttl == 7
            assert _count(container, "applied") == 3
    # Stopped with the container, before the discovery closed the shared client
    # (after it, the watch would have connected again).
    assert not _watch(container)._tasks and _watch(container).client._client is None


async def test_a_transaction_is_one_reload(
    etcd_server: EtcdServer, writer: EtcdClient, tmp_path: Path
) -> None:
    container = _container(etcd_server, tmp_path)
    async with running(container):
        assert _count(container, "applied") == 0  # nothing under the prefix: nothing to do
        client = aetcd.Client(host="127.0.0.1", port=etcd_server.client_port)
        try:
            ops = client.transactions
            await client.transaction(
                compare=[],
                success=[
                    ops.put(f"{PREFIX}services.ai.rate_limit".encode(), b"4"),
                    ops.put(f"{PREFIX}services.ai.model".encode(), b"gpt-4.1"),
                ],
                failure=[],
            )
        finally:
            await client.close()
        await eventually(lambda: container.services.ai().config.model == "gpt-4.1")
        assert _rate_limit(container) == 4
        assert _count(container, "applied") == 1
        last = _watch(container).last
        assert last is not None
        assert last.keys == ("services.ai.model", "services.ai.rate_limit")


async def test_restart_only_keys_and_bad_values_leave_the_configuration_in_force(
    etcd_server: EtcdServer,
    writer: EtcdClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    container = _container(etcd_server, tmp_path)
    watch = _watch(container)
    async with running(container):
        before = container.settings()
        with caplog.at_level(logging.INFO, logger="ads_infra.config"):
            await writer.put(f"{PREFIX}database.pool_size", "9")
            await eventually(lambda: _count(container, "refused") == 1)
        assert watch.last is not None and watch.last.keys == ("database.pool_size",)
        refused = [r for r in caplog.records if r.levelname == "ERROR"]
        assert len(refused) == 1
        assert f"config reload from etcd:{PREFIX} refused" in refused[0].getMessage()
        assert "database.pool_size needs a restart" in refused[0].getMessage()
        assert container.settings() is before
        await writer.delete(f"{PREFIX}database.pool_size")
        await eventually(lambda: _count(container, "unchanged") == 1)

        await writer.put(f"{PREFIX}services.ai.rate_limit", "0")
        await eventually(lambda: _count(container, "invalid") == 1)
        assert watch.last is not None
        message = watch.last.message
        assert f"etcd:{PREFIX}services.ai.rate_limit=0 (services.ai.rate_limit)" in message
        assert _rate_limit(container) == 60 and container.settings() is before

        await writer.put(f"{PREFIX}services.ai.rate_limt", "5")
        await eventually(lambda: _count(container, "invalid") == 2)
        assert "did you mean 'services.ai.rate_limit'?" in watch.last.message

        # A bad secret is named, never shown.
        await writer.delete(f"{PREFIX}services.ai.rate_limt")
        await writer.delete(f"{PREFIX}services.ai.rate_limit")
        await eventually(lambda: _count(container, "unchanged") == 2)
        # Deleting rate_limt first left rate_limit=0 alone: that reload was invalid
        # too (the third, so counting invalid ones cannot tell when the secret's
        # reload is done); the secret's is refused (restart only): the second refusal.
        await writer.put(f"{PREFIX}services.notifications.webhook_secret", SECRET)
        await eventually(lambda: _count(container, "refused") == 2)
        assert "webhook_secret" in watch.last.message and SECRET not in watch.last.message
        assert SECRET not in caplog.text


async def test_changes_apply_after_etcd_went_away_and_came_back(
    etcd_server: EtcdServer,
    writer: EtcdClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    container = _container(etcd_server, tmp_path)
    async with running(container):
        await writer.put(f"{PREFIX}services.ai.rate_limit", "5")
        await eventually(lambda: _rate_limit(container) == 5)
        with caplog.at_level(logging.INFO, logger="ads_infra.config"):
            etcd_server.stop()
            await eventually(lambda: _watch(container).client.down_since is not None)
            assert _rate_limit(container) == 5  # the configuration in force stays
            etcd_server.start()
            await writer.put(f"{PREFIX}services.ai.rate_limit", "3")
            await eventually(lambda: _rate_limit(container) == 3)
        # One line for the outage from the configuration's side (the client logs its own).
        ours = [r.getMessage() for r in caplog.records if r.name == "ads_infra.config"]
        unreachable = [m for m in ours if "etcd unreachable" in m]
        assert len(unreachable) == 1 and f"etcd:{PREFIX}" in unreachable[0]
        assert _count(container, "applied") == 2


async def test_a_restart_only_key_at_startup_is_refused_and_the_file_stays(
    etcd_server: EtcdServer, writer: EtcdClient, tmp_path: Path
) -> None:
    await writer.put(f"{PREFIX}services.ai.rate_limit", "5")
    await writer.put(f"{PREFIX}cache.cache_type", "redis")
    container = _container(etcd_server, tmp_path)
    async with running(container):
        assert _count(container, "refused") == 1 and _count(container, "applied") == 0
        assert container.settings().cache.cache_type.value == "memory"
        assert _rate_limit(container) == 60  # the prefix applies whole or not at all
        await writer.delete(f"{PREFIX}cache.cache_type")
        await eventually(lambda: _rate_limit(container) == 5)


async def test_etcd_unreachable_at_start_leaves_the_file_then_applies_when_back(
    etcd_server: EtcdServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    container = _container(etcd_server, tmp_path)
    reloader = container.reloader()
    etcd_server.stop()
    client = EtcdClient([etcd_server.url], timeout=0.2)
    watch = EtcdConfigWatch(client, PREFIX, reloader, timeout=0.5)
    try:
        with caplog.at_level(logging.INFO, logger="ads_infra.config"):
            await watch.start()
        assert any(f"etcd:{PREFIX} not read at startup" in m for m in caplog.messages)
        assert reloader.current.services.ai.rate_limit == 60
        etcd_server.start()
        writer = EtcdClient([etcd_server.url])
        try:
            await writer.put(f"{PREFIX}services.ai.rate_limit", "5")
        finally:
            await writer.close()
        await eventually(lambda: reloader.current.services.ai.rate_limit == 5)
    finally:
        await watch.close()
        await client.close()
