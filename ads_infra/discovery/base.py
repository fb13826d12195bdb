"""What every discovery backend offers: instance sets per service, lifecycle, health.

The external services ask :meth:`ServiceDiscovery.service_for` once per
upstream at registration: ``None`` (always, with ``static``) leaves that
upstream on its own base URL and its request path untouched; a name hands the
upstream the :class:`~ads_infra.discovery.instances.InstanceSet` the backend
keeps current in the background, so a call never waits for a lookup.
"""

from __future__ import annotations

import abc
import time
from typing import Self

from ads_infra.core.health import HealthStatus
from ads_infra.core.settings import DiscoveryConfig
from ads_infra.discovery.instances import InstanceSet, _clock

__all__ = ["ServiceDiscovery", "StaticDiscovery"]


class ServiceDiscovery(abc.ABC):
    """A backend's view of the services: one :class:`InstanceSet` per service name."""

    backend: str = ""

    def __init__(self, config: DiscoveryConfig | None = None) -> None:
        self.config = config or DiscoveryConfig()
        self._resolve = self.config.resolved
        self._sets: dict[str, InstanceSet] = {}

    def service_for(self, upstream: str) -> str | None:
        """The discovered service behind ``upstream`` (``discovery.resolve``), or None."""
        return self._resolve.get(upstream)

    def instances(self, service: str) -> InstanceSet:
        """The live set of ``service``, kept current by the backend from now on."""
        found = self._sets.get(service)
        if found is None:
            found = self._sets[service] = InstanceSet(service)
            self._track(found)
        return found

    def snapshot(self) -> dict[str, InstanceSet]:
        """Every set this process knows of, by service name."""
        return dict(sorted(self._sets.items()))

    async def resolve(self, service: str) -> InstanceSet:
        """The set of ``service``, waiting (bounded) for its first resolution."""
        return self.instances(service)

    def _track(self, instances: InstanceSet) -> None:  # noqa: B027  (optional hook)
        """Start keeping ``instances`` current (the backend's own work)."""

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def health_check(self) -> HealthStatus:
        """Which backend, how many instances per service, and whether they are current."""
        started = time.perf_counter()
        sets = self.snapshot()
        counts = ", ".join(f"{name}: {len(s.instances)}" for name, s in sets.items())
        stale = [s for s in sets.values() if s.stale_since is not None]
        problem = self._problem()
        if stale or problem:
            since = min((s.stale_since for s in stale if s.stale_since), default=None)
            detail = f"{self.backend} unreachable ({problem or stale[0].problem})"
            if since is not None:
                detail += f": serving last known instances since {_clock(since)}"
            healthy = False
        else:
            detail, healthy = f"{self.backend}: resolving", True
        if counts:
            detail += f"; instances: {counts}"
        return HealthStatus(
            component="discovery",
            backend=self.backend,
            healthy=healthy,
            latency_ms=(time.perf_counter() - started) * 1000,
            detail=detail,
            target=self._target(),
        )

    def _problem(self) -> str | None:
        """Why the backend cannot be asked right now, or None."""
        return None

    def _target(self) -> str:
        return ""


class StaticDiscovery(ServiceDiscovery):
    """``discovery.backend: static``: every upstream keeps its configured base URL."""

    backend = "static"

    def service_for(self, upstream: str) -> str | None:
        return None

    async def start(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to release."""

    async def health_check(self) -> HealthStatus:
        return HealthStatus(
            component="discovery",
            backend="static",
            healthy=True,
            latency_ms=0.0,
            detail="static: each service calls its configured base URL",
        )
