"""ManagedService: what the AI, analytics and notification services share about the manager.

Each of them sends through an :class:`ExternalServiceManager` under one or
more upstream names (``ai.openai``, ``analytics``, ``notifications.slack``).
A constructor only records and validates those upstreams, with no effect on
the manager, so the container decides what to compose; :meth:`start`
registers them with the manager. The lifecycle is the manager's: ``async
start()``, one ``async close()``, and ``async with``.

A service used before :meth:`start` (the seed's ``AIProviderService(manager)``
then ``register_provider`` and ``generate_content``, or a provider a test
swaps in) registers its upstreams on that first use, so standalone use needs
no extra call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import ClassVar, Protocol, Self

from ads_infra.external_services.config import ExternalServiceConfig, ServiceType
from ads_infra.external_services.manager import ExternalServiceManager

__all__ = ["ManagedService", "ServiceLimits"]


class ServiceLimits(Protocol):
    """The reloadable limits a service's section sets on each of its upstreams."""

    @property
    def rate_limit(self) -> int: ...
    @property
    def max_retries(self) -> int: ...
    @property
    def failure_threshold(self) -> int: ...
    @property
    def recovery_timeout(self) -> float: ...


class ManagedService:
    """Base of a service built on the manager: its upstreams, registered by start()."""

    # A service that buffers (analytics) sets this, so that a manager closed on
    # its own still flushes it before closing the session.
    closes_with_manager: ClassVar[bool] = False

    def __init__(self, manager: ExternalServiceManager) -> None:
        self.manager = manager
        self._upstreams: dict[str, tuple[ExternalServiceConfig, tuple[str, ...]]] = {}
        self._offline: dict[str, tuple[ServiceType, str]] = {}
        self._registered = False

    @property
    def started(self) -> bool:
        """True once the upstreams are registered with the manager."""
        return self._registered

    async def start(self) -> None:
        """Register this service's upstreams with the manager. No I/O; idempotent."""
        self._register()

    async def close(self) -> None:
        """Nothing of the service's own to release: the manager owns the session.

        The upstreams stay registered, so status and health still report them.
        """

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- for subclasses ---------------------------------------------------------

    def _add_upstream(
        self, name: str, config: ExternalServiceConfig, secrets: tuple[str, ...] = ()
    ) -> None:
        """Add (or replace) upstream ``name``: registered now if started, else by start()."""
        self._offline.pop(name, None)
        self._upstreams[name] = (config, secrets)
        if self._registered:
            self.manager.register_service(name, config, secrets=secrets)

    def _reconfigure_upstream(self, name: str, config: ExternalServiceConfig) -> None:
        """Give upstream ``name`` a new config, keeping its breaker state and counts."""
        secrets = self._upstreams[name][1]
        self._upstreams[name] = (config, secrets)
        if self._registered and name in self.manager.services:
            self.manager.reconfigure_service(name, config)

    def _limits_applier(
        self, names: Iterable[str], section: ServiceLimits, then: Callable[[], None]
    ) -> Callable[[], None]:
        """What gives upstreams ``names`` the section's limits, then runs ``then``.

        The new configs are built (and validated) now; applying them only assigns.
        """
        updated = {
            name: dataclasses.replace(
                self._upstreams[name][0],
                rate_limit=section.rate_limit,
                max_retries=section.max_retries,
                failure_threshold=section.failure_threshold,
                recovery_timeout=section.recovery_timeout,
            )
            for name in names
            if name in self._upstreams
        }

        def apply() -> None:
            then()
            for name, config in updated.items():
                self._reconfigure_upstream(name, config)

        return apply

    def _add_offline(self, name: str, service_type: ServiceType, detail: str) -> None:
        """Add an in-process upstream (no HTTP), reported as always healthy."""
        self._upstreams.pop(name, None)
        self._offline[name] = (service_type, detail)
        if self._registered:
            self.manager.register_offline(name, service_type, detail)

    def _register(self) -> None:
        """Register every upstream with the manager, once; called by start() and on first use."""
        if self._registered:
            return
        self._registered = True
        for name, (service_type, detail) in self._offline.items():
            self.manager.register_offline(name, service_type, detail)
        for name, (config, secrets) in self._upstreams.items():
            self.manager.register_service(name, config, secrets=secrets)
        if self.closes_with_manager:
            self.manager.attach(self)
