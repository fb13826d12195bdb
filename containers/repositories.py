"""Repositories sub-container: RepositoryFactory, and one provider per repository of the catalog.

``container.repositories.ads`` etc.: each provider calls
``factory.create(name)`` for a name of
:data:`ads_infra.repositories.REPOSITORIES`, so the container lists no
repository of its own.
"""

from dependency_injector import containers, providers

from ads_infra.database import DatabaseManager
from ads_infra.repositories import REPOSITORIES, RepositoryFactory


class RepositoriesContainer(containers.DeclarativeContainer):
    database = providers.Dependency(instance_of=DatabaseManager)
    cache: providers.Dependency[object | None] = providers.Dependency(default=None)

    factory = providers.Singleton(RepositoryFactory, db_manager=database, cache=cache)


# A DeclarativeContainer registers providers set on the class after its body too.
for _name in REPOSITORIES:
    setattr(RepositoriesContainer, _name, RepositoriesContainer.factory.provided.create.call(_name))
del _name
