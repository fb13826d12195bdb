"""What the domain services need from the outside world, as Protocols.

The domain declares these; the infrastructure provides adapters
(:mod:`ads_infra.adapters`) over the AI provider and file storage, so the
domain services run with any implementation and never import the
infrastructure.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

__all__ = ["AdCopy", "CopyBrief", "CopyWriter", "CreativeStore"]


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
