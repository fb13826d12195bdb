"""The ``discovery`` section: defaults, the environment, and clear errors for bad values."""

from __future__ import annotations

import pytest

from ads_infra.core.errors import ConfigurationError
from ads_infra.core.loader import load_settings
from ads_infra.core.settings import DiscoveryBackend, DiscoveryConfig, LoadBalancing, Settings


def test_defaults_are_static_and_the_local_etcd() -> None:
    config = Settings().discovery
    assert config.backend is DiscoveryBackend.STATIC
    assert config.etcd_endpoints == ["http://127.0.0.1:2379"]
    assert config.balancing is LoadBalancing.ROUND_ROBIN
    assert config.register == [] and config.resolved == {}


def test_the_environment_selects_the_backend_and_the_endpoints(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ADS_DISCOVERY_BACKEND", "etcd")
    monkeypatch.setenv("ADS_ETCD_URL", "http://10.0.0.1:2379, http://10.0.0.2:2379")
    config = load_settings(None).discovery
    assert config.backend is DiscoveryBackend.ETCD
    assert config.etcd_endpoints == ["http://10.0.0.1:2379", "http://10.0.0.2:2379"]


def test_pairs_are_parsed() -> None:
    config = DiscoveryConfig(
        backend=DiscoveryBackend.ETCD,
        register=["ai=http://10.0.0.5:8080/"],
        resolve=["ai.openai=ai", "notifications.webhook=hooks"],
    )
    assert config.registrations == [("ai", "http://10.0.0.5:8080/")]
    assert config.resolved == {"ai.openai": "ai", "notifications.webhook": "hooks"}


@pytest.mark.parametrize(
    ("values", "key", "words"),
    [
        ({"backend": "consul"}, "backend", "allowed: dns, etcd, static"),
        ({"etcd_url": "etcd.local:2379"}, "etcd_url", "not a URL"),
        ({"etcd_url": " , "}, "etcd_url", "at least one URL"),
        ({"key_prefix": "services"}, "key_prefix", "start and end with '/'"),
        ({"backend": "etcd", "register": ["ai"]}, "register", "NAME=VALUE"),
        ({"backend": "etcd", "register": ["ai=ftp://x"]}, "register", "scheme 'ftp'"),
        ({"backend": "etcd", "register": ["a/b=http://x"]}, "register", "may not hold '/'"),
        ({"register": ["ai=http://x"]}, "register", "needs backend etcd"),
        ({"resolve": ["ai.openai"]}, "resolve", "NAME=VALUE"),
        ({"dns_srv_name": "_ai._tcp.example.com"}, "dns_srv_name", "{service}"),
        ({"ttl": 1}, "ttl", ">= 2"),
        ({"dns_nameservers": ["ns.example"]}, "dns_nameservers", "not an IP address"),
        ({"dns_nameservers": ["10.0.0.2:99999"]}, "dns_nameservers", "not an IP address"),
        ({"dns_min_ttl": 10, "dns_max_ttl": 5}, "dns_min_ttl", "dns_max_ttl"),
    ],
)
def test_a_bad_value_names_the_key_and_what_to_do(
    values: dict[str, object], key: str, words: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        DiscoveryConfig.from_dict(values)
    assert caught.value.key == f"discovery.{key}"
    assert words in str(caught.value)
