"""``discovery.backend: dns``: services' instances from SRV records, re-resolved on their TTL.

What Kubernetes headless services and Consul DNS publish: one SRV record per
instance (target host and port). Each service gets a background task that
resolves ``dns_srv_name`` (``{service}`` replaced) with dnspython's asyncio
resolver, turns each record into ``<dns_scheme>://<address>:<port>`` (the
target's A/AAAA from the answer's additional section, else asked for, so that
the calls need no further lookup), keeps the records of the lowest priority
(SRV's rule; weights are not applied: the balancer spreads the calls), and
asks again when the shortest TTL of the answer runs out. A failed lookup
keeps the last known instances, marked stale, and is retried sooner; a
target whose addresses cannot be looked up is left out while others resolve.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver

from ads_infra.core.settings import DiscoveryConfig
from ads_infra.discovery.base import ServiceDiscovery
from ads_infra.discovery.instances import Instance, InstanceSet

__all__ = ["DnsDiscovery", "nameserver"]

logger = logging.getLogger("ads_infra.discovery")


def nameserver(entry: str) -> dns.nameserver.Do53Nameserver:
    """``address``, ``IPv4:port`` or ``[IPv6]:port`` as a nameserver (port 53 by default)."""
    host, port = entry.strip(), 53
    if host.startswith("["):
        host, _, rest = host[1:].partition("]")
        port = int(rest.lstrip(":") or 53)
    elif host.count(":") == 1:
        host, _, text = host.partition(":")
        port = int(text)
    return dns.nameserver.Do53Nameserver(host, port)


class DnsDiscovery(ServiceDiscovery):
    """Resolves each asked-for service's SRV records and keeps them current."""

    backend = "dns"

    def __init__(self, config: DiscoveryConfig | None = None) -> None:
        super().__init__(config)
        cfg = self.config
        self._nameservers = [nameserver(e) for e in cfg.dns_nameservers]
        self._resolver: dns.asyncresolver.Resolver | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._first: dict[str, asyncio.Event] = {}
        self._running = False

    def _make_resolver(self) -> dns.asyncresolver.Resolver:
        resolver = dns.asyncresolver.Resolver(configure=not self._nameservers)
        if self._nameservers:
            resolver.nameservers = list(self._nameservers)
        resolver.lifetime = self.config.timeout
        resolver.timeout = self.config.timeout
        return resolver

    async def start(self) -> None:
        """Resolve every ``discovery.resolve`` service once (bounded), then keep them current.

        A failed first lookup does not fail the start: the service's calls
        fail with its reason until a lookup succeeds.
        """
        if self._running:
            return
        self._running = True
        self._resolver = self._make_resolver()
        for service in self._resolve.values():
            self.instances(service)
        for instances in self._sets.values():
            self._spawn(instances)
        await asyncio.gather(*(self.resolve(name) for name in list(self._sets)))

    async def close(self) -> None:
        self._running = False
        tasks, self._tasks = self._tasks, {}
        for task in tasks.values():
            task.cancel()
        for task in tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def resolve(self, service: str) -> InstanceSet:
        found = self.instances(service)
        first = self._first.get(service)
        if first is not None and not first.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(first.wait(), self.config.timeout * 2)
        return found

    def _track(self, instances: InstanceSet) -> None:
        if self._running:
            self._spawn(instances)

    def _spawn(self, instances: InstanceSet) -> None:
        if instances.service not in self._tasks:
            self._first[instances.service] = asyncio.Event()
            self._tasks[instances.service] = asyncio.create_task(
                self._refresh(instances), name=f"dns-discovery-{instances.service}"
            )

    def srv_name(self, service: str) -> str:
        return self.config.dns_srv_name.replace("{service}", service)

    async def _refresh(self, instances: InstanceSet) -> None:
        cfg = self.config
        retry = cfg.dns_min_ttl
        while True:
            try:
                found, ttl = await self._lookup(self.srv_name(instances.service))
            except Exception as exc:  # DNS errors, and anything else: keep the last known
                problem = f"{self.srv_name(instances.service)}: {type(exc).__name__}: {exc}"
                if isinstance(exc, dns.exception.DNSException | OSError):
                    logger.warning("DNS discovery: %s", problem)
                else:
                    logger.exception("DNS discovery: %s", problem)
                instances.mark_stale(problem[:300])
                wait = retry
                retry = min(retry * 2, cfg.dns_max_ttl)
            else:
                instances.replace(found)
                wait = min(max(ttl, cfg.dns_min_ttl), cfg.dns_max_ttl)
                retry = cfg.dns_min_ttl
            self._first[instances.service].set()
            await asyncio.sleep(wait)

    async def _lookup(self, name: str) -> tuple[list[Instance], float]:
        """The instances behind SRV ``name`` and the seconds the answer may be kept."""
        resolver = self._resolver or self._make_resolver()
        try:
            answer = await resolver.resolve(name, "SRV")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            # An answer: there is no instance (as opposed to a failed lookup).
            return [], self.config.dns_min_ttl
        records = list(answer)
        ttl = float(answer.rrset.ttl) if answer.rrset is not None else self.config.dns_min_ttl
        if not records:
            return [], ttl
        best = min(r.priority for r in records)
        addresses: dict[str, list[str]] = {}
        for rrset in answer.response.additional:
            if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                owner = rrset.name.to_text()
                addresses.setdefault(owner, []).extend(r.address for r in rrset)
                ttl = min(ttl, float(rrset.ttl))
        found: list[Instance] = []
        failed: dict[str, Exception] = {}
        for record in records:
            if record.priority != best:
                continue
            target = record.target.to_text()
            hosts = addresses.get(target)
            if hosts is None and target not in failed:
                # Asked once per target (one may stand behind several records); a
                # target that cannot be resolved must not take the others out of use.
                try:
                    hosts, host_ttl = await self._addresses(resolver, target)
                except dns.exception.DNSException as exc:
                    failed[target] = exc
                else:
                    addresses[target] = hosts
                    ttl = min(ttl, host_ttl)
            for host in hosts or ():
                shown = f"[{host}]" if ":" in host else host
                found.append(Instance(f"{self.config.dns_scheme}://{shown}:{record.port}", target))
        if failed:
            target, error = next(iter(failed.items()))
            if not found:
                raise error  # nothing resolved: the last known instances stay, marked stale
            logger.warning(
                "DNS discovery: %s: %d target(s) not resolved, left out until the next lookup "
                "(%s: %s: %s)",
                name,
                len(failed),
                target,
                type(error).__name__,
                str(error)[:200],
            )
            ttl = min(ttl, self.config.dns_min_ttl)  # try them again soon
        return found, ttl

    async def _addresses(
        self, resolver: dns.asyncresolver.Resolver, target: str
    ) -> tuple[list[str], float]:
        hosts: list[str] = []
        ttl = self.config.dns_max_ttl
        failure: dns.exception.DNSException | None = None
        for rdtype in ("A", "AAAA"):
            try:
                answer = await resolver.resolve(target, rdtype)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                continue
            except dns.exception.DNSException as exc:
                # One family failing (a resolver answering SERVFAIL to AAAA) leaves
                # the other's addresses usable; both failing is the target's failure.
                failure = exc
                continue
            hosts.extend(r.address for r in answer)
            if answer.rrset is not None:
                ttl = min(ttl, float(answer.rrset.ttl))
        if failure is not None:
            if not hosts:
                raise failure
            ttl = min(ttl, self.config.dns_min_ttl)  # ask the failed family again soon
        return hosts, ttl
