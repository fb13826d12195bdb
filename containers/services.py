"""Services sub-container: one ExternalServiceManager; AI, analytics and notification services."""

from dependency_injector import containers, providers

from ads_infra.config import ServicesConfig


class ServicesContainer(containers.DeclarativeContainer):
    config = providers.Configuration()

    settings = providers.Singleton(ServicesConfig.from_dict, config)
