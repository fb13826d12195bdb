"""The live instances of one service, as a discovery backend last saw them.

An :class:`InstanceSet` is shared between the backend that fills it (a watch,
a DNS refresh) and the callers that read it (the external services'
balancer): the backend replaces its contents, and bumps ``version`` only when
they change, so a reader knows in one integer comparison whether to look again.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable

__all__ = ["Instance", "InstanceSet"]


@dataclasses.dataclass(frozen=True, slots=True, order=True)
class Instance:
    """One instance: its base URL (no trailing slash) and the backend's id for it."""

    url: str
    key: str = ""


class InstanceSet:
    """The instances of ``service``; ``stale_since`` is set while the backend is away."""

    __slots__ = ("instances", "problem", "resolved_at", "service", "stale_since", "version")

    def __init__(self, service: str) -> None:
        self.service = service
        self.instances: tuple[Instance, ...] = ()
        self.version = 0
        # Wall-clock time of the last successful resolution (None: never resolved).
        self.resolved_at: float | None = None
        # Wall-clock time since which the backend could not be asked (None: it can).
        self.stale_since: float | None = None
        self.problem: str | None = None

    def replace(self, instances: Iterable[Instance]) -> None:
        """Hold ``instances`` from now on (sorted, so the same set compares equal)."""
        fresh = tuple(sorted({i.url: i for i in instances}.values()))
        self.resolved_at = time.time()
        self.stale_since = None
        self.problem = None
        if fresh != self.instances:
            self.instances = fresh
            self.version += 1

    def mark_stale(self, problem: str, since: float | None = None) -> None:
        """The backend is away: keep the instances, remember since when and why."""
        if self.stale_since is None:
            self.stale_since = since if since is not None else time.time()
        self.problem = problem

    def mark_fresh(self) -> None:
        """The backend answers again (its contents are current)."""
        self.stale_since = None
        self.problem = None
        self.resolved_at = time.time()

    @property
    def urls(self) -> list[str]:
        return [i.url for i in self.instances]

    def why_empty(self) -> str:
        """Why there is no instance, for an error message."""
        if self.resolved_at is None:
            base = "it has not been resolved yet"
            if self.problem:
                base += f" (the discovery backend is away: {self.problem})"
            return base
        if self.stale_since is not None:
            return (
                f"none was known when the discovery backend went away "
                f"({self.problem}; since {_clock(self.stale_since)})"
            )
        return "no instance is registered or alive"

    def describe(self) -> dict[str, object]:
        return {
            "service": self.service,
            "instances": self.urls,
            "stale_since": self.stale_since,
            "problem": self.problem,
        }

    def __repr__(self) -> str:
        return f"InstanceSet({self.service!r}, {self.urls}, version={self.version})"


def _clock(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
