"""Coordination sub-container: ``link`` is the Coordinator (backend redis) or None (local).

The cache and services sub-containers receive ``link`` (their fleet link)
and ``lifecycle`` (so the coordination Redis starts before them and closes
after them).
"""

from dependency_injector import containers, providers

from ads_infra.coordination import Coordinator
from ads_infra.core.lifecycle import started_after
from ads_infra.core.settings import CoordinationConfig


class CoordinationContainer(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=CoordinationConfig)

    link = providers.Selector(
        settings.provided.backend,
        local=providers.Object(None),
        redis=providers.Singleton(Coordinator, config=settings),
    )
    # started_after provides None (backend local) as it is.
    lifecycle = providers.Resource(started_after, link, None)
