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
