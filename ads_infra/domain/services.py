"""Domain services: ad management and optimization, written only against the interfaces.

:class:`AdService` creates and updates ads with validation, writes ad copy
through a :class:`~ads_infra.domain.ports.CopyWriter` and attaches creatives
through a :class:`~ads_infra.domain.ports.CreativeStore`. Reads are cached
by the repository's cache-aside when the repository has a cache (one cache,
one invalidation path, rather than a second layer here).

:class:`OptimizationService` derives suggestions from performance with the
evidence behind each and its expected impact, and applies them: given a
:class:`~ads_infra.domain.ports.TransactionRunner`, the change and the
suggestion's new status commit together.

Both services stay in one module, a little over the usual size, so the
domain's behaviour reads as one page.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Mapping
from decimal import Decimal
from typing import Any

from ads_infra.domain.entities import (
    Ad,
    AdGroup,
    Campaign,
    OptimizationSuggestion,
    Status,
    SuggestionStatus,
    SuggestionType,
)
from ads_infra.domain.errors import NotFoundError, ValidationError
from ads_infra.domain.metrics import MetricTotals
from ads_infra.domain.ports import (
    AdCopy,
    CopyBrief,
    CopyWriter,
    CreativeStore,
    TransactionRepositories,
    TransactionRunner,
)
from ads_infra.domain.repositories import (
    AdFilter,
    AdsRepository,
    AnalyticsRepository,
    CampaignFilter,
    CampaignRepository,
    GroupRepository,
    OptimizationRepository,
    Page,
    SuggestionFilter,
)
from ads_infra.domain.validation import validate

__all__ = ["AdService", "OptimizationRules", "OptimizationService"]

MICROS = 1_000_000


async def _all_pages(fetch: Any, **kwargs: Any) -> AsyncIterator[Any]:
    """Every item of a keyset-paginated listing."""
    cursor: str | None = None
    while True:
        page: Page[Any] = await fetch(cursor=cursor, **kwargs)
        for item in page.items:
            yield item
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _clip(text: str, limit: int) -> str:
    """Cut at a word boundary so generated copy fits the ad format's limit."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",.;:-")
    return f"{cut}…"


class AdService:
    """Create, update and read ads; generate copy; attach creatives.

    >>> ad_service = AdService(ads_repo)          # the seed's form
    >>> ad_service = AdService(ads_repo, groups=groups_repo, copywriter=ai, creatives=store)
    """

    def __init__(
        self,
        ads: AdsRepository,
        *,
        groups: GroupRepository | None = None,
        copywriter: CopyWriter | None = None,
        creatives: CreativeStore | None = None,
    ) -> None:
        self.ads = ads
        self.groups = groups
        self.copywriter = copywriter
        self.creatives = creatives

    async def create_ad(self, ad: Ad) -> Ad:
        """Validate (fields, and that the group is the user's and in the campaign), then insert."""
        validate(ad)
        await self._check_group(ad)
        return await self.ads.create(ad)

    async def _check_group(self, ad: Ad) -> None:
        if self.groups is not None:
            group = await self.groups.get_by_id(ad.group_id, user_id=ad.user_id)
            if group is None:
                raise ValidationError(
                    "group_id", f"ad group {ad.group_id} does not exist for this user", entity="Ad"
                )
            if group.campaign_id != ad.campaign_id:
                raise ValidationError(
                    "campaign_id",
                    f"ad group {ad.group_id} belongs to campaign {group.campaign_id}, "
                    f"not {ad.campaign_id}",
                    entity="Ad",
                )

    async def update_ad(self, ad_id: int, changes: Mapping[str, Any], *, user_id: int) -> Ad:
        return await self.ads.update(ad_id, changes, user_id=user_id)

    async def get_ad(self, ad_id: int, *, user_id: int) -> Ad:
        """The ad, or NotFoundError (another user's ad included)."""
        ad = await self.ads.get_by_id(ad_id, user_id=user_id)
        if ad is None:
            raise NotFoundError("ad", ad_id, user_id=user_id)
        return ad

    async def list_ads(
        self, *, user_id: int, filters: AdFilter | None = None, limit: int = 50
    ) -> Page[Ad]:
        return await self.ads.list(user_id=user_id, filters=filters, limit=limit)

    async def generate_copy(self, brief: CopyBrief) -> AdCopy:
        """Ad copy from the configured writer, cut to the brief's length limits.

        Copy with an empty headline or description is refused (ValidationError):
        what this returns is stored as the ad's text.
        """
        if self.copywriter is None:
            raise ValidationError("copywriter", "no copy writer is configured", entity="AdService")
        if not brief.product.strip():
            raise ValidationError("product", "must not be empty", entity="CopyBrief")
        copy = await self.copywriter.write_copy(brief)
        copy = dataclasses.replace(
            copy,
            headline=_clip(copy.headline, brief.max_headline_length),
            description=_clip(copy.description, brief.max_description_length),
        )
        for field in ("headline", "description"):
            if not getattr(copy, field):
                # An ad with a blank line of copy would go live as is: refuse it.
                source = f" by {copy.provider}/{copy.model}" if copy.provider else ""
                raise ValidationError(
                    field,
                    f"the generated copy{source} has no {field}; nothing was stored. "
                    "Generate it again or write it yourself",
                    entity="AdCopy",
                )
        return copy

    async def create_ad_with_copy(self, ad: Ad, brief: CopyBrief) -> Ad:
        """Generate copy from ``brief``, then create the ad; metadata says where it came from.

        The ad group is checked first: a request for another user's group (or a
        missing one) costs no call to the provider.
        """
        await self._check_group(ad)
        copy = await self.generate_copy(brief)
        metadata = {**ad.metadata, "copy": {"provider": copy.provider, "model": copy.model}}
        return await self.create_ad(
            dataclasses.replace(
                ad, headline=copy.headline, description=copy.description, metadata=metadata
            )
        )

    async def attach_creative(
        self, ad_id: int, *, user_id: int, content: bytes, filename: str
    ) -> Ad:
        """Store a creative and point the ad at it.

        The ad is checked first, so nothing is stored for a missing ad; if the
        update fails the stored creative is deleted again (nothing half-written).
        """
        if self.creatives is None:
            raise ValidationError(
                "creatives", "no creative store is configured", entity="AdService"
            )
        await self.get_ad(ad_id, user_id=user_id)
        key = await self.creatives.save_creative(content, filename)
        try:
            return await self.ads.update(ad_id, {"creative_key": key}, user_id=user_id)
        except BaseException:
            await self.creatives.delete_creative(key)
            raise


@dataclasses.dataclass(frozen=True, kw_only=True)
class OptimizationRules:
    """Thresholds of the optimization rules; the defaults suit daily-budget search campaigns."""

    lookback_days: int = 30
    # Budget: a campaign "spends its whole budget" on a day when cost >= this share of it.
    budget_utilization: float = 0.95
    budget_capped_share_of_days: float = 0.6
    target_roas: float = 3.0
    budget_increase: float = 0.2
    # Creative: an ad's CTR below this share of its group's CTR, with enough impressions.
    creative_ctr_ratio: float = 0.5
    min_impressions: int = 1000
    # Pause: spend with no conversion over the last N days.
    pause_days: int = 14
    pause_min_spend_micros: int = 50 * MICROS


class OptimizationService:
    """Derives optimization suggestions from performance, with evidence and expected impact.

    >>> service = OptimizationService(analytics=..., campaigns=..., groups=..., ads=...,
    ...     suggestions=..., transactions=RepositoryTransactions(repo_factory))

    Without ``transactions``, :meth:`apply` still refuses a suggestion that is
    not pending before changing anything, but the change and the status update
    are two transactions (see :meth:`apply`).
    """

    def __init__(
        self,
        *,
        analytics: AnalyticsRepository,
        campaigns: CampaignRepository,
        groups: GroupRepository,
        ads: AdsRepository,
        suggestions: OptimizationRepository,
        rules: OptimizationRules | None = None,
        transactions: TransactionRunner | None = None,
    ) -> None:
        self.analytics = analytics
        self.campaigns = campaigns
        self.groups = groups
        self.ads = ads
        self.suggestions = suggestions
        self.rules = rules or OptimizationRules()
        self.transactions = transactions

    # --- deriving -----------------------------------------------------------------

    async def suggest(self, user_id: int, *, end_date: dt.date) -> list[OptimizationSuggestion]:
        """Every suggestion the rules find for the user's data up to ``end_date`` (not stored)."""
        found = [
            *await self._budget_suggestions(user_id, end_date),
            *await self._creative_suggestions(user_id, end_date),
            *await self._pause_suggestions(user_id, end_date),
        ]
        return sorted(found, key=lambda s: s.score, reverse=True)

    async def _budget_suggestions(self, user_id: int, end: dt.date) -> list[OptimizationSuggestion]:
        rules = self.rules
        start = end - dt.timedelta(days=rules.lookback_days - 1)
        out: list[OptimizationSuggestion] = []
        async for campaign in _all_pages(
            self.campaigns.list, user_id=user_id, filters=CampaignFilter(status=Status.ACTIVE)
        ):
            budget = campaign.daily_budget_micros
            if budget <= 0:
                continue
            series = await self.analytics.daily_series(
                user_id=user_id, start_date=start, end_date=end, campaign_id=campaign.id
            )
            active_days = [p for p in series if p.totals.cost_micros > 0]
            capped = [
                p for p in active_days if p.totals.cost_micros >= budget * rules.budget_utilization
            ]
            if not active_days or len(capped) < rules.budget_capped_share_of_days * len(
                active_days
            ):
                continue
            totals = sum((p.totals for p in active_days), start=MetricTotals())
            roas = totals.metrics.roas
            if roas is None or roas < rules.target_roas:
                continue
            new_budget = round(budget * (1 + rules.budget_increase))
            extra_spend = new_budget - budget
            out.append(
                OptimizationSuggestion(
                    user_id=user_id,
                    campaign_id=_id(campaign),
                    type=SuggestionType.BUDGET,
                    title=f"Raise the daily budget of {campaign.name!r} by "
                    f"{rules.budget_increase:.0%}",
                    payload={"daily_budget_micros": new_budget},
                    evidence={
                        "start_date": start.isoformat(),
                        "end_date": end.isoformat(),
                        "daily_budget_micros": budget,
                        "days_with_spend": len(active_days),
                        "days_budget_capped": len(capped),
                        "roas": roas,
                        "target_roas": rules.target_roas,
                        "cost_micros": totals.cost_micros,
                        "conversion_value_micros": totals.conversion_value_micros,
                    },
                    expected_impact={
                        "extra_daily_spend_micros": extra_spend,
                        # Assumes the marginal spend keeps the period's ROAS: an upper bound.
                        "extra_daily_conversion_value_micros": round(extra_spend * roas),
                        "assumption": "marginal spend performs at the period's ROAS",
                    },
                    score=round(roas / rules.target_roas, 4),
                )
            )
        return out

    async def _creative_suggestions(
        self, user_id: int, end: dt.date
    ) -> list[OptimizationSuggestion]:
        rules = self.rules
        start = end - dt.timedelta(days=rules.lookback_days - 1)
        out: list[OptimizationSuggestion] = []
        for group in await self.analytics.summaries(
            "group", user_id=user_id, start_date=start, end_date=end
        ):
            group_ctr = group.totals.metrics.ctr
            if not group_ctr:
                continue
            ads = await self.analytics.summaries(
                "ad", user_id=user_id, start_date=start, end_date=end, group_id=group.id
            )
            if len(ads) < 2:  # an ad cannot lag a group of one
                continue
            for ad in ads:
                ad_ctr = ad.totals.metrics.ctr
                if ad.totals.impressions < rules.min_impressions or ad_ctr is None:
                    continue
                if ad_ctr >= rules.creative_ctr_ratio * group_ctr:
                    continue
                entity = await self.ads.get_by_id(ad.id, user_id=user_id)
                if entity is None:
                    continue
                out.append(
                    OptimizationSuggestion(
                        user_id=user_id,
                        campaign_id=entity.campaign_id,
                        group_id=entity.group_id,
                        ad_id=ad.id,
                        type=SuggestionType.CREATIVE,
                        title=f"Refresh the creative of {ad.name!r}",
                        payload={"action": "refresh_creative", "ad_id": ad.id},
                        evidence={
                            "start_date": start.isoformat(),
                            "end_date": end.isoformat(),
                            "ad_ctr": ad_ctr,
                            "group_ctr": group_ctr,
                            "ad_impressions": ad.totals.impressions,
                            "ad_clicks": ad.totals.clicks,
                        },
                        expected_impact={
                            "extra_clicks_at_group_ctr": round(
                                ad.totals.impressions * (group_ctr - ad_ctr)
                            ),
                        },
                        score=round(1 - ad_ctr / group_ctr, 4),
                    )
                )
        return out

    async def _pause_suggestions(self, user_id: int, end: dt.date) -> list[OptimizationSuggestion]:
        rules = self.rules
        start = end - dt.timedelta(days=rules.pause_days - 1)
        out: list[OptimizationSuggestion] = []
        for ad in await self.analytics.summaries(
            "ad", user_id=user_id, start_date=start, end_date=end
        ):
            totals = ad.totals
            if totals.conversions > Decimal(0) or totals.cost_micros < rules.pause_min_spend_micros:
                continue
            entity = await self.ads.get_by_id(ad.id, user_id=user_id)
            if entity is None or entity.status is not Status.ACTIVE:
                continue
            out.append(
                OptimizationSuggestion(
                    user_id=user_id,
                    campaign_id=entity.campaign_id,
                    group_id=entity.group_id,
                    ad_id=ad.id,
                    type=SuggestionType.PAUSE,
                    title=f"Pause {ad.name!r}: spend with no conversion in {rules.pause_days} days",
                    payload={"status": Status.PAUSED.value},
                    evidence={
                        "start_date": start.isoformat(),
                        "end_date": end.isoformat(),
                        "cost_micros": totals.cost_micros,
                        "clicks": totals.clicks,
                        "conversions": str(totals.conversions),
                    },
                    expected_impact={
                        "daily_savings_micros": totals.cost_micros // rules.pause_days,
                    },
                    score=round(totals.cost_micros / rules.pause_min_spend_micros, 4),
                )
            )
        return out

    # --- storing and acting -----------------------------------------------------------

    async def generate(self, user_id: int, *, end_date: dt.date) -> list[OptimizationSuggestion]:
        """Derive suggestions and store those not already pending for the same target."""
        pending = {
            _target(s)
            async for s in _all_pages(
                self.suggestions.list,
                user_id=user_id,
                filters=SuggestionFilter(status=SuggestionStatus.PENDING),
            )
        }
        stored: list[OptimizationSuggestion] = []
        for suggestion in await self.suggest(user_id, end_date=end_date):
            if _target(suggestion) in pending:
                continue
            pending.add(_target(suggestion))
            stored.append(await self.suggestions.create(suggestion))
        return stored

    async def apply(self, suggestion_id: int, *, user_id: int) -> OptimizationSuggestion:
        """Carry out a pending suggestion's change and mark it applied, in one transaction.

        Budget and pause suggestions change the campaign or ad; a creative
        refresh needs new creative work, so applying it only records the decision.
        A suggestion that is not pending is a ValidationError and nothing changes.

        Without ``transactions`` the two writes are separate: a failure between
        them leaves the change made and the suggestion pending. Both changes
        set absolute values, so calling ``apply`` again completes it.
        """
        if self.transactions is None:
            return await _apply(
                self.suggestions, self.campaigns, self.ads, suggestion_id, user_id=user_id
            )

        def in_transaction(r: TransactionRepositories) -> Awaitable[OptimizationSuggestion]:
            return _apply(r.optimization, r.campaigns, r.ads, suggestion_id, user_id=user_id)

        return await self.transactions.run(in_transaction)


async def _apply(
    suggestions: OptimizationRepository,
    campaigns: CampaignRepository,
    ads: AdsRepository,
    suggestion_id: int,
    *,
    user_id: int,
) -> OptimizationSuggestion:
    suggestion = await suggestions.get_by_id(suggestion_id, user_id=user_id)
    if suggestion is None:
        raise NotFoundError("suggestion", suggestion_id, user_id=user_id)
    # Checked before the change: the status update would refuse it anyway,
    # but only after the campaign or ad had been changed.
    if suggestion.status is not SuggestionStatus.PENDING:
        raise ValidationError(
            "status",
            f"suggestion {suggestion_id} is already {suggestion.status}; only pending "
            "suggestions can be applied (generate() derives new ones)",
            entity="suggestion",
        )
    if suggestion.type is SuggestionType.BUDGET:
        await campaigns.update(suggestion.campaign_id, suggestion.payload, user_id=user_id)
    elif suggestion.type is SuggestionType.PAUSE and suggestion.ad_id is not None:
        await ads.update(suggestion.ad_id, suggestion.payload, user_id=user_id)
    return await suggestions.apply(suggestion_id, user_id=user_id)


def _id(entity: Campaign | AdGroup | Ad) -> int:
    if entity.id is None:
        raise ValidationError("id", "entity has not been stored yet", entity=type(entity).__name__)
    return entity.id


def _target(s: OptimizationSuggestion) -> tuple[Any, ...]:
    return (s.type, s.campaign_id, s.group_id, s.ad_id)
