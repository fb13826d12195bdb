"""NotificationService: messages to Slack-style incoming webhooks and generic JSON webhooks.

A webhook URL carries its credential in the path, so the URL is kept as a
:class:`~ads_infra.config.Secret`: the manager is given only its origin, and
the path, the query and each query value are masked wherever the manager
reports on the channel.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ads_infra.core.errors import ConfigurationError
from ads_infra.core.loader import environment_settings
from ads_infra.core.redact import Secret
from ads_infra.core.section import url_problem as _url_problem
from ads_infra.core.settings import NotificationsConfig
from ads_infra.external_services.config import AuthScheme, ExternalServiceConfig, ServiceType
from ads_infra.external_services.manager import ExternalServiceManager
from ads_infra.external_services.service import ManagedService

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
    WEBHOOK = "webhook"  # body {"channel", "text", "sent_at", ...extra}


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
        if self.config.slack_webhook_url:
            self._add_channel("slack", self.config.slack_webhook_url, ChannelKind.SLACK)
        if self.config.webhook_url:
            self._add_channel("webhook", self.config.webhook_url, ChannelKind.WEBHOOK)

    @property
    def channels(self) -> list[str]:
        return list(self._channels)

    def register_channel(
        self, name: str, url: str | Secret, kind: ChannelKind | str = ChannelKind.WEBHOOK
    ) -> None:
        """Add (or replace) channel ``name`` posting to webhook ``url``. No I/O.

        An explicit registration: the manager learns of it at once, together
        with the channels the service already had.
        """
        self._add_channel(name, url, kind)  # validates before the manager is touched
        self._register()

    def _add_channel(self, name: str, url: str | Secret, kind: ChannelKind | str) -> None:
        kind = ChannelKind(kind)
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

        Each notification carries one ``Idempotency-Key`` across its retries, so
        a receiver that honours it shows the message once; Slack ignores it, and
        after a 5xx that Slack had in fact delivered, a retry can post twice:
        a duplicate alert is judged better than a lost one.
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
        if kind is ChannelKind.SLACK:
            body: dict[str, Any] = {"text": message, **(extra or {})}
        else:
            body = {
                "channel": channel,
                "text": message,
                "sent_at": dt.datetime.now(dt.UTC).isoformat(),
                **(extra or {}),
            }
        await self.manager.request(
            SERVICE_PREFIX + channel,
            "POST",
            path,
            json=body,
            idempotency_key=idempotency_key or uuid.uuid4().hex,
        )
