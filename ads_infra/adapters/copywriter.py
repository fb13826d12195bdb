"""A :class:`~ads_infra.domain.ports.CopyWriter` over the AI provider service."""

from __future__ import annotations

from ads_infra.domain.ports import AdCopy, CopyBrief
from ads_infra.external_services import AIProviderService

__all__ = ["AICopyWriter"]

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
