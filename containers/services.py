"""Services sub-container: one ExternalServiceManager, and the services composed on it.

``ai``, ``analytics`` and ``notifications`` are Singletons over the manager
(what ``container.services.ai()`` returns, started or not); their constructors
only read their config sections. Each is started by a Resource of its own that
takes the manager's Resource (``lifecycle``) as an argument, so that:

- ``init_resources()`` starts the manager (its session) first, then each
  service, which registers with the manager the upstreams its config selects
  (the AI provider, the analytics endpoint, the webhook channels);
- ``shutdown_resources()`` closes the services first (analytics flushes its
  buffer through the still-open session), then the manager's session.
"""

from collections.abc import AsyncIterator
from typing import TypeVar

from dependency_injector import containers, providers

from ads_infra.config import ServicesConfig
from ads_infra.external_services import (
    AIProviderService,
    AnalyticsService,
    ExternalServiceManager,
    NotificationService,
)
from ads_infra.lifecycle import started

S = TypeVar("S")


async def started_on(service: S, manager: ExternalServiceManager) -> AsyncIterator[S]:
    """Resource initializer: start ``service`` on the running ``manager``; close it at shutdown.

    ``manager`` is the manager's Resource, passed only so the container orders
    the two: this starts after it and shuts down before it.
    """
    # A host app may override a service with a stand-in (a fake AI) that has no
    # lifecycle of its own; it is provided as is.
    start, close = getattr(service, "start", None), getattr(service, "close", None)
    if start is not None:
        await start()
    try:
        yield service
    finally:
        if close is not None:
            await close()


class ServicesContainer(containers.DeclarativeContainer):
    config = providers.Configuration()

    settings = providers.Singleton(ServicesConfig.from_dict, config)
    manager = providers.Singleton(ExternalServiceManager, config=settings.provided.http)
    ai = providers.Singleton(AIProviderService, manager, config=settings.provided.ai)
    analytics = providers.Singleton(AnalyticsService, manager, config=settings.provided.analytics)
    notifications = providers.Singleton(
        NotificationService, manager, config=settings.provided.notifications
    )

    lifecycle = providers.Resource(started, manager)
    ai_lifecycle = providers.Resource(started_on, ai, lifecycle)
    analytics_lifecycle = providers.Resource(started_on, analytics, lifecycle)
    notifications_lifecycle = providers.Resource(started_on, notifications, lifecycle)
