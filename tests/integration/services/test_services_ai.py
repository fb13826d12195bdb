"""The seed's AI snippet, and the OpenAI-compatible protocol, against a real local server."""

from __future__ import annotations

import pytest

from ads_infra.errors import UpstreamError
from ads_infra.external_services import (
    AIProviderService,
    ExternalServiceConfig,
    ExternalServiceManager,
    ServiceType,
    TokenUsage,
)
from tests.integration.services.conftest import Reply, Upstream


async def test_seed_snippet_runs_as_written(upstream: Upstream) -> None:
    # The seed's "External Services" usage, with base_url at the local server.
    service_manager = ExternalServiceManager()

    ai_config = ExternalServiceConfig(
        service_type=ServiceType.AI_PROVIDER,
        base_url=upstream.url,
        api_key=upstream.api_key,
        rate_limit=100,
    )

    ai_service = AIProviderService(service_manager)
    await ai_service.register_provider("openai", ai_config)

    response = await ai_service.generate_content("openai", "Create an ad", "gpt-4")
    await service_manager.close()

    assert response.content == "Ad copy for: Create an ad"
    assert str(response) == response.content
    assert response.model == "gpt-4"
    assert response.usage == TokenUsage(prompt_tokens=3, completion_tokens=6, total_tokens=9)
    assert response.finish_reason == "stop"
    sent = upstream.chat[0]
    assert sent["model"] == "gpt-4"
    assert sent["messages"] == [{"role": "user", "content": "Create an ad"}]
    assert sent["max_tokens"] == 256 and sent["temperature"] == 0.7


async def test_generation_parameters_and_v1_base_url(
    upstream: Upstream, manager: ExternalServiceManager
) -> None:
    ai = AIProviderService(manager)
    # Many compatible servers document their base URL with /v1 already in it.
    await ai.register_provider(
        "local", ExternalServiceConfig(base_url=f"{upstream.url}/v1", api_key=upstream.api_key)
    )
    await ai.generate_content(
        "local", "Shoes", "m1", max_tokens=12, temperature=0.1, system="Be brief."
    )
    assert upstream.chat[0] == {
        "model": "m1",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Shoes"},
        ],
        "max_tokens": 12,
        "temperature": 0.1,
    }


async def test_error_object_raises_upstream_error(
    upstream: Upstream, manager: ExternalServiceManager
) -> None:
    ai = AIProviderService(manager)
    await ai.register_provider(
        "openai", ExternalServiceConfig(base_url=upstream.url, api_key=upstream.api_key)
    )
    upstream.script(
        "chat",
        Reply(400, {"error": {"message": "max_tokens is too large", "type": "invalid_request"}}),
        Reply(200, {"error": {"message": "model overloaded"}}),
        Reply(200, {"choices": []}),
    )
    with pytest.raises(UpstreamError, match="max_tokens is too large") as bad_request:
        await ai.generate_content("openai", "Create an ad", "gpt-4")
    assert bad_request.value.status == 400
    with pytest.raises(UpstreamError, match="model overloaded"):
        await ai.generate_content("openai", "Create an ad", "gpt-4")
    with pytest.raises(UpstreamError, match=r"no choices\[0\]\.message\.content"):
        await ai.generate_content("openai", "Create an ad", "gpt-4")
    # A 400 is the caller's fault: sent once, and the breaker stays closed.
    assert upstream.count("chat") == 3
    assert manager.get_service_status("ai.openai")["state"] == "closed"


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (
            {"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": "n/a"}},
            r"usage\.prompt_tokens is a str that is not a whole number",
        ),
        (
            {"choices": [{"message": {"content": [{"type": "text", "text": "hi"}]}}]},
            r"choices\[0\]\.message\.content is a list, not a string",
        ),
        ({"error": {"code": "insufficient_quota"}}, "answered an error: insufficient_quota"),
        (b"<html>gateway</html>", "not a JSON object"),
    ],
)
async def test_malformed_completion_is_a_clear_upstream_error(
    upstream: Upstream, manager: ExternalServiceManager, reply: object, message: str
) -> None:
    ai = AIProviderService(manager)
    await ai.register_provider(
        "openai", ExternalServiceConfig(base_url=upstream.url, api_key=upstream.api_key)
    )
    upstream.script("chat", Reply(200, reply))
    with pytest.raises(UpstreamError, match=f"ai.openai: .*{message}"):
        await ai.generate_content("openai", "Create an ad", "gpt-4")


async def test_wrong_api_key_is_a_clear_401(
    upstream: Upstream, manager: ExternalServiceManager
) -> None:
    ai = AIProviderService(manager)
    await ai.register_provider(
        "openai", ExternalServiceConfig(base_url=upstream.url, api_key="sk-wrong-0123456789")
    )
    with pytest.raises(UpstreamError, match=r"answered 401.*check the service's API key") as err:
        await ai.generate_content("openai", "Create an ad", "gpt-4")
    assert "sk-wrong-0123456789" not in str(err.value)
    assert upstream.count("chat") == 1  # a 401 is not retried


async def test_offline_provider_needs_no_network(manager: ExternalServiceManager) -> None:
    ai = AIProviderService(manager)
    first = await ai.generate_content("offline", "Create an ad for running shoes", "gpt-4")
    again = await ai.generate_content("offline", "Create an ad for running shoes", "gpt-4")
    assert first == again
    assert "Running Shoes" in first.content
    assert manager._session is None  # no session was ever opened
    (report,) = await manager.health_check()
    assert report.component == "services.ai.offline" and report.healthy
