"""Services sub-container: one ExternalServiceManager, and the services composed on it.

``ai``, ``analytics``, ``notifications`` and ``plugins`` (the services of
installed plugins that ``services.plugins`` names) are Singletons over the manager
(what ``container.services.ai()`` returns, started or not); their constructors
only read their config sections. Each is started by a Resource of its own that
takes the manager's Resource (``lifecycle``) as an argument, so that:

- ``init_resources()`` starts the manager (its session) first, then each
  service, which registers with the manager the upstreams its config selects
  (the AI provider, the analytics endpoint, the webhook channels);
- ``shutdown_resources()`` closes the services first (analytics flushes its
  buffer through the still-open session), then the manager's session.
"""

from dependency_injector import containers, providers

from ads_infra.core.lifecycle import started_after
from ads_infra.core.settings import ServicesConfig
from ads_infra.external_services import (
    AIProviderService,
    AnalyticsService,
    ExternalServiceManager,
    NotificationService,
    PluginServices,
)


class ServicesContainer(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=ServicesConfig)
    fleet: providers.Dependency[object | None] = providers.Dependency(default=None)
    fleet_lifecycle: providers.Dependency[object | None] = providers.Dependency(default=None)
    discovery: providers.Dependency[object | None] = providers.Dependency(default=None)
    discovery_lifecycle: providers.Dependency[object | None] = providers.Dependency(default=None)

    manager = providers.Singleton(
        ExternalServiceManager, config=settings.provided.http, fleet=fleet, discovery=discovery
    )
    # Coordination and discovery (this process registered) run before the manager opens
    # its session, and close after it.
    ready = providers.List(fleet_lifecycle, discovery_lifecycle)
    ai = providers.Singleton(AIProviderService, manager, config=settings.provided.ai)
    analytics = providers.Singleton(AnalyticsService, manager, config=settings.provided.analytics)
    notifications = providers.Singleton(
        NotificationService, manager, config=settings.provided.notifications
    )
    # The services installed plugins provide, as services.plugins names them.
    plugins = providers.Singleton(PluginServices, manager, config=settings.provided.plugins)

    lifecycle = providers.Resource(started_after, manager, ready)
    ai_lifecycle = providers.Resource(started_after, ai, lifecycle)
    analytics_lifecycle = providers.Resource(started_after, analytics, lifecycle)
    notifications_lifecycle = providers.Resource(started_after, notifications, lifecycle)
    plugins_lifecycle = providers.Resource(started_after, plugins, lifecycle)
