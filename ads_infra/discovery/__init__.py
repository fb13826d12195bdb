"""Service discovery: where the external services' instances are (static, DNS SRV, etcd).

``discovery.backend`` selects the backend (``ADS_DISCOVERY_BACKEND``):
:class:`StaticDiscovery` leaves every service on its configured base URL,
:class:`DnsDiscovery` reads SRV records, :class:`EtcdDiscovery` follows etcd
keys held by leases and registers this process's own instances. Each keeps an
:class:`InstanceSet` per service current in the background; the external
services' balancer reads it on every call.

The etcd pieces (:mod:`ads_infra.discovery.etcd`, ``etcd_client`` with its
public, resumable ``EtcdClient.watch_prefix``, ``registration``) need the
``etcd`` extra and are imported from their modules, so that importing this
package never loads gRPC.
"""

from ads_infra.discovery.base import ServiceDiscovery, StaticDiscovery
from ads_infra.discovery.dns import DnsDiscovery
from ads_infra.discovery.instances import Instance, InstanceSet

__all__ = [
    "DnsDiscovery",
    "Instance",
    "InstanceSet",
    "ServiceDiscovery",
    "StaticDiscovery",
]
