"""AIProviderService: ad copy from an OpenAI-compatible chat completions API, or offline.

Any API speaking OpenAI's ``POST /v1/chat/completions`` works (OpenAI, Azure
gateways, vLLM, Ollama, LiteLLM, ...). The ``offline`` provider, always
there and the embedded default, writes deterministic ad copy from the
prompt with no network at all, so demos and tests run anywhere.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import orjson

from ads_infra.core.errors import ConfigurationError, UpstreamError
from ads_infra.core.health import HealthStatus
from ads_infra.core.loader import environment_settings
from ads_infra.core.settings import AIProviderConfig, AIProviderType
from ads_infra.external_services.config import ExternalServiceConfig, ServiceType
from ads_infra.external_services.manager import ExternalServiceManager
from ads_infra.external_services.response import upstream_message
from ads_infra.external_services.service import ManagedService

__all__ = ["OFFLINE_PROVIDER", "AIProviderService", "AIResponse", "TokenUsage"]

OFFLINE_PROVIDER = "offline"
SERVICE_PREFIX = "ai."


@dataclasses.dataclass(frozen=True, slots=True)
class TokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class AIResponse:
    """What ``generate_content`` returns; ``str(response)`` is the content.

    A reply can be well-formed and still unusable: check :attr:`usable` (or
    :attr:`truncated`, :attr:`refused`) before storing it. ``content`` is ""
    when the provider sent ``null``; ``refusal`` is the model's refusal text.
    """

    content: str
    model: str
    provider: str
    usage: TokenUsage = dataclasses.field(default_factory=TokenUsage)
    finish_reason: str | None = None
    response_id: str | None = None
    refusal: str | None = None

    def __str__(self) -> str:
        return self.content

    @property
    def truncated(self) -> bool:
        """The token limit cut the content off (``finish_reason: "length"``)."""
        return self.finish_reason == "length"

    @property
    def refused(self) -> bool:
        """The model refused, or the provider's filter withheld the content."""
        return self.refusal is not None or self.finish_reason == "content_filter"

    @property
    def usable(self) -> bool:
        """Complete, non-empty content: not cut off, refused or blank."""
        return bool(self.content.strip()) and not self.truncated and not self.refused

    def problem(self) -> str | None:
        """Why the content is not usable, in words, or None."""
        if self.refused:
            return f"the model refused: {self.refusal}" if self.refusal else "content was filtered"
        if self.truncated:
            return "the content was cut off at the token limit (finish_reason: length)"
        if not self.content.strip():
            return f"the content is empty (finish_reason: {self.finish_reason})"
        return None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --- the offline provider ------------------------------------------------------------

_HEADLINES = (
    "Discover {topic} Today",
    "{topic}: Made for You",
    "Upgrade to Better {topic}",
    "Love {topic}? Start Here",
    "The Smarter Way to {topic}",
)
_BODIES = (
    "Join thousands who switched to {topic}. Fast setup, real results.",
    "{topic} that fits your day. Try it free and see the difference.",
    "Save time and money with {topic}. Trusted, simple, ready now.",
    "Get more from {topic} with tools built for people like you.",
)
_CALLS = ("Shop now", "Learn more", "Get started", "Try it free", "Sign up today")
_STOPWORDS = frozenset(
    {"a", "an", "the", "for", "to", "of", "and", "or", "in", "on", "with", "about", "my"}
    | {"our", "your", "please", "me", "us", "some", "new", "create", "write", "make"}
    | {"ad", "ads", "copy"}
)


def offline_ad_copy(prompt: str, model: str) -> str:
    """Deterministic ad copy: the same prompt and model always give the same text."""
    words = [w for w in re.findall(r"[A-Za-z0-9']+", prompt) if w.lower() not in _STOPWORDS]
    topic = " ".join(words[:3]).title() or "Our Product"
    digest = hashlib.sha256(f"{model}\0{prompt}".encode()).digest()
    headline = _HEADLINES[digest[0] % len(_HEADLINES)].format(topic=topic)
    body = _BODIES[digest[1] % len(_BODIES)].format(topic=topic)
    call = _CALLS[digest[2] % len(_CALLS)]
    return f"{headline}\n{body}\n{call}."


def _approx_tokens(text: str) -> int:
    return max(1, len(text.split()))


# --- the OpenAI protocol ---------------------------------------------------------------

_ACCEPT_JSON = {"Accept": "application/json"}
# Reasoning models take max_completion_tokens (reasoning counts against it) and
# refuse a temperature other than their default.
_REASONING_MODEL = re.compile(r"^(o\d|gpt-5)", re.IGNORECASE)
# OpenAI's SDK retries these besides 408, 429 and 5xx: 409 is its lock timeout.
_OPENAI_RETRY_STATUSES = (408, 409, 429)


def _is_reasoning_model(model: str) -> bool:
    return bool(_REASONING_MODEL.match(model.rsplit("/", 1)[-1]))


def _as_openai(config: ExternalServiceConfig, deadline: float) -> ExternalServiceConfig:
    """``config`` with the OpenAI SDK's retry statuses and, if it sets none, a deadline."""
    statuses = sorted({*config.retry_statuses, *_OPENAI_RETRY_STATUSES})
    return dataclasses.replace(
        config,
        retry_statuses=statuses,
        deadline=config.deadline if config.deadline is not None else deadline,
    )


# --- the service -------------------------------------------------------------------


class AIProviderService(ManagedService):
    """Named AI providers over one :class:`ExternalServiceManager`.

    ``offline`` is always there; ``config`` (the container's ``services.ai``
    section) adds its provider. The manager learns of them (``ai.<name>``) at
    :meth:`start`, or on first use; :meth:`register_provider` adds one at once.
    """

    def __init__(
        self, manager: ExternalServiceManager, config: AIProviderConfig | None = None
    ) -> None:
        super().__init__(manager)
        self.config = config or environment_settings().services.ai
        self._providers: dict[str, ExternalServiceConfig | None] = {}
        self._add_provider(OFFLINE_PROVIDER, None)
        self.default_provider = self.config.provider.value
        if self.config.provider is AIProviderType.OPENAI:
            cfg = self.config
            self._add_provider(
                cfg.provider.value,
                ExternalServiceConfig(
                    service_type=ServiceType.AI_PROVIDER,
                    base_url=cfg.base_url or "https://api.openai.com",
                    api_key=cfg.api_key,
                    rate_limit=cfg.rate_limit,
                    timeout=cfg.timeout,
                    max_retries=cfg.max_retries,
                    failure_threshold=cfg.failure_threshold,
                    recovery_timeout=cfg.recovery_timeout,
                    deadline=cfg.deadline,
                ),
            )

    def prepare_settings(self, config: AIProviderConfig) -> Callable[[], None]:
        """For a reload: the model, temperature and the configured provider's limits.

        ``generate_content`` reads the model and temperature once per call, so
        a call in flight finishes on the values it started with.
        """
        configured = SERVICE_PREFIX + self.config.provider.value

        def swap() -> None:
            self.config = config

        return self._limits_applier([configured], config, swap)

    @property
    def providers(self) -> list[str]:
        return list(self._providers)

    async def register_provider(self, name: str, config: ExternalServiceConfig) -> None:
        """Register an OpenAI-compatible provider under ``name`` (the seed's API).

        An explicit registration: the manager learns of it at once, together
        with the providers the service already had.
        """
        if name == OFFLINE_PROVIDER:
            raise ConfigurationError(
                "the name 'offline' is reserved for the built-in offline provider; "
                "choose another name",
                key="provider",
            )
        self._add_provider(name, config)
        self._register()

    def _add_provider(self, name: str, config: ExternalServiceConfig | None) -> None:
        service = SERVICE_PREFIX + name
        if config is None:
            self._add_offline(service, ServiceType.AI_PROVIDER, "deterministic ad copy, no network")
        else:
            config = _as_openai(config, self.config.deadline)
            self._add_upstream(service, config)
        self._providers[name] = config

    async def generate_content(
        self,
        provider: str | None,
        prompt: str,
        model: str | None = None,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        system: str | None = None,
    ) -> AIResponse:
        """Ask ``provider`` (None: the configured default) to write content for ``prompt``."""
        self._register()
        name = provider or self.default_provider
        if name not in self._providers:
            raise ConfigurationError(
                f"AI provider {name!r} is not registered (registered: "
                f"{', '.join(self._providers)}); call register_provider() or set "
                "ADS_AI_PROVIDER",
                key="services.ai.provider",
            )
        if not prompt or not prompt.strip():
            raise ValueError("generate_content needs a non-empty prompt")
        model = model or self.config.model
        config = self._providers[name]
        if config is None:
            content = offline_ad_copy(prompt, model)
            used_in, used_out = _approx_tokens(prompt), _approx_tokens(content)
            return AIResponse(
                content=content,
                model=model,
                provider=name,
                usage=TokenUsage(used_in, used_out, used_in + used_out),
                finish_reason="stop",
            )
        messages = [{"role": "user", "content": prompt}]
        if system:
            messages.insert(0, {"role": "system", "content": system})
        body: dict[str, Any] = {"model": model, "messages": messages}
        limit = max_tokens or self.config.max_tokens
        if self._limit_parameter(config, model) == "max_completion_tokens":
            body["max_completion_tokens"] = limit
            if temperature is not None or not _is_reasoning_model(model):
                body["temperature"] = (
                    self.config.temperature if temperature is None else temperature
                )
        else:
            body["max_tokens"] = limit
            body["temperature"] = self.config.temperature if temperature is None else temperature
        path = "/chat/completions" if config.base_url.endswith("/v1") else "/v1/chat/completions"
        # Generating text changes nothing upstream, so a retry is safe; the key
        # lets gateways that support it deduplicate.
        response = await self.manager.request(
            SERVICE_PREFIX + name,
            "POST",
            path,
            json=body,
            headers=_ACCEPT_JSON,
            idempotency_key=uuid.uuid4().hex,
        )
        try:
            data = response.json()
        except UpstreamError:
            data = None  # _parse explains
        return self._parse(name, model, data)

    def _limit_parameter(self, config: ExternalServiceConfig, model: str) -> str:
        """``max_tokens`` or ``max_completion_tokens``, per ``services.ai.limit_parameter``."""
        chosen = self.config.limit_parameter
        if chosen != "auto":
            return chosen
        # OpenAI deprecated max_tokens and its reasoning models refuse it; most
        # compatible servers (vLLM, Ollama, LiteLLM) read max_tokens.
        host = urlsplit(config.base_url).hostname or ""
        if host == "api.openai.com" or _is_reasoning_model(model):
            return "max_completion_tokens"
        return "max_tokens"

    def _parse(self, provider: str, model: str, data: Any) -> AIResponse:
        service = SERVICE_PREFIX + provider
        if not isinstance(data, dict):
            raise UpstreamError(
                f"{service}: the chat completion is not a JSON object; check that the "
                "base URL points at an OpenAI-compatible API",
                service=service,
            )
        if data.get("error"):
            # The manager's reading: error.message, else its code or type, else the body.
            message = self.manager.scrub(service, upstream_message(orjson.dumps(data)))
            raise UpstreamError(
                f"{service}: the provider answered an error: {message}", service=service
            )
        try:
            choice = data["choices"][0]
            message = choice["message"]
            content = message["content"] if "refusal" not in message else message.get("content")
        except (KeyError, IndexError, TypeError):
            raise UpstreamError(
                f"{service}: the chat completion has no choices[0].message.content; check "
                "that the base URL points at an OpenAI-compatible API",
                service=service,
            ) from None
        if content is not None and not isinstance(content, str):
            raise UpstreamError(
                f"{service}: choices[0].message.content is a {type(content).__name__}, not a "
                "string; check that the base URL points at an OpenAI-compatible chat "
                "completions API",
                service=service,
            )
        usage = data.get("usage")
        if not isinstance(usage, dict):
            usage = {}  # optional in the protocol; absent or odd, it is counted as 0
        counts = []
        for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
            value = usage.get(key) or 0
            try:
                counts.append(int(value))
            except (TypeError, ValueError, OverflowError):
                raise UpstreamError(
                    f"{service}: usage.{key} is a {type(value).__name__} that is not a whole "
                    "number; check that the base URL points at an OpenAI-compatible API",
                    service=service,
                ) from None
        finish_reason = choice.get("finish_reason")
        response_id = data.get("id")
        refusal = message.get("refusal")
        return AIResponse(
            content=content or "",
            model=str(data.get("model") or model),
            provider=provider,
            usage=TokenUsage(*counts),
            finish_reason=None if finish_reason is None else str(finish_reason),
            response_id=None if response_id is None else str(response_id),
            refusal=self.manager.scrub(service, str(refusal)) if refusal else None,
        )

    async def health_check(self) -> list[HealthStatus]:
        """Health of the AI providers only (``services.ai.*``)."""
        self._register()
        return [
            r
            for r in await self.manager.health_check()
            if r.component.startswith("services." + SERVICE_PREFIX)
        ]
