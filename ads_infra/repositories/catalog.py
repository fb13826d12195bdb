"""The six repositories, listed once: name -> implementation class.

The names are those of a unit of work's attributes (``uow.ads``) and of the
container's providers (``container.repositories.ads``); both, and
:meth:`RepositoryFactory.create`, are built from this mapping. Every class
takes ``(db_manager, cache=None, *, scope=None, cache_ttl=None)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ads_infra.repositories.ads import AdsRepositoryImpl
from ads_infra.repositories.analytics import AnalyticsRepositoryImpl
from ads_infra.repositories.base import BaseRepository
from ads_infra.repositories.campaigns import CampaignRepositoryImpl
from ads_infra.repositories.groups import GroupRepositoryImpl
from ads_infra.repositories.optimization import OptimizationRepositoryImpl
from ads_infra.repositories.performance import PerformanceRepositoryImpl

__all__ = ["REPOSITORIES"]

# Read-only: the factory, the unit of work and the container read it at
# import or construction time, so a change at run time would split them.
REPOSITORIES: Mapping[str, type[BaseRepository]] = MappingProxyType(
    {
        "ads": AdsRepositoryImpl,
        "campaigns": CampaignRepositoryImpl,
        "groups": GroupRepositoryImpl,
        "performance": PerformanceRepositoryImpl,
        "analytics": AnalyticsRepositoryImpl,
        "optimization": OptimizationRepositoryImpl,
    }
)
