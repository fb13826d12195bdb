"""OptimizationService.apply: pending suggestions only; change and status commit together."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from ads_infra.adapters import RepositoryTransactions
from ads_infra.cache import CacheConfig, CacheManager
from ads_infra.domain.entities import (
    OptimizationSuggestion,
    Status,
    SuggestionStatus,
    SuggestionType,
)
from ads_infra.domain.errors import ValidationError
from ads_infra.domain.ports import TransactionRepositories, TransactionRunner
from ads_infra.domain.repositories import OptimizationRepository
from ads_infra.domain.services import OptimizationService
from ads_infra.repositories import RepositoryFactory
from tests.integration.repositories.conftest import Tree, make_tree

USER = 31
BUDGET, RAISED = 10_000_000, 12_000_000
T = TypeVar("T")


def service(
    factory: RepositoryFactory, transactions: TransactionRunner | None
) -> OptimizationService:
    return OptimizationService(
        analytics=factory.create_analytics_repository(),
        campaigns=factory.create_campaign_repository(),
        groups=factory.create_group_repository(),
        ads=factory.create_ads_repository(),
        suggestions=factory.create_optimization_repository(),
        transactions=transactions,
    )


async def suggestion_for(
    factory: RepositoryFactory, tree: Tree, kind: SuggestionType
) -> OptimizationSuggestion:
    assert tree.campaign.id and tree.ad.id
    if kind is SuggestionType.BUDGET:
        s = OptimizationSuggestion(
            user_id=USER, campaign_id=tree.campaign.id, type=kind,
            payload={"daily_budget_micros": RAISED},
        )  # fmt: skip
    else:
        s = OptimizationSuggestion(
            user_id=USER, campaign_id=tree.campaign.id, group_id=tree.group.id,
            ad_id=tree.ad.id, type=kind, payload={"status": Status.PAUSED.value},
        )  # fmt: skip
    return await factory.create_optimization_repository().create(s)


async def assert_untouched(factory: RepositoryFactory, tree: Tree) -> None:
    assert tree.campaign.id and tree.ad.id
    assert tree.ad.status is not Status.PAUSED  # so a pause would show
    campaign = await factory.create_campaign_repository().get_by_id(tree.campaign.id, user_id=USER)
    ad = await factory.create_ads_repository().get_by_id(tree.ad.id, user_id=USER)
    assert campaign is not None and campaign.daily_budget_micros == BUDGET
    assert ad is not None and ad.status == tree.ad.status


@pytest.mark.parametrize("atomic", [True, False], ids=["transactions", "no-transactions"])
@pytest.mark.parametrize("resolved", ["dismiss", "apply"])
@pytest.mark.parametrize("kind", [SuggestionType.BUDGET, SuggestionType.PAUSE])
async def test_a_suggestion_that_is_not_pending_is_refused_and_changes_nothing(
    factory: RepositoryFactory, atomic: bool, resolved: str, kind: SuggestionType
) -> None:
    tree = await make_tree(factory, USER)
    opt = factory.create_optimization_repository()
    suggestion = await suggestion_for(factory, tree, kind)
    assert suggestion.id
    before = await getattr(opt, resolved)(suggestion.id, user_id=USER)

    svc = service(factory, RepositoryTransactions(factory) if atomic else None)
    with pytest.raises(ValidationError) as exc:
        await svc.apply(suggestion.id, user_id=USER)
    assert exc.value.field == "status"
    assert str(before.status) in str(exc.value) and "only pending" in str(exc.value)
    await assert_untouched(factory, tree)
    assert await opt.get_by_id(suggestion.id, user_id=USER) == before


class FailingStatusUpdate:
    """A TransactionRunner whose status update fails after the campaign/ad change was written."""

    def __init__(self, factory: RepositoryFactory) -> None:
        self.inner = RepositoryTransactions(factory)
        self.changed_first = False

    async def run(self, fn: Callable[[TransactionRepositories], Awaitable[T]]) -> T:
        runner = self

        class Optimization:
            def __init__(self, real: OptimizationRepository) -> None:
                self.real = real

            async def get_by_id(self, suggestion_id: int, *, user_id: int) -> Any:
                return await self.real.get_by_id(suggestion_id, user_id=user_id)

            async def apply(self, suggestion_id: int, *, user_id: int) -> Any:
                runner.changed_first = True
                raise RuntimeError("connection lost before the status update")

        @dataclasses.dataclass
        class Broken:
            campaigns: Any
            ads: Any
            optimization: Any

        async def failing(repos: TransactionRepositories) -> T:
            return await fn(Broken(repos.campaigns, repos.ads, Optimization(repos.optimization)))

        return await self.inner.run(failing)


@pytest.mark.parametrize("kind", [SuggestionType.BUDGET, SuggestionType.PAUSE])
async def test_a_failure_between_the_change_and_the_status_update_leaves_both_unchanged(
    factory: RepositoryFactory, kind: SuggestionType
) -> None:
    tree = await make_tree(factory, USER)
    suggestion = await suggestion_for(factory, tree, kind)
    assert suggestion.id
    runner = FailingStatusUpdate(factory)
    with pytest.raises(RuntimeError, match="before the status update"):
        await service(factory, runner).apply(suggestion.id, user_id=USER)
    assert runner.changed_first  # the failure did come between the two writes
    await assert_untouched(factory, tree)
    stored = await factory.create_optimization_repository().get_by_id(suggestion.id, user_id=USER)
    assert stored is not None and stored.status is SuggestionStatus.PENDING


async def test_applying_in_one_transaction_changes_both_and_drops_the_cached_rows(
    factory: RepositoryFactory, namespace: str
) -> None:
    cache = CacheManager(CacheConfig(namespace=namespace))
    await cache.start()
    cached = RepositoryFactory(factory.db_manager, cache)
    tree = await make_tree(cached, USER)
    assert tree.campaign.id
    suggestion = await suggestion_for(cached, tree, SuggestionType.BUDGET)
    assert suggestion.id
    campaigns, opt = cached.create_campaign_repository(), cached.create_optimization_repository()
    await campaigns.get_by_id(tree.campaign.id, user_id=USER)  # now cached
    await opt.get_by_id(suggestion.id, user_id=USER)

    applied = await service(cached, RepositoryTransactions(cached)).apply(
        suggestion.id, user_id=USER
    )
    assert applied.status is SuggestionStatus.APPLIED and applied.applied_at is not None
    campaign = await campaigns.get_by_id(tree.campaign.id, user_id=USER)
    assert campaign is not None and campaign.daily_budget_micros == RAISED
    stored = await opt.get_by_id(suggestion.id, user_id=USER)
    assert stored is not None and stored.status is SuggestionStatus.APPLIED
    await cache.close()
