"""The health report every manager returns from ``health_check()``.

One shape for all components so that ``ads-infra health`` and a host app's
``/health`` endpoint can print and serialize them alike. A health check never
raises: an unreachable backend is a report with ``healthy=False`` and a
``detail`` that says why, holding no secret.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class HealthStatus:
    """The state of one component's backend at the time of the check."""

    component: str  # "database", "cache", "storage", "services.ai", ...
    backend: str  # "postgresql", "sqlite", "redis", "local", "s3", ...
    healthy: bool
    latency_ms: float | None = None
    detail: str = ""
    target: str = ""  # where it points, secrets masked (a URL, a path, a bucket)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
