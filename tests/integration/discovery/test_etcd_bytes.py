"""A value (or key) that is not UTF-8, written under a watched prefix by another tool.

It must be reported and ignored, not end the watch: before, decoding it raised
in the client's watch, the discovery restarted its watch only to fail the same
way at the next read of the prefix (no change followed any more), and the
configuration watch stopped for good.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aetcd  # type: ignore[import-untyped]
import pytest
import yaml

from ads_infra.containers import create_container
from ads_infra.core.lifecycle import running
from ads_infra.core.settings import DiscoveryConfig
from ads_infra.discovery.etcd import EtcdDiscovery
from ads_infra.discovery.etcd_client import EtcdClient
from tests.etcd_server import EtcdServer
from tests.integration.discovery.conftest import eventually

CONFIG_PREFIX = "/ads-infra/config/"


@pytest.fixture
async def raw(etcd_server: EtcdServer) -> AsyncIterator[aetcd.Client]:
    client = aetcd.Client(host="127.0.0.1", port=etcd_server.client_port)
    yield client
    await client.close()


async def test_discovery_follows_changes_past_a_value_that_is_not_utf8(
    etcd_server: EtcdServer, raw: aetcd.Client
) -> None:
    config = DiscoveryConfig(backend="etcd", etcd_url=etcd_server.url, timeout=0.5)  # type: ignore[arg-type]
    prefix = config.key_prefix
    writer = EtcdClient([etcd_server.url])
    try:
        await writer.put(f"{prefix}copywriter/a", "http://127.0.0.1:9")
        async with EtcdDiscovery(config) as discovery:
            found = await discovery.resolve("copywriter")
            assert found.urls == ["http://127.0.0.1:9"]
            await raw.put(f"{prefix}copywriter/binary".encode(), b"\xff\xfe\x00")
            await raw.put(f"{prefix}copywriter/\xff".encode("latin-1"), b"http://127.0.0.1:7")
            await writer.put(f"{prefix}copywriter/b", "http://127.0.0.1:8")
            await eventually(lambda: "http://127.0.0.1:8" in found.urls)
            assert found.urls == [
                "http://127.0.0.1:7",
                "http://127.0.0.1:8",
                "http://127.0.0.1:9",
            ]
        # And a start with such a value already there reads the prefix.
        async with EtcdDiscovery(config) as discovery:
            assert len((await discovery.resolve("copywriter")).urls) == 3
    finally:
        await writer.close()


async def test_configuration_follows_changes_past_a_value_that_is_not_utf8(
    etcd_server: EtcdServer, raw: aetcd.Client, tmp_path: Path
) -> None:
    config = tmp_path / "config.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": {"url": f"sqlite+aiosqlite:///{tmp_path}/ads.db"},
                "storage": {"base_path": str(tmp_path / "storage")},
                "cache": {"cache_type": "memory", "default_ttl": 300},
                "services": {"ai": {"provider": "openai", "api_key": "sk-x"}},
                "discovery": {"backend": "etcd", "etcd_url": etcd_server.url, "timeout": 1.0},
            }
        )
    )
    container = create_container(config)
    async with running(container):
        await raw.put(f"{CONFIG_PREFIX}cache.default_ttl".encode(), b"\xff")
        await eventually(lambda: container.config_watch().last is not None)
        last = container.config_watch().last
        assert last is not None and last.result == "invalid"
        assert "cache.default_ttl" in last.message
        await raw.put(f"{CONFIG_PREFIX}cache.default_ttl".encode(), b"7")
        await eventually(lambda: container.cache.manager().config.default_ttl == 7)
