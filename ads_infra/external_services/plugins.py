"""PluginServices: the services other packages provide, built on the one manager.

A service plugin (entry point group ``ads_infra.services``, docs/plugins.md)
is a :class:`~ads_infra.external_services.service.ManagedService` subclass.
``services.plugins`` in the configuration names the ones to run, each with its
own settings; this class builds each as ``cls(manager)`` or ``cls(manager,
options)`` (when it declares an ``options_type``), starts them after the
manager and closes them before it, like the built-in services. Their
upstreams are registered with the manager, so they get the same pacing,
retries, breaker, status, health and metrics.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, Self

from ads_infra.core import plugins
from ads_infra.core.loader import environment_settings
from ads_infra.external_services.manager import ExternalServiceManager
from ads_infra.external_services.service import ManagedService

__all__ = ["PluginServices", "build_service"]


def build_service(
    name: str, manager: ExternalServiceManager, options: Mapping[str, Any] | None = None
) -> ManagedService:
    """The installed service plugin ``name``, built on ``manager`` with ``options``."""
    cls: type[ManagedService] = plugins.load_class(plugins.SERVICES_GROUP, name, ManagedService)
    return plugins.instantiate(
        cls,
        plugins.SERVICES_GROUP,
        name,
        manager,
        options=options or {},
        key=f"services.plugins.{name}",
    )


class PluginServices(Mapping[str, ManagedService]):
    """The configured service plugins by name (``container.services.plugins()["weather"]``).

    ``config`` maps each plugin's name to its validated settings (the
    ``services.plugins`` section); the default reads it from the environment's
    settings, as every manager built without arguments does.
    """

    def __init__(
        self,
        manager: ExternalServiceManager,
        config: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.manager = manager
        chosen = environment_settings().services.plugins if config is None else config
        self._services = {
            name: build_service(name, manager, options) for name, options in chosen.items()
        }

    def __getitem__(self, name: str) -> ManagedService:
        return self._services[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._services)

    def __len__(self) -> int:
        return len(self._services)

    def __repr__(self) -> str:
        return f"PluginServices({', '.join(self._services) or 'none'})"

    async def start(self) -> None:
        """Start each service (register its upstreams with the manager), in order.

        If one fails, those already started are closed before the error is
        raised: the container closes only what started, and this did not.
        """
        started: list[ManagedService] = []
        try:
            for service in self._services.values():
                await service.start()
                started.append(service)
        except BaseException:
            for service in reversed(started):
                with contextlib.suppress(Exception):  # the start's error is the one to see
                    await service.close()
            raise

    async def close(self) -> None:
        """Close each service, last started first; every one is closed even if one fails."""
        errors: list[Exception] = []
        for service in reversed(self._services.values()):
            try:
                await service.close()
            except Exception as exc:  # the others still get closed; the first error is raised
                errors.append(exc)
        if errors:
            raise errors[0]

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
