"""An instance URL holding credentials never shows them: not in the log, not in a status.

``discovery.register`` and the values under ``discovery.key_prefix`` are URLs,
and a URL may carry ``user:password@``; every other place that shows one masks it.
"""

from __future__ import annotations

import logging

import pytest

from ads_infra.core.settings import DiscoveryConfig
from ads_infra.discovery.etcd import EtcdDiscovery
from tests.etcd_server import EtcdServer

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
