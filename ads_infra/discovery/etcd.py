"""``discovery.backend: etcd``: services' instances from etcd keys, followed by one watch.

Every instance is a key ``<key_prefix><service>/<id>`` whose value is its base
URL, held by its process's lease (:mod:`ads_infra.discovery.registration`).
One background task follows the whole prefix with
:meth:`~ads_infra.discovery.etcd_client.EtcdClient.watch_prefix` and keeps an
:class:`~ads_infra.discovery.instances.InstanceSet` per service current, so a
call never asks etcd anything. While etcd is away the sets keep their last
known instances, and the health report says since when.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ads_infra.core.errors import DiscoveryError
from ads_infra.core.health import HealthStatus
from ads_infra.core.redact import mask_url
from ads_infra.core.section import url_problem
from ads_infra.core.settings import DiscoveryConfig
from ads_infra.discovery.base import ServiceDiscovery
from ads_infra.discovery.etcd_client import EtcdClient
from ads_infra.discovery.instances import Instance, InstanceSet
from ads_infra.discovery.registration import Registration

__all__ = ["EtcdDiscovery"]

logger = logging.getLogger("ads_infra.discovery")

# An instance's base URL; a longer value is something else written under the prefix.
_MAX_URL = 2048


class EtcdDiscovery(ServiceDiscovery):
    """Resolves every service under ``key_prefix`` and registers ``discovery.register``."""

    backend = "etcd"

    def __init__(self, config: DiscoveryConfig | None = None) -> None:
        super().__init__(config)
        cfg = self.config
        self.client = EtcdClient(cfg.etcd_endpoints, timeout=cfg.timeout)
        self.registration = Registration(self.client, cfg.key_prefix, cfg.registrations, cfg.ttl)
        self._keys: dict[str, dict[str, str]] = {}  # service -> {key: url}
        self._task: asyncio.Task[None] | None = None
        self._synced: asyncio.Event | None = None
        self.client.on_reachability(self._reachability)

    async def start(self) -> None:
        """Register this process's instances, read every service once, then follow changes.

        This process's own instances are in its sets when start() returns.
        Raises DiscoveryError, naming the endpoints, when etcd cannot be read
        within twice ``discovery.timeout``, or refuses the registration.
        """
        if self._task is not None:
            return
        for service in self._resolve.values():
            self.instances(service)
        self._synced = asyncio.Event()
        self._task = asyncio.create_task(self._follow(), name="etcd-discovery-watch")
        try:
            await asyncio.wait_for(self._synced.wait(), self.config.timeout * 2)
            await self.registration.start()
        except (TimeoutError, DiscoveryError) as exc:
            await self.close()
            problem = self.client.problem or str(exc) or "no answer"
            raise DiscoveryError(
                f"etcd: could not read {self.config.key_prefix} ({problem}); check that "
                f"etcd runs at ADS_ETCD_URL ({self._target()})"
            ) from None
        # Read-your-writes: this process's own instances are in its sets when start()
        # returns, not a watch event later (the event, when it comes, changes nothing).
        for key, (service, url) in zip(
            self.registration.keys, self.registration.entries, strict=True
        ):
            self._keys.setdefault(service, {})[key] = url
            self._apply(service)

    async def close(self) -> None:
        """Deregister (revoke the lease), stop following, close the connection."""
        await self.registration.close()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.client.close()

    async def resolve(self, service: str) -> InstanceSet:
        found = self.instances(service)
        if self._synced is not None and not self._synced.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._synced.wait(), self.config.timeout)
        return found

    async def _follow(self) -> None:
        prefix = self.config.key_prefix
        while True:
            events = self.client.watch_prefix(prefix, on_live=self._live)
            try:
                async for event in events:
                    service, _, _ = event.key[len(prefix) :].partition("/")
                    if not service:
                        continue
                    urls = self._keys.setdefault(service, {})
                    url = None if event.value is None else self._url(event.key, event.value)
                    if url is None:
                        urls.pop(event.key, None)
                    else:
                        urls[event.key] = url
                    self._apply(service)
            except Exception:
                # watch_prefix handles etcd's failures itself; anything else is a bug,
                # logged, and must not leave the sets frozen without saying so.
                logger.exception("etcd discovery: following %s failed; starting again", prefix)
                self._keys.clear()
                await asyncio.sleep(self.config.timeout)
            finally:
                await events.aclose()

    def _url(self, key: str, value: str) -> str | None:
        """The instance URL ``key`` holds, or None (logged) when it is none.

        Registration writes checked URLs, but anyone may write under the
        prefix (etcdctl): a value without a scheme would make every call sent
        to it fail with an error naming no key.
        """
        url = value.strip().rstrip("/")
        problem = (
            f"is longer than {_MAX_URL} characters"
            if len(url) > _MAX_URL
            else url_problem(url, ("http", "https"))
        )
        if problem is None:
            return url
        shown = mask_url(url if len(url) <= 60 else url[:57] + "...")
        if "://" not in shown and "@" in shown:  # no scheme: mask_url cannot find a password
            shown = "***@" + shown.rpartition("@")[2]
        logger.warning(
            "etcd discovery: %s holds %r, which %s; not an instance (write its base URL, "
            "e.g. http://10.0.0.5:8080)",
            ascii(key[:200]),
            shown,
            problem,
        )
        return None

    def _live(self) -> None:
        """The watch is established: every set is current."""
        for instances in self._sets.values():
            instances.mark_fresh()
        if self._synced is not None:
            self._synced.set()

    def _reachability(self, up: bool) -> None:
        if not up:
            client = self.client
            for instances in self._sets.values():
                instances.mark_stale(client.problem or "unreachable", client.down_since)

    def _apply(self, service: str) -> None:
        instances = self.instances(service)
        urls = self._keys.get(service, {})
        instances.replace(Instance(url, key) for key, url in urls.items())

    def _track(self, instances: InstanceSet) -> None:
        if self._keys.get(instances.service):
            self._apply(instances.service)
        elif self._synced is not None and self._synced.is_set():
            instances.mark_fresh()  # read already: the service has no instance
        if self.client.down_since is not None:
            instances.mark_stale(self.client.problem or "unreachable", self.client.down_since)

    async def health_check(self) -> HealthStatus:
        """As every backend's; when not started, etcd is asked once (the prefix read)."""
        if self._task is None:
            try:
                _, values = await self.client.get_prefix(self.config.key_prefix)
            except DiscoveryError:
                pass  # client.problem says why; the report below carries it
            else:
                self._keys.clear()
                for key, value in values.items():
                    service = key[len(self.config.key_prefix) :].partition("/")[0]
                    url = self._url(key, value)
                    if service and url is not None:
                        self._keys.setdefault(service, {})[key] = url
                for service in self._keys:
                    self._apply(service)
        return await super().health_check()

    def _problem(self) -> str | None:
        return self.client.problem

    def _target(self) -> str:
        return ", ".join(mask_url(e) for e in self.client.endpoints)
