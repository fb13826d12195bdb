"""The domain's ports, implemented over the infrastructure.

The domain declares what it needs (:mod:`ads_infra.domain.ports`); these
classes provide it over the AI provider, file storage and the repositories'
units of work, so domain services never import the infrastructure. The
container's ``domain`` sub-container wires them into the domain services.
"""

from ads_infra.adapters.copywriter import AICopyWriter
from ads_infra.adapters.creatives import StorageCreativeStore
from ads_infra.adapters.transactions import RepositoryTransactions

__all__ = ["AICopyWriter", "RepositoryTransactions", "StorageCreativeStore"]
