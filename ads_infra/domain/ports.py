"""What the domain services need from the outside world, as Protocols.

The domain declares these; the infrastructure provides adapters
(:mod:`ads_infra.adapters`) over the AI provider, file storage and units of
work, so the domain services run with any implementation and never import
the infrastructure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from ads_infra.domain.repositories import (
    AdsRepository,
    CampaignRepository,
    OptimizationRepository,
)

__all__ = [
    "AdCopy",
    "CopyBrief",
    "CopyWriter",
    "CreativeStore",
    "TransactionRepositories",
    "TransactionRunner",
]

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, kw_only=True)
class CopyBrief:
    """What an ad is about: the input of copy generation."""

    product: str
    audience: str = ""
    tone: str = "friendly"
    keywords: tuple[str, ...] = ()
    max_headline_length: int = 30
    max_description_length: int = 90


@dataclasses.dataclass(frozen=True, kw_only=True)
class AdCopy:
    """Generated ad copy and where it came from."""

    headline: str
    description: str
    provider: str = ""
    model: str = ""


class CopyWriter(Protocol):
    """Writes ad copy from a brief (an AI provider behind it, or an offline writer)."""

    async def write_copy(self, brief: CopyBrief) -> AdCopy: ...


class CreativeStore(Protocol):
    """Keeps creative files (images, videos) and names them by a storage key."""

    async def save_creative(self, content: bytes, filename: str) -> str:
        """Store ``content``; return the storage key."""
        ...

    async def delete_creative(self, key: str) -> None: ...


class TransactionRepositories(Protocol):
    """The repositories of one transaction: what is written through them commits together.

    Read-only members, so an implementation may expose the concrete repositories.
    """

    @property
    def campaigns(self) -> CampaignRepository: ...

    @property
    def ads(self) -> AdsRepository: ...

    @property
    def optimization(self) -> OptimizationRepository: ...


class TransactionRunner(Protocol):
    """Runs ``fn`` in one transaction: all of its writes commit, or none do.

    ``fn`` may be run again from the start (a retried transient failure), so it
    must not have effects outside the repositories it is given.
    """

    async def run(self, fn: Callable[[TransactionRepositories], Awaitable[T]]) -> T: ...
