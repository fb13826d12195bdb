"""Repository implementations of the ads domain on SQLAlchemy Core (PostgreSQL and SQLite).

Every read, update and delete is scoped by ``user_id``; ``get_by_id`` of a
missing (or another user's) row returns None, writes to one raise
NotFoundError. See docs/repositories.md.
"""

from ads_infra.repositories.ads import AdsRepositoryImpl
from ads_infra.repositories.analytics import AnalyticsRepositoryImpl
from ads_infra.repositories.campaigns import CampaignRepositoryImpl
from ads_infra.repositories.catalog import REPOSITORIES
from ads_infra.repositories.factory import RepositoryFactory
from ads_infra.repositories.groups import GroupRepositoryImpl
from ads_infra.repositories.optimization import OptimizationRepositoryImpl
from ads_infra.repositories.performance import PerformanceRepositoryImpl
from ads_infra.repositories.scope import CacheLike, RepositoryScope, StandaloneScope
from ads_infra.repositories.unit_of_work import UnitOfWork

__all__ = [
    "REPOSITORIES",
    "AdsRepositoryImpl",
    "AnalyticsRepositoryImpl",
    "CacheLike",
    "CampaignRepositoryImpl",
    "GroupRepositoryImpl",
    "OptimizationRepositoryImpl",
    "PerformanceRepositoryImpl",
    "RepositoryFactory",
    "RepositoryScope",
    "StandaloneScope",
    "UnitOfWork",
]
