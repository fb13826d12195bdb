"""Services sub-container: one ExternalServiceManager; AI, analytics and notification services."""

from dependency_injector import containers, providers

from ads_infra.core.lifecycle import started
from ads_infra.core.settings import ServicesConfig
from ads_infra.external_services import (
    AIProviderService,
    AnalyticsService,
    ExternalServiceManager,
    NotificationService,
)


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
