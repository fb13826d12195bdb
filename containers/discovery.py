"""Discovery sub-container: ``backend`` is the ServiceDiscovery ``discovery.backend`` selects.

The services sub-container receives ``backend`` (its manager resolves the
upstreams of ``discovery.resolve`` through it) and ``lifecycle`` (so
discovery starts, and registers this process, before the services, and
deregisters after them).
"""

from dependency_injector import containers, providers

from ads_infra.core.lifecycle import started
from ads_infra.core.settings import DiscoveryConfig
from ads_infra.discovery.backends import dns_discovery, etcd_discovery, static_discovery


class DiscoveryContainer(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=DiscoveryConfig)

    backend = providers.Selector(
        settings.provided.backend,
        static=providers.Singleton(static_discovery, settings),
        dns=providers.Singleton(dns_discovery, settings),
        etcd=providers.Singleton(etcd_discovery, settings),
    )
    lifecycle = providers.Resource(started, backend)
