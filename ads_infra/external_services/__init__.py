"""External HTTP services: one shared session, rate limits, retries, breakers, metrics.

:class:`ExternalServiceManager` (``manager.py``) owns the aiohttp session and
the request path, composed of the circuit breaker (``breaker.py``) and the
retry and classification policy (``policy.py``, ``retry.py``);
:class:`AIProviderService`, :class:`AnalyticsService` and
:class:`NotificationService` are built on it (``service.py``: started, not
registered by their constructors); :class:`PluginServices` builds the
services installed plugins provide (``plugins.py``). Receivers of our signed webhooks use
:func:`verify_webhook` (``webhooks.py``). See ``docs/services.md``.
"""

from ads_infra.external_services.ai import (
    OFFLINE_PROVIDER,
    AIProviderService,
    AIResponse,
    TokenUsage,
    offline_ad_copy,
)
from ads_infra.external_services.analytics import AnalyticsService
from ads_infra.external_services.breaker import CircuitBreaker, CircuitState
from ads_infra.external_services.config import AuthScheme, ExternalServiceConfig, ServiceType
from ads_infra.external_services.manager import ExternalServiceManager
from ads_infra.external_services.notifications import (
    ChannelKind,
    NotificationService,
    slack_escape,
)
from ads_infra.external_services.plugins import PluginServices
from ads_infra.external_services.response import ServiceResponse
from ads_infra.external_services.webhooks import (
    ReplayGuard,
    generate_webhook_secret,
    sign_webhook,
    verify_webhook,
)

__all__ = [
    "OFFLINE_PROVIDER",
    "AIProviderService",
    "AIResponse",
    "AnalyticsService",
    "AuthScheme",
    "ChannelKind",
    "CircuitBreaker",
    "CircuitState",
    "ExternalServiceConfig",
    "ExternalServiceManager",
    "NotificationService",
    "PluginServices",
    "ReplayGuard",
    "ServiceResponse",
    "ServiceType",
    "TokenUsage",
    "generate_webhook_secret",
    "offline_ad_copy",
    "sign_webhook",
    "slack_escape",
    "verify_webhook",
]
