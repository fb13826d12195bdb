"""An instance URL holding credentials never shows them: not in the log, not in a status.

``discovery.register`` and the values under ``discovery.key_prefix`` are URLs,
and a URL may carry ``user:password@``; every other place that shows one masks it.
"""

from __future__ import annotations

import logging

import pytest

from ads_infra.core.settings import DiscoveryConfig
from ads_infra.discovery.etcd import EtcdDiscovery
from ads_infra.discovery.etcd_client import EtcdClient
from ads_infra.external_services import ExternalServiceConfig, ExternalServiceManager
from tests.etcd_server import EtcdServer
from tests.integration.discovery.conftest import eventually

SECRET = "s3cret-pw"
URL = f"http://svc:{SECRET}@127.0.0.1:9"


async def test_registering_logs_no_password(
    etcd_server: EtcdServer, caplog: pytest.LogCaptureFixture
) -> None:
    config = DiscoveryConfig(
        backend="etcd",  # type: ignore[arg-type]
        etcd_url=etcd_server.url,
        register=[f"copywriter={URL}"],
    )
    with caplog.at_level(logging.DEBUG, logger="ads_infra"):
        async with EtcdDiscovery(config) as discovery:
            assert discovery.registration.keys  # registered
    assert "registered" in caplog.text
    assert SECRET not in caplog.text


async def test_a_service_status_shows_no_instance_password(etcd_server: EtcdServer) -> None:
    config = DiscoveryConfig(
        backend="etcd",  # type: ignore[arg-type]
        etcd_url=etcd_server.url,
        resolve=["ai.openai=copywriter"],
    )
    writer = EtcdClient([etcd_server.url])
    try:
        await writer.put(f"{config.key_prefix}copywriter/one", URL)
    finally:
        await writer.close()
    async with EtcdDiscovery(config) as discovery:
        manager = ExternalServiceManager(discovery=discovery)
        try:
            manager.register_service(
                "ai.openai", ExternalServiceConfig(base_url="http://x.invalid")
            )
            found = discovery.instances("copywriter")
            await eventually(lambda: bool(found.instances))
            status = manager.get_service_status("ai.openai")
        finally:
            await manager.close()
    assert len(status["instances"]) == 1
    assert SECRET not in repr(status)
    assert "127.0.0.1:9" in repr(status)


async def test_a_value_that_is_no_url_is_not_an_instance_and_is_reported(
    etcd_server: EtcdServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A key written by hand (etcdctl) without a scheme would get every call sent to it
    failing with aiohttp's InvalidURL; it is left out, with a warning naming the key."""
    config = DiscoveryConfig(backend="etcd", etcd_url=etcd_server.url)  # type: ignore[arg-type]
    writer = EtcdClient([etcd_server.url])
    try:
        await writer.put(f"{config.key_prefix}copywriter/good", "http://127.0.0.1:9/")
        await writer.put(f"{config.key_prefix}copywriter/bad", f"svc:{SECRET}@10.0.0.5:8080")
    finally:
        await writer.close()
    with caplog.at_level(logging.WARNING, logger="ads_infra"):
        async with EtcdDiscovery(config) as discovery:
            found = await discovery.resolve("copywriter")
            await eventually(lambda: bool(found.instances))
            assert found.urls == ["http://127.0.0.1:9"]
            health = await discovery.health_check()
    assert health.healthy
    assert f"{config.key_prefix}copywriter/bad" in caplog.text
    assert SECRET not in caplog.text
