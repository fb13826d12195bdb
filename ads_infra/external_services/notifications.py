"""NotificationService: messages to Slack-style incoming webhooks and generic JSON webhooks.

A webhook URL carries its credential in the path, so the URL is kept as a
:class:`~ads_infra.config.Secret`: the manager is given only its origin, and
the path, the query and each query value are masked wherever the manager
reports on the channel.

Slack: the message is escaped as Slack's "Formatting text for app surfaces"
asks (``&``, ``<``, ``>``), so a campaign named ``<!channel>`` is shown, not
obeyed. Generic webhooks are signed per the Standard Webhooks spec
(``webhooks.py``), so a receiver can authenticate them and refuse replays.
In both, ``extra`` may not replace the keys the service writes.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson

from ads_infra.core.errors import ConfigurationError
from ads_infra.core.loader import environment_settings
from ads_infra.core.redact import Secret
from ads_infra.core.section import url_problem as _url_problem
from ads_infra.core.settings import NotificationsConfig
from ads_infra.external_services.config import AuthScheme, ExternalServiceConfig, ServiceType
from ads_infra.external_services.manager import ExternalServiceManager
from ads_infra.external_services.service import ManagedService
from ads_infra.external_services.webhooks import parse_webhook_secret, sign_webhook

__all__ = ["ChannelKind", "NotificationService"]

SERVICE_PREFIX = "notifications."
# Query values shorter than this are not masked: "1" or "ads" is no credential,
# and masking it would garble every message (a "1" in each port and status).
MIN_SECRET_VALUE = 4


def _url_secrets(path: str, query: str) -> tuple[str, ...]:
    """The parts of a webhook URL to mask: the path, the query and each query value.

    Separately, because an upstream may echo any one of them alone (a 404 page
    quoting the path but not the query), and also decoded, as it may echo them.
    """
    found = {path, unquote(path)} if path not in ("", "/") else set()
    if query:
        found |= {query, unquote(query)}
        raw = [pair.partition("=")[2] for pair in query.split("&")]
        decoded = [value for _, value in parse_qsl(query, keep_blank_values=True)]
        found |= {value for value in (*raw, *decoded) if len(value) >= MIN_SECRET_VALUE}
    return tuple(found)


class ChannelKind(enum.StrEnum):
    SLACK = "slack"  # body {"text": message}
    WEBHOOK = "webhook"  # body {"channel", "text", "sent_at", ...extra}, signed


# The keys each kind of body is built from: ``extra`` adds to them, never replaces.
RESERVED_KEYS = {
    ChannelKind.SLACK: frozenset({"text"}),
    ChannelKind.WEBHOOK: frozenset({"channel", "text", "sent_at"}),
}
_JSON = {"Content-Type": "application/json"}


def slack_escape(text: str) -> str:
    """``text`` as Slack shows it literally: ``&``, ``<`` and ``>`` escaped (and only
    those, as Slack asks), so no ``<!channel>``, ``<@U123>`` or ``<url|link>`` acts."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class NotificationService(ManagedService):
    """Named channels; ``slack`` and ``webhook`` come from the configuration when set.

    The manager learns of the configured channels (``notifications.<name>``)
    at :meth:`start`, or on first use; :meth:`register_channel` adds one at once.
    """

    def __init__(
        self, manager: ExternalServiceManager, config: NotificationsConfig | None = None
    ) -> None:
        super().__init__(manager)
        self.config = config or environment_settings().services.notifications
        self._channels: dict[str, tuple[ChannelKind, str]] = {}
        self._keys: dict[str, bytes] = {}  # signing keys of the webhook channels
        if self.config.slack_webhook_url:
            self._add_channel("slack", self.config.slack_webhook_url, ChannelKind.SLACK)
        if self.config.webhook_url:
            self._add_channel(
                "webhook",
                self.config.webhook_url,
                ChannelKind.WEBHOOK,
                self.config.webhook_secret,
                key="services.notifications.webhook_secret",
            )

    def prepare_settings(self, config: NotificationsConfig) -> Callable[[], None]:
        """For a reload: every channel's rate limit, retries and breaker thresholds."""

        def swap() -> None:
            self.config = config

        names = [SERVICE_PREFIX + name for name in self._channels]
        return self._limits_applier(names, config, swap)

    @property
    def channels(self) -> list[str]:
        return list(self._channels)

    def register_channel(
        self,
        name: str,
        url: str | Secret,
        kind: ChannelKind | str = ChannelKind.WEBHOOK,
        *,
        secret: str | Secret | None = None,
    ) -> None:
        """Add (or replace) channel ``name`` posting to webhook ``url``. No I/O.

        A ``webhook`` channel needs ``secret`` (``whsec_<base64>``, shared with
        the receiver: :func:`~ads_infra.external_services.generate_webhook_secret`)
        to sign its messages. An explicit registration: the manager learns of it
        at once, together with the channels the service already had.
        """
        self._add_channel(name, url, kind, secret)  # validates before the manager is touched
        self._register()

    def _add_channel(
        self,
        name: str,
        url: str | Secret,
        kind: ChannelKind | str,
        secret: str | Secret | None = None,
        *,
        key: str = "secret",
    ) -> None:
        kind = ChannelKind(kind)
        if kind is ChannelKind.WEBHOOK:
            if not secret:
                raise ConfigurationError(
                    f"webhook channel {name!r} needs a signing secret, so that its receiver "
                    "can tell our messages from forgeries: set ADS_WEBHOOK_SECRET "
                    "(services.notifications.webhook_secret) or pass secret= to "
                    "register_channel(); generate one with generate_webhook_secret()",
                    key=key,
                )
            self._keys[name] = parse_webhook_secret(secret, key=key)
        secret = url if isinstance(url, Secret) else Secret(url)
        raw = secret.get_secret_value()
        problem = _url_problem(raw, ("http", "https"))
        if problem:
            raise ConfigurationError(f"the webhook URL {problem}", key=f"channel {name}")
        parts = urlsplit(raw)
        origin = f"{parts.scheme}://{parts.netloc}"
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        cfg = self.config
        self._add_upstream(
            SERVICE_PREFIX + name,
            ExternalServiceConfig(
                service_type=ServiceType.NOTIFICATION,
                base_url=origin,
                auth_scheme=AuthScheme.NONE,
                rate_limit=cfg.rate_limit,
                timeout=cfg.timeout,
                max_retries=cfg.max_retries,
                failure_threshold=cfg.failure_threshold,
                recovery_timeout=cfg.recovery_timeout,
            ),
            secrets=_url_secrets(parts.path, parts.query),
        )
        self._channels[name] = (kind, path)

    async def send_notification(
        self,
        channel: str,
        message: str,
        *,
        extra: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        """Post ``message`` to ``channel``; raises ExternalServiceError when it fails.

        Each notification carries one id across its retries (``Idempotency-Key``
        and, on webhooks, ``webhook-id``), so a receiver that honours it shows the
        message once; Slack ignores it, and after a 5xx that Slack had in fact
        delivered, a retry can post twice: a duplicate alert is judged better
        than a lost one. ValueError when ``extra`` names a key the service
        writes (Slack: ``text``; webhooks: ``channel``, ``text``, ``sent_at``).
        """
        self._register()
        try:
            kind, path = self._channels[channel]
        except KeyError:
            hint = {
                "slack": "set ADS_SLACK_WEBHOOK_URL (services.notifications.slack_webhook_url)",
                "webhook": "set ADS_WEBHOOK_URL (services.notifications.webhook_url)",
            }.get(channel, "call register_channel() first")
            known = ", ".join(self._channels) or "none"
            raise ConfigurationError(
                f"notification channel {channel!r} is not configured (configured: {known}); {hint}",
                key="services.notifications",
            ) from None
        reserved = RESERVED_KEYS[kind] & set(extra or ())
        if reserved:
            raise ValueError(
                f"notification to {channel!r}: extra may not set {sorted(reserved)}; the "
                f"service writes {sorted(RESERVED_KEYS[kind])} itself; rename your keys"
            )
        msg_id = idempotency_key or f"msg_{uuid.uuid4().hex}"
        if kind is ChannelKind.SLACK:
            await self.manager.request(
                SERVICE_PREFIX + channel,
                "POST",
                path,
                json={**(extra or {}), "text": slack_escape(message)},
                idempotency_key=msg_id,
            )
            return
        body = orjson.dumps(
            {
                **(extra or {}),
                "channel": channel,
                "text": message,
                "sent_at": dt.datetime.now(dt.UTC).isoformat(),
            }
        )
        signing_key = self._keys[channel]

        def signed(retry: int) -> tuple[bytes, dict[str, str]]:
            # Signed per attempt: a retry carries its own timestamp, so a receiver's
            # tolerance window does not refuse a late but genuine retry.
            return body, sign_webhook(signing_key, msg_id, body)

        await self.manager.request(
            SERVICE_PREFIX + channel,
            "POST",
            path,
            data=b"",
            headers=_JSON,
            idempotency_key=msg_id,
            per_attempt=signed,
        )
