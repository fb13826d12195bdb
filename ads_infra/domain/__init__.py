"""The ads domain: entities, validation, derived metrics and repository interfaces.

Standard library only: nothing here imports the infrastructure, so domain
services are written against :mod:`ads_infra.domain.repositories` and run
with any implementation.
"""

from ads_infra.domain.entities import (
    Ad,
    AdGroup,
    AdType,
    BidStrategy,
    Campaign,
    Objective,
    OptimizationSuggestion,
    PerformanceRecord,
    Status,
    SuggestionStatus,
    SuggestionType,
    from_json_dict,
    to_json_dict,
)
from ads_infra.domain.errors import DomainError, NotFoundError, ValidationError
from ads_infra.domain.metrics import DerivedMetrics, MetricTotals, derive
from ads_infra.domain.repositories import (
    AdFilter,
    AdsRepository,
    AnalyticsRepository,
    CampaignFilter,
    CampaignRepository,
    DailyPoint,
    GroupFilter,
    GroupRepository,
    OptimizationRepository,
    Page,
    PerformanceFilter,
    PerformanceRepository,
    SuggestionFilter,
    Summary,
    UserStats,
)
from ads_infra.domain.validation import apply_changes, validate

__all__ = [
    "Ad",
    "AdFilter",
    "AdGroup",
    "AdType",
    "AdsRepository",
    "AnalyticsRepository",
    "BidStrategy",
    "Campaign",
    "CampaignFilter",
    "CampaignRepository",
    "DailyPoint",
    "DerivedMetrics",
    "DomainError",
    "GroupFilter",
    "GroupRepository",
    "MetricTotals",
    "NotFoundError",
    "Objective",
    "OptimizationRepository",
    "OptimizationSuggestion",
    "Page",
    "PerformanceFilter",
    "PerformanceRecord",
    "PerformanceRepository",
    "Status",
    "SuggestionFilter",
    "SuggestionStatus",
    "SuggestionType",
    "Summary",
    "UserStats",
    "ValidationError",
    "apply_changes",
    "derive",
    "from_json_dict",
    "to_json_dict",
    "validate",
]
