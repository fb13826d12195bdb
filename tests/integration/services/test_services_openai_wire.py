"""Our AI provider on the wire against the official openai SDK, on one local server.

The same scenario runs through ``openai.AsyncOpenAI`` and through
AIProviderService against the conftest's OpenAI-compatible server; the tests
compare what arrived (headers, body fields, retry timing). Test names say
what the SDK does. Waits are scripted short (``retry-after-ms: 300``): what is
checked is that a retry never comes before the server asked, not speed.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from ads_infra.config import AIProviderConfig
from ads_infra.errors import RateLimitedError, UpstreamError
from ads_infra.external_services import (
    AIProviderService,
    ExternalServiceConfig,
    ExternalServiceManager,
)
from ads_infra.external_services.identity import VERSION
from tests.integration.services.conftest import Reply, Upstream

CHAT_OK: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 0,
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Run Further\\nTrail shoes."},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
}


@pytest.fixture
async def sdk(upstream: Upstream) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=f"{upstream.url}/v1", api_key=upstream.api_key)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def ai(upstream: Upstream, manager: ExternalServiceManager) -> AIProviderService:
    service = AIProviderService(manager)
    await service.register_provider(
        "openai",
        ExternalServiceConfig(base_url=f"{upstream.url}/v1", api_key=upstream.api_key),
    )
    return service


async def run_sdk(sdk: openai.AsyncOpenAI, **options: Any) -> Any:
    return await sdk.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Create an ad"}],
        **{"max_completion_tokens": 256, "temperature": 0.7, **options},
    )


def gaps(upstream: Upstream) -> list[float]:
    times = upstream.times("chat")
    return [later - earlier for earlier, later in itertools.pairwise(times)]


@pytest.mark.parametrize("parameter", ["max_completion_tokens", "max_tokens"])
async def test_the_same_request_agrees_on_every_documented_field(
    upstream: Upstream, sdk: openai.AsyncOpenAI, manager: ExternalServiceManager, parameter: str
) -> None:
    ai = AIProviderService(manager, AIProviderConfig(limit_parameter=parameter))
    await ai.register_provider(
        "openai", ExternalServiceConfig(base_url=f"{upstream.url}/v1", api_key=upstream.api_key)
    )
    await sdk.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Create an ad"},
        ],
        temperature=0.7,
        **{parameter: 64},  # type: ignore[arg-type]
    )
    await ai.generate_content(
        "openai", "Create an ad", "gpt-4o-mini", max_tokens=64, system="Be brief."
    )
    (their_hit, my_hit), (theirs, mine) = upstream.hits["chat"], upstream.chat

    assert mine == theirs  # model, messages, the token limit, temperature: every field
    assert their_hit.method == my_hit.method == "POST"
    for header in ("Authorization", "Content-Type", "Accept"):
        assert my_hit.headers[header] == their_hit.headers[header], header
    assert my_hit.headers["Accept"] == "application/json"
    assert my_hit.headers["User-Agent"] == f"ads-infra/{VERSION}"
    assert their_hit.headers["User-Agent"].startswith("AsyncOpenAI/Python")


async def test_max_completion_tokens_is_sent_for_reasoning_models_as_the_sdk_documents(
    upstream: Upstream, ai: AIProviderService
) -> None:
    await ai.generate_content("openai", "Create an ad", "o3-mini", max_tokens=64)
    await ai.generate_content("openai", "Create an ad", "gpt-5-nano", max_tokens=64)
    await ai.generate_content("openai", "Create an ad", "llama3", max_tokens=64)
    o3, gpt5, llama = upstream.chat
    for body in (o3, gpt5):
        assert body["max_completion_tokens"] == 64 and "max_tokens" not in body
        assert "temperature" not in body  # reasoning models refuse any but their default
    assert llama["max_tokens"] == 64 and llama["temperature"] == 0.7


async def test_retry_after_ms_is_waited_for_as_the_sdk_waits(
    upstream: Upstream, sdk: openai.AsyncOpenAI, ai: AIProviderService
) -> None:
    slow_down = Reply(429, {"error": {"message": "Rate limit", "code": "rate_limit_exceeded"}},
                      {"retry-after-ms": "300", "retry-after": "20"})  # fmt: skip
    upstream.script("chat", slow_down, slow_down)
    await run_sdk(sdk)
    theirs = gaps(upstream)
    upstream.hits["chat"].clear()
    upstream.script("chat", slow_down, slow_down)
    await ai.generate_content("openai", "Create an ad")
    mine = gaps(upstream)
    # Both: 3 attempts, each retry after (not before) the 300 ms asked, and not the
    # 20 s of retry-after (retry-after-ms wins).
    assert len(theirs) == len(mine) == 2
    assert min(theirs) >= 0.3 and min(mine) >= 0.3
    assert max(theirs) < 5 and max(mine) < 5


@pytest.mark.parametrize("status", [408, 409, 429, 500, 503])
async def test_statuses_the_sdk_retries_are_retried(
    upstream: Upstream, sdk: openai.AsyncOpenAI, ai: AIProviderService, status: int
) -> None:
    fail = Reply(status, {"error": {"message": "try again"}}, {"retry-after-ms": "10"})
    upstream.script("chat", fail)
    await run_sdk(sdk)
    assert upstream.count("chat") == 2
    upstream.script("chat", fail)
    response = await ai.generate_content("openai", "Create an ad")
    assert upstream.count("chat") == 4 and response.usable


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_statuses_the_sdk_does_not_retry_are_not_retried(
    upstream: Upstream, sdk: openai.AsyncOpenAI, ai: AIProviderService, status: int
) -> None:
    refuse = Reply(status, {"error": {"message": "bad", "type": "invalid_request_error",
                                      "param": "messages", "code": "bad_messages"}})  # fmt: skip
    upstream.script("chat", refuse)
    with pytest.raises(openai.APIStatusError):
        await run_sdk(sdk)
    upstream.script("chat", refuse)
    with pytest.raises(UpstreamError) as err:
        await ai.generate_content("openai", "Create an ad")
    assert upstream.count("chat") == 2
    # The provider's fields, as the SDK's APIError exposes them.
    assert (err.value.status, err.value.code, err.value.type, err.value.param) == (
        status,
        "bad_messages",
        "invalid_request_error",
        "messages",
    )


@pytest.mark.parametrize(("status", "hint", "sdk_attempts"), [(500, "false", 1), (400, "true", 2)])
async def test_x_should_retry_overrides_the_status_as_the_sdk_obeys_it(
    upstream: Upstream,
    sdk: openai.AsyncOpenAI,
    ai: AIProviderService,
    status: int,
    hint: str,
    sdk_attempts: int,
) -> None:
    reply = Reply(status, {"error": {"message": "x"}}, {"x-should-retry": hint,
                                                       "retry-after-ms": "10"})  # fmt: skip
    upstream.script("chat", reply)
    with contextlib.suppress(openai.APIStatusError):
        await run_sdk(sdk)
    assert upstream.count("chat") == sdk_attempts
    upstream.hits["chat"].clear()
    upstream.script("chat", reply)
    try:
        await ai.generate_content("openai", "Create an ad")
    except UpstreamError as exc:
        assert hint == "false" and "x-should-retry: false" in str(exc)
    assert upstream.count("chat") == sdk_attempts


async def test_insufficient_quota_is_not_retried_and_says_what_to_do(
    upstream: Upstream, ai: AIProviderService
) -> None:
    # The SDK retries this 429 like any other; no retry can refill a quota.
    upstream.script(
        "chat",
        Reply(429, {"error": {"message": "You exceeded your current quota", "param": None,
                              "type": "insufficient_quota", "code": "insufficient_quota"}}),
    )  # fmt: skip
    with pytest.raises(UpstreamError) as err:
        await ai.generate_content("openai", "Create an ad")
    assert not isinstance(err.value, RateLimitedError)
    assert upstream.count("chat") == 1
    assert err.value.code == "insufficient_quota" and err.value.status == 429
    assert "billing" in str(err.value) and "lowering rate_limit will not help" in str(err.value)


async def test_a_retry_that_would_pass_the_deadline_is_not_made(
    upstream: Upstream, manager: ExternalServiceManager
) -> None:
    ai = AIProviderService(manager)
    await ai.register_provider(
        "openai",
        ExternalServiceConfig(base_url=upstream.url, api_key=upstream.api_key, deadline=1.0),
    )
    upstream.script("chat", Reply(503, {"error": {"message": "busy"}}, {"retry-after-ms": "2000"}))
    with pytest.raises(UpstreamError, match="would pass the call's deadline of 1 s"):
        await ai.generate_content("openai", "Create an ad")
    assert upstream.count("chat") == 1


@pytest.mark.parametrize(
    ("message", "finish_reason", "problem"),
    [
        ({"role": "assistant", "content": None, "refusal": "I can't help with that."},
         "stop", "the model refused: I can't help with that."),
        ({"role": "assistant", "content": "Run Fur"}, "length", "cut off at the token limit"),
        ({"role": "assistant", "content": None}, "stop", "the content is empty"),
        ({"role": "assistant", "content": None}, "content_filter", "content was filtered"),
    ],
)  # fmt: skip
async def test_refusal_truncation_and_null_content_are_surfaced_as_the_sdk_parses_them(
    upstream: Upstream,
    sdk: openai.AsyncOpenAI,
    ai: AIProviderService,
    message: dict[str, Any],
    finish_reason: str,
    problem: str,
) -> None:
    reply = {**CHAT_OK, "choices": [{"index": 0, "message": message,
                                     "finish_reason": finish_reason}]}  # fmt: skip
    upstream.script("chat", Reply(200, reply), Reply(200, reply))
    theirs = (await run_sdk(sdk)).choices[0]
    mine = await ai.generate_content("openai", "Create an ad")
    assert mine.finish_reason == theirs.finish_reason
    assert mine.refusal == theirs.message.refusal
    assert mine.content == (theirs.message.content or "")
    assert not mine.usable and problem in (mine.problem() or "")
