"""A :class:`~ads_infra.domain.ports.CopyWriter` over the AI provider service."""

from __future__ import annotations

from typing import NoReturn

from ads_infra.core.errors import UnusableCompletionError
from ads_infra.domain.ports import AdCopy, CopyBrief
from ads_infra.external_services import AIProviderService, AIResponse

__all__ = ["AICopyWriter"]

COPY_INSTRUCTIONS = (
    "You write search ad copy. Answer with exactly two lines: a headline of at most "
    "{headline} characters, then a description of at most {description} characters."
)
# A reply cut off at the token limit is asked for once more with this many times
# the tokens: two short lines never need many, so a cut-off means the model spent
# them elsewhere (a reasoning model's hidden reasoning counts against the limit).
RETRY_TOKEN_FACTOR = 4


class AICopyWriter:
    """A :class:`~ads_infra.domain.ports.CopyWriter` over an AI provider (offline or OpenAI).

    Never hands out copy the provider did not finish: a reply cut off at the
    token limit is asked for again once with more tokens; a reply still cut
    off, refused, filtered or empty raises
    :class:`~ads_infra.errors.UnusableCompletionError`, so nothing is stored.
    """

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
        system = COPY_INSTRUCTIONS.format(
            headline=brief.max_headline_length, description=brief.max_description_length
        )
        response = await self.ai.generate_content(self.provider, prompt, self.model, system=system)
        if response.truncated:
            more = self.ai.config.max_tokens * RETRY_TOKEN_FACTOR
            response = await self.ai.generate_content(
                self.provider, prompt, self.model, system=system, max_tokens=more
            )
        lines = [line.strip() for line in response.content.splitlines() if line.strip()]
        if response.usable and len(lines) < 2:
            _refuse(response, "the reply has one line, not a headline and a description")
        problem = response.problem()
        if problem is not None:
            _refuse(response, problem)
        headline, description = lines[0], " ".join(lines[1:])
        return AdCopy(
            headline=headline,
            description=description,
            provider=response.provider,
            model=response.model,
        )


def _refuse(response: AIResponse, problem: str) -> NoReturn:
    service = f"ai.{response.provider}"
    raise UnusableCompletionError(
        f"{service}: no ad copy from model {response.model!r}: {problem}; nothing was "
        "stored. Try again, rephrase the brief, or raise services.ai.max_tokens",
        service=service,
        finish_reason=response.finish_reason,
    )
