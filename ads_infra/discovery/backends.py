"""The table of discovery backends, as the container's Selector builds them.

``etcd`` needs the optional ``aetcd`` client (``pip install 'ads-infra[etcd]'``),
imported only when that backend is chosen, so a process on ``static`` or
``dns`` never loads gRPC.
"""

from __future__ import annotations

from ads_infra.core.errors import ConfigurationError
from ads_infra.core.settings import DiscoveryConfig
from ads_infra.discovery.base import ServiceDiscovery, StaticDiscovery
from ads_infra.discovery.dns import DnsDiscovery

__all__ = ["dns_discovery", "etcd_discovery", "static_discovery"]


def static_discovery(config: DiscoveryConfig) -> ServiceDiscovery:
    return StaticDiscovery(config)


def dns_discovery(config: DiscoveryConfig) -> ServiceDiscovery:
    return DnsDiscovery(config)


def etcd_discovery(config: DiscoveryConfig) -> ServiceDiscovery:
    try:
        from ads_infra.discovery.etcd import EtcdDiscovery
    except ImportError as exc:
        raise ConfigurationError(
            f"needs the etcd client ({exc.name or 'aetcd'} is not installed): "
            "pip install 'ads-infra[etcd]', or choose backend static or dns",
            key="discovery.backend",
        ) from None
    return EtcdDiscovery(config)
