"""A service plugin: component health reported to a status page over HTTP.

``services.plugins: {status_page: {url: https://status.example.com}}`` runs
it; ``container.services.plugins()["status_page"]`` is the instance. It sends
through the container's :class:`~ads_infra.external_services.ExternalServiceManager`
under the upstream name ``status_page``, so its calls are paced, retried and
guarded by a circuit breaker, and show in ``ads-infra health``, the status
and the metrics like the built-in services' calls.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any, ClassVar
from urllib.parse import quote

from ads_infra.core.errors import ConfigurationError
from ads_infra.core.health import HealthStatus
from ads_infra.core.redact import Secret, mask_url
from ads_infra.core.section import ConfigSection, url_problem
from ads_infra.external_services import (
    ExternalServiceConfig,
    ExternalServiceManager,
    ServiceType,
)
from ads_infra.external_services.service import ManagedService

__all__ = ["StatusPageOptions", "StatusPageService"]


@dataclasses.dataclass(frozen=True, repr=False)
class StatusPageOptions(ConfigSection):
    """``services.plugins.status_page``: where the status page is and how to call it."""

    _section: ClassVar[str] = "services.plugins.status_page"

    url: str = ""
    api_key: Secret | None = None
    rate_limit: int = dataclasses.field(default=5, metadata={"min": 1})
    timeout: float = dataclasses.field(default=5.0, metadata={"min": 0})
    max_retries: int = dataclasses.field(default=2, metadata={"min": 0})

    def validate(self) -> None:
        if not self.url:
            raise ConfigurationError(
                "is required: the status page's root URL, e.g. https://status.example.com",
                key="url",
            )
        problem = url_problem(self.url, ("http", "https"))
        if problem:
            raise ConfigurationError(f"{mask_url(self.url)!r} {problem}", key="url")


class StatusPageService(ManagedService):
    """``report(component, healthy)``: one PUT per component to ``{url}/v1/components/{name}``."""

    options_type: ClassVar[type[ConfigSection]] = StatusPageOptions
    upstream: ClassVar[str] = "status_page"

    def __init__(self, manager: ExternalServiceManager, options: StatusPageOptions) -> None:
        super().__init__(manager)
        self.options = options
        self._add_upstream(
            self.upstream,
            ExternalServiceConfig(
                service_type=ServiceType.CUSTOM,
                base_url=options.url,
                api_key=options.api_key,
                rate_limit=options.rate_limit,
                timeout=options.timeout,
                max_retries=options.max_retries,
                health_path="/health",
            ),
        )

    async def report(self, component: str, healthy: bool, detail: str = "") -> Any:
        """Set one component's state; PUT is idempotent, so a failed attempt is retried."""
        self._register()  # used before start(): register on first use, as built-ins do
        body = {"status": "operational" if healthy else "major_outage", "detail": detail}
        path = f"/v1/components/{quote(component, safe='')}"
        return await self.manager.request_json(self.upstream, "PUT", path, json=body)

    async def report_health(self, reports: Iterable[HealthStatus]) -> int:
        """Report every health check (``ads-infra health``'s list); returns how many."""
        sent = 0
        for report in reports:
            await self.report(report.component, report.healthy, report.detail or "")
            sent += 1
        return sent
