"""Adapters from the domain's ports to the infrastructure: copy, creatives, transactions.

The domain declares what it needs (:mod:`ads_infra.domain.ports`); these
classes provide it over :class:`AIProviderService`, :class:`FileStorageManager`
and :class:`RepositoryFactory`, so domain services never import any of them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from ads_infra.domain.ports import AdCopy, CopyBrief, TransactionRepositories

if TYPE_CHECKING:
    from ads_infra.external_services import AIProviderService
    from ads_infra.repositories import RepositoryFactory
    from ads_infra.storage import FileStorageManager

__all__ = ["AICopyWriter", "RepositoryTransactions", "StorageCreativeStore"]

T = TypeVar("T")

COPY_INSTRUCTIONS = (
    "You write search ad copy. Answer with exactly two lines: a headline of at most "
    "{headline} characters, then a description of at most {description} characters."
)


class AICopyWriter:
    """A :class:`~ads_infra.domain.ports.CopyWriter` over an AI provider (offline or OpenAI)."""

    def __init__(
        self, ai: AIProviderService, *, provider: str | None = None, model: str | None = None
    ) -> None:
        self.ai = ai
        self.provider = provider
        self.model = model

    async def write_copy(self, brief: CopyBrief) -> AdCopy:
        prompt = f"Create an ad for {brief.product}"
        if brief.audience:
            prompt += f" aimed at {brief.audience}"
        if brief.keywords:
            prompt += f"; mention {', '.join(brief.keywords)}"
        prompt += f"; tone: {brief.tone}."
        response = await self.ai.generate_content(
            self.provider,
            prompt,
            self.model,
            system=COPY_INSTRUCTIONS.format(
                headline=brief.max_headline_length, description=brief.max_description_length
            ),
        )
        lines = [line.strip() for line in response.content.splitlines() if line.strip()]
        headline = lines[0] if lines else brief.product
        description = " ".join(lines[1:]) if len(lines) > 1 else ""
        return AdCopy(
            headline=headline,
            description=description,
            provider=response.provider,
            model=response.model,
        )


class StorageCreativeStore:
    """A :class:`~ads_infra.domain.ports.CreativeStore` over the file storage manager."""

    def __init__(self, storage: FileStorageManager) -> None:
        self.storage = storage

    async def save_creative(self, content: bytes, filename: str) -> str:
        return await self.storage.save_file(content, filename, metadata={"kind": "creative"})

    async def delete_creative(self, key: str) -> None:
        await self.storage.delete_file(key)


class RepositoryTransactions:
    """A :class:`~ads_infra.domain.ports.TransactionRunner` over :meth:`RepositoryFactory.run`.

    Each call is one unit of work, retried as a whole on transient errors; the
    cache entries its writes affect are dropped after the commit.
    """

    def __init__(self, factory: RepositoryFactory) -> None:
        self.factory = factory

    async def run(self, fn: Callable[[TransactionRepositories], Awaitable[T]]) -> T:
        return await self.factory.run(fn)
