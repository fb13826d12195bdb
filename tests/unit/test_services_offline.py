"""The offline AI provider and the AI service's checks (no network)."""

from __future__ import annotations

import pytest

from ads_infra.errors import ConfigurationError
from ads_infra.external_services import (
    AIProviderService,
    ExternalServiceConfig,
    ExternalServiceManager,
    offline_ad_copy,
)


def test_offline_copy_is_deterministic_and_uses_the_prompt() -> None:
    one = offline_ad_copy("Create an ad for organic coffee beans", "gpt-4")
    assert one == offline_ad_copy("Create an ad for organic coffee beans", "gpt-4")
    assert "Organic Coffee Beans" in one
    assert len(one.splitlines()) == 3
    prompts = [f"Create an ad for product {i}" for i in range(20)]
    assert len({offline_ad_copy(p, "gpt-4") for p in prompts}) == 20


async def test_offline_generate_content() -> None:
    ai = AIProviderService(ExternalServiceManager())
    response = await ai.generate_content("offline", "Create an ad", "gpt-4")
    assert response.provider == "offline" and response.model == "gpt-4"
    assert response.usage.total_tokens == (
        response.usage.prompt_tokens + response.usage.completion_tokens
    )
    assert response.to_dict()["content"] == str(response)


async def test_unknown_provider_and_reserved_name() -> None:
    ai = AIProviderService(ExternalServiceManager())
    with pytest.raises(ConfigurationError, match=r"'openai' is not registered.*register_provider"):
        await ai.generate_content("openai", "Create an ad", "gpt-4")
    with pytest.raises(ConfigurationError, match="reserved"):
        await ai.register_provider("offline", ExternalServiceConfig(base_url="http://x"))
    with pytest.raises(ValueError, match="non-empty prompt"):
        await ai.generate_content("offline", "  ", "gpt-4")
