"""create, get_by_id, update, delete, list with filters, ordering whitelist, keyset pages, count."""

from __future__ import annotations

import datetime as dt

import pytest

from ads_infra.domain.entities import (
    Ad,
    AdGroup,
    Campaign,
    Objective,
    OptimizationSuggestion,
    Status,
    SuggestionStatus,
    SuggestionType,
)
from ads_infra.domain.errors import NotFoundError, ValidationError
from ads_infra.domain.repositories import AdFilter, CampaignFilter, GroupFilter, SuggestionFilter
from ads_infra.errors import IntegrityViolationError
from ads_infra.repositories import RepositoryFactory
from tests.integration.repositories.conftest import make_tree

USER = 11


async def test_campaign_round_trip(factory: RepositoryFactory) -> None:
    repo = factory.create_campaign_repository()
    created = await repo.create(
        Campaign(
            user_id=USER,
            name="Summer",
            objective=Objective.SALES,
            daily_budget_micros=12_500_000,
            total_budget_micros=500_000_000,
            currency="eur",
            start_date=dt.date(2024, 6, 1),
            end_date=dt.date(2024, 8, 31),
        )
    )
    assert created.id is not None and created.created_at is not None
    assert created.currency == "EUR"
    loaded = await repo.get_by_id(created.id, user_id=USER)
    assert loaded == created
    assert loaded is not None and loaded.created_at is not None and loaded.created_at.tzinfo

    updated = await repo.update(
        created.id, {"status": Status.ACTIVE, "name": "Summer!"}, user_id=USER
    )
    assert updated.status is Status.ACTIVE and updated.name == "Summer!"
    assert updated.updated_at is not None and updated.updated_at >= created.created_at  # type: ignore[operator]
    assert await repo.get_by_id(created.id, user_id=USER) == updated

    await repo.delete(created.id, user_id=USER)
    assert await repo.get_by_id(created.id, user_id=USER) is None
    with pytest.raises(NotFoundError):
        await repo.delete(created.id, user_id=USER)
    with pytest.raises(NotFoundError):
        await repo.update(created.id, {"name": "x"}, user_id=USER)


# JSON values of every shape the columns take: nested, unicode beyond the BMP, escapes,
# numbers at the edges of what JSON and int64 hold, empty containers.
AWKWARD_JSON = {
    "tags": ["été", "日本", "🎯", 'quote " and \\ backslash', "tab\tnewline\n"],
    "nested": {"deep": [[{"k": None}], {}, []], "flag": False},
    "numbers": [0, -1, 2**63 - 1, -(2**63 - 1), 1.5, 1e-300, 12345.678901],
}


async def test_json_columns_round_trip_on_every_path(factory: RepositoryFactory) -> None:
    tree = await make_tree(factory, USER)
    ads = factory.create_ads_repository()
    assert tree.ad.id is not None
    updated = await ads.update(tree.ad.id, {"metadata": AWKWARD_JSON}, user_id=USER)
    assert updated.metadata == AWKWARD_JSON
    assert (await ads.get_by_id(tree.ad.id, user_id=USER)) == updated
    created = await ads.create(
        Ad(user_id=USER, campaign_id=tree.campaign.id, group_id=tree.group.id, name="json",
           metadata=AWKWARD_JSON)
    )  # fmt: skip
    page = await ads.list(user_id=USER)
    assert {a.id: a.metadata for a in page.items} == {
        tree.ad.id: AWKWARD_JSON,
        created.id: AWKWARD_JSON,
    }


async def test_group_ad_and_suggestion_round_trip(factory: RepositoryFactory) -> None:
    tree = await make_tree(factory, USER)
    groups, ads, opt = (factory.create_group_repository(), factory.create_ads_repository(),
                        factory.create_optimization_repository())  # fmt: skip
    assert tree.group.id and tree.ad.id and tree.campaign.id
    changes = {"targeting": {"geo": ["DE"]}, "bid_amount_micros": 900_000}
    group = await groups.update(tree.group.id, changes, user_id=USER)
    assert (await groups.get_by_id(tree.group.id, user_id=USER)) == group
    assert group.targeting == {"geo": ["DE"]}

    ad = await ads.update(
        tree.ad.id, {"metadata": {"tags": ["a", "b"]}, "headline": "New"}, user_id=USER
    )
    assert (await ads.get_by_id(tree.ad.id, user_id=USER)) == ad

    s = await opt.create(
        OptimizationSuggestion(user_id=USER, campaign_id=tree.campaign.id, group_id=tree.group.id,
                               ad_id=tree.ad.id, type=SuggestionType.CREATIVE, score=0.8,
                               payload={"refresh": True}, evidence={"ctr": 0.001},
                               expected_impact={"ctr": "+50%"})
    )  # fmt: skip
    assert s.id is not None
    assert await opt.get_by_id(s.id, user_id=USER) == s
    applied = await opt.apply(s.id, user_id=USER)
    assert applied.status is SuggestionStatus.APPLIED and applied.applied_at is not None
    assert await opt.get_by_id(s.id, user_id=USER) == applied
    with pytest.raises(ValidationError) as exc:
        await opt.dismiss(s.id, user_id=USER)  # already applied
    assert exc.value.field == "status"

    other = await opt.create(OptimizationSuggestion(user_id=USER, campaign_id=tree.campaign.id,
                                                    type=SuggestionType.BUDGET))  # fmt: skip
    assert other.id is not None
    dismissed = await opt.dismiss(other.id, user_id=USER)
    assert dismissed.status is SuggestionStatus.DISMISSED and dismissed.dismissed_at is not None
    pending = await opt.count(
        user_id=USER, filters=SuggestionFilter(status=SuggestionStatus.PENDING)
    )
    assert pending == 0

    await ads.delete(tree.ad.id, user_id=USER)
    assert await ads.get_by_id(tree.ad.id, user_id=USER) is None


async def test_deleting_a_campaign_deletes_what_is_under_it(factory: RepositoryFactory) -> None:
    tree = await make_tree(factory, USER)
    assert tree.campaign.id and tree.ad.id and tree.group.id
    await factory.create_campaign_repository().delete(tree.campaign.id, user_id=USER)
    assert await factory.create_group_repository().get_by_id(tree.group.id, user_id=USER) is None
    assert await factory.create_ads_repository().get_by_id(tree.ad.id, user_id=USER) is None


async def test_invalid_writes_name_the_field_and_write_nothing(factory: RepositoryFactory) -> None:
    repo = factory.create_campaign_repository()
    with pytest.raises(ValidationError) as exc:
        await repo.create(Campaign(user_id=USER, name="x", daily_budget_micros=-1))
    assert exc.value.field == "daily_budget_micros"
    with pytest.raises(ValidationError) as exc:
        await repo.create(Campaign(user_id=USER, name="x", status="live"))  # type: ignore[arg-type]
    assert exc.value.field == "status"
    assert await repo.count(user_id=USER) == 0

    tree = await make_tree(factory, USER)
    assert tree.campaign.id and tree.group.id
    ads = factory.create_ads_repository()
    with pytest.raises(ValidationError) as exc:
        await ads.create(Ad(user_id=USER, campaign_id=tree.campaign.id, group_id=tree.group.id,
                            name="x" * 300))  # fmt: skip
    assert exc.value.field == "name"
    with pytest.raises(ValidationError) as exc:
        await ads.update(tree.ad.id or 0, {"final_url": "javascript:alert(1)"}, user_id=USER)
    assert exc.value.field == "final_url"
    other = await factory.create_campaign_repository().create(Campaign(user_id=USER, name="other"))
    assert other.id
    with pytest.raises(ValidationError) as exc:  # the group is not in that campaign
        await ads.create(Ad(user_id=USER, campaign_id=other.id, group_id=tree.group.id, name="x"))
    assert exc.value.field == "campaign_id"
    assert await ads.count(user_id=USER) == 1
    loaded = await ads.get_by_id(tree.ad.id or 0, user_id=USER)
    assert loaded is not None and loaded.final_url == "https://example.com/landing"


async def test_database_constraints_back_the_domain_checks(factory: RepositoryFactory) -> None:
    """A write that skips validation still cannot break the CHECKs."""
    from sqlalchemy import insert

    from ads_infra.database.tables import campaigns

    now = dt.datetime.now(dt.UTC)
    with pytest.raises(IntegrityViolationError):
        async with factory.db_manager.get_session() as session:
            await session.execute(insert(campaigns).values(
                user_id=USER, name="x", objective="sales", status="draft", daily_budget_micros=-5,
                currency="USD", created_at=now, updated_at=now))  # fmt: skip
    assert await factory.create_campaign_repository().count(user_id=USER) == 0


async def test_list_filters_order_and_keyset_pages(factory: RepositoryFactory) -> None:
    campaigns = factory.create_campaign_repository()
    names = ["delta", "alpha", "echo", "bravo", "charlie", "Alpha two", "golf"]
    for i, name in enumerate(names):
        status = Status.ACTIVE if i % 2 else Status.PAUSED
        await campaigns.create(
            Campaign(user_id=USER, name=name, daily_budget_micros=i % 3, status=status)
        )
    await campaigns.create(Campaign(user_id=USER + 1, name="alpha of someone else"))

    async def walk(order_by: str, limit: int, **kw: object) -> list[Campaign]:
        seen: list[Campaign] = []
        cursor = None
        while True:
            page = await campaigns.list(
                user_id=USER, order_by=order_by, limit=limit, cursor=cursor, **kw
            )  # type: ignore[arg-type]
            seen.extend(page.items)
            assert len(page) <= limit
            if page.next_cursor is None:
                return seen
            cursor = page.next_cursor

    by_id = await walk("id", 3)
    assert [c.name for c in by_id] == names
    by_id_desc = await walk("-id", 2)
    assert by_id_desc == list(reversed(by_id))
    by_budget = await walk("daily_budget_micros", 2)  # ties broken by id, no row twice
    assert [(c.daily_budget_micros, c.id) for c in by_budget] == sorted(
        (c.daily_budget_micros, c.id) for c in by_id
    )
    by_created_desc = await walk("-created_at", 4)
    assert [c.id for c in by_created_desc] == [c.id for c in reversed(by_id)]

    active = await walk("name", 10, filters=CampaignFilter(status=Status.ACTIVE))
    assert {c.name for c in active} == {names[i] for i in range(len(names)) if i % 2}
    alphas = await walk("id", 10, filters=CampaignFilter(name_contains="ALPHA"))
    assert [c.name for c in alphas] == ["alpha", "Alpha two"]
    assert await campaigns.count(user_id=USER) == len(names)
    assert await campaigns.count(user_id=USER, filters=CampaignFilter(status=Status.ACTIVE)) == 3
    assert await campaigns.count(user_id=USER, filters=CampaignFilter(name_contains="%")) == 0


async def test_ordering_outside_the_whitelist_and_foreign_cursors_are_refused(
    factory: RepositoryFactory,
) -> None:
    campaigns = factory.create_campaign_repository()
    for i in range(3):
        await campaigns.create(Campaign(user_id=USER, name=f"c{i}"))
    with pytest.raises(ValidationError) as exc:
        await campaigns.list(user_id=USER, order_by="user_id; DROP TABLE campaigns")
    assert exc.value.field == "order_by"
    page = await campaigns.list(user_id=USER, order_by="name", limit=1)
    assert page.next_cursor
    with pytest.raises(ValidationError) as exc:
        await campaigns.list(user_id=USER, order_by="id", cursor=page.next_cursor)
    assert exc.value.field == "cursor"
    with pytest.raises(ValidationError) as exc:
        await campaigns.list(user_id=USER, cursor="not-a-cursor!")
    assert exc.value.field == "cursor"
    with pytest.raises(ValidationError) as exc:
        await campaigns.list(user_id=USER, limit=0)
    assert exc.value.field == "limit"


async def test_group_and_ad_filters(factory: RepositoryFactory) -> None:
    a = await make_tree(factory, USER, "a")
    b = await make_tree(factory, USER, "b")
    groups, ads = factory.create_group_repository(), factory.create_ads_repository()
    got = await groups.list(user_id=USER, filters=GroupFilter(campaign_id=b.campaign.id))
    assert [g.id for g in got] == [b.group.id]
    got_ads = await ads.list(user_id=USER, filters=AdFilter(group_id=a.group.id))
    assert [x.id for x in got_ads] == [a.ad.id]
    assert await ads.count(user_id=USER, filters=AdFilter(campaign_id=b.campaign.id)) == 1
    assert await ads.count(user_id=USER, filters=AdFilter(status=Status.ACTIVE)) == 0
    assert isinstance(AdGroup, type)


@pytest.mark.parametrize("bad", ["123", 0, -4, 1.0, None, True, 2**63])
async def test_ids_that_are_not_positive_integers_are_refused_by_name(
    factory: RepositoryFactory, bad: object
) -> None:
    ads = factory.create_ads_repository()
    with pytest.raises(ValidationError) as exc:
        await ads.get_by_id(bad, user_id=USER)  # type: ignore[arg-type]
    assert exc.value.field == "id"
    with pytest.raises(ValidationError) as exc:
        await ads.get_by_id(1, user_id=bad)  # type: ignore[arg-type]
    assert exc.value.field == "user_id"
    with pytest.raises(ValidationError) as exc:
        await factory.create_optimization_repository().apply(bad, user_id=USER)  # type: ignore[arg-type]
    assert exc.value.field == "id"
