"""Adapters from the domain's ports to the infrastructure: AI copy writer, creative store.

The domain declares what it needs (:mod:`ads_infra.domain.ports`); these
classes provide it over :class:`AIProviderService` and
:class:`FileStorageManager`, so domain services never import either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ads_infra.domain.ports import AdCopy, CopyBrief

if TYPE_CHECKING:
    from ads_infra.external_services import AIProviderService
    from ads_infra.storage import FileStorageManager

__all__ = ["AICopyWriter", "StorageCreativeStore"]

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
