"""A realistic, deterministic demo data set: users, campaigns, groups, ads, 90 days of performance.

Pure and seeded (``random.Random(seed)``): the same seed gives the same data,
so the demo's report can be compared between runs and backends. The set is
shaped so that each optimization rule has something to find: per user one
campaign is budget-capped at a high ROAS, one ad lags its group's CTR and
one ad spends without converting.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import struct
import zlib
from collections.abc import Iterator
from decimal import Decimal

from ads_infra.domain.entities import (
    Ad,
    AdGroup,
    AdType,
    BidStrategy,
    Campaign,
    Objective,
    PerformanceRecord,
    Status,
)

MICROS = 1_000_000

PRODUCTS = (
    ("Trail running shoes", "runners", "trail"),
    ("Noise-cancelling headphones", "commuters", "audio"),
    ("Cold brew coffee kit", "coffee lovers", "coffee"),
    ("Standing desk", "remote workers", "desk"),
    ("Smart water bottle", "gym goers", "hydration"),
    ("Merino wool socks", "hikers", "socks"),
    ("Mechanical keyboard", "developers", "keyboard"),
    ("Yoga mat", "yoga beginners", "yoga"),
    ("Indoor herb garden", "home cooks", "garden"),
)


@dataclasses.dataclass(frozen=True)
class AdProfile:
    """How an ad performs per day: expected impressions, CTR, CPC, conversion rate, value."""

    impressions: int
    ctr: float
    cpc_micros: int
    conversion_rate: float
    value_per_conversion_micros: int


@dataclasses.dataclass
class AdPlan:
    ad: Ad
    profile: AdProfile


@dataclasses.dataclass
class GroupPlan:
    group: AdGroup
    ads: list[AdPlan]


@dataclasses.dataclass
class CampaignPlan:
    campaign: Campaign
    groups: list[GroupPlan]
    budget_capped: bool = False


@dataclasses.dataclass
class UserPlan:
    user_id: int
    campaigns: list[CampaignPlan]


@dataclasses.dataclass(frozen=True)
class DemoDataset:
    """The plan of what to create; ids are filled by the repositories on create."""

    users: list[UserPlan]
    end_date: dt.date
    days: int

    @property
    def start_date(self) -> dt.date:
        return self.end_date - dt.timedelta(days=self.days - 1)

    @property
    def counts(self) -> dict[str, int]:
        campaigns = [c for u in self.users for c in u.campaigns]
        groups = [g for c in campaigns for g in c.groups]
        ads = [a for g in groups for a in g.ads]
        return {
            "users": len(self.users),
            "campaigns": len(campaigns),
            "groups": len(groups),
            "ads": len(ads),
            "performance_rows": len(ads) * self.days,
        }


def build_dataset(
    *,
    users: int = 3,
    campaigns_per_user: int = 3,
    groups_per_campaign: int = 2,
    ads_per_group: int = 3,
    days: int = 90,
    end_date: dt.date | None = None,
    seed: int = 7,
    first_user_id: int = 1001,
) -> DemoDataset:
    """Plan the data set; entities carry placeholder ids (0) for their parents."""
    rng = random.Random(seed)
    end = end_date or dt.date.today() - dt.timedelta(days=1)
    start = end - dt.timedelta(days=days - 1)
    plans: list[UserPlan] = []
    for u in range(users):
        user_id = first_user_id + u
        campaigns: list[CampaignPlan] = []
        for c in range(campaigns_per_user):
            product, audience, _ = PRODUCTS[(u * campaigns_per_user + c) % len(PRODUCTS)]
            capped = c == 0  # the first campaign of every user is budget-capped
            groups: list[GroupPlan] = []
            for g in range(groups_per_campaign):
                ads: list[AdPlan] = []
                for a in range(ads_per_group):
                    profile = _profile(rng, capped=capped)
                    if c == 1 and g == 0 and a == 0:  # lags its group's CTR
                        profile = dataclasses.replace(profile, ctr=profile.ctr * 0.15)
                    if c == 2 and g == 0 and a == 0:  # spends, never converts
                        profile = dataclasses.replace(profile, conversion_rate=0.0)
                    ads.append(
                        AdPlan(
                            Ad(
                                user_id=user_id,
                                campaign_id=0,
                                group_id=0,
                                name=f"{product} — ad {a + 1}",
                                ad_type=rng.choice([AdType.TEXT, AdType.IMAGE, AdType.RESPONSIVE]),
                                status=Status.ACTIVE,
                                headline=f"{product} for {audience}"[:30],
                                description=f"Made for {audience}. Free returns.",
                                final_url=f"https://shop.example/{_slug(product)}",
                                metadata={"variant": a + 1},
                            ),
                            profile,
                        )
                    )
                groups.append(
                    GroupPlan(
                        AdGroup(
                            user_id=user_id,
                            campaign_id=0,
                            name=f"{product} — {('broad', 'exact', 'retargeting')[g % 3]}",
                            status=Status.ACTIVE,
                            targeting={"audience": audience, "geo": ["US", "CA"]},
                            bid_strategy=BidStrategy.MANUAL_CPC,
                            bid_amount_micros=rng.randint(5, 20) * 100_000,
                        ),
                        ads,
                    )
                )
            natural = sum(
                a.profile.impressions * a.profile.ctr * a.profile.cpc_micros
                for grp in groups
                for a in grp.ads
            )
            budget = int(natural * 0.8) if capped else int(natural * 2.5)
            campaigns.append(
                CampaignPlan(
                    Campaign(
                        user_id=user_id,
                        name=f"{product} {('Q3 push', 'evergreen', 'launch')[c % 3]}",
                        objective=rng.choice([Objective.SALES, Objective.TRAFFIC, Objective.LEADS]),
                        status=Status.ACTIVE,
                        daily_budget_micros=budget // MICROS * MICROS,
                        total_budget_micros=budget // MICROS * MICROS * (days + 30),
                        currency="USD",
                        start_date=start,
                        end_date=end + dt.timedelta(days=30),
                    ),
                    groups,
                    budget_capped=capped,
                )
            )
        plans.append(UserPlan(user_id, campaigns))
    return DemoDataset(plans, end, days)


def _profile(rng: random.Random, *, capped: bool) -> AdProfile:
    return AdProfile(
        impressions=rng.randint(800, 4000),
        ctr=rng.uniform(0.015, 0.05),
        cpc_micros=rng.randint(4, 15) * 100_000,
        conversion_rate=rng.uniform(0.06, 0.1) if capped else rng.uniform(0.01, 0.06),
        value_per_conversion_micros=rng.randint(40, 90) * MICROS
        if capped
        else rng.randint(10, 40) * MICROS,
    )


def campaign_performance(
    plan: CampaignPlan, dataset: DemoDataset, *, seed: int = 11
) -> Iterator[PerformanceRecord]:
    """Daily rows of every ad of a stored campaign (ids set), capped by its daily budget."""
    campaign = plan.campaign
    rng = random.Random(f"{seed}:{campaign.id}")
    budget = campaign.daily_budget_micros
    for offset in range(dataset.days):
        day = dataset.start_date + dt.timedelta(days=offset)
        weekday = 0.8 if day.weekday() >= 5 else 1.0
        rows = [_day(rng, a.ad, a.profile, day, weekday) for grp in plan.groups for a in grp.ads]
        spent = sum(r.cost_micros for r in rows)
        if budget and spent > budget:  # delivery stops at the budget: scale the day down
            share = budget / spent
            rows = [_scaled(r, share) for r in rows]
        yield from rows


def _day(
    rng: random.Random, ad: Ad, p: AdProfile, day: dt.date, weekday: float
) -> PerformanceRecord:
    impressions = max(0, int(rng.gauss(p.impressions * weekday, p.impressions * 0.1)))
    expected_clicks = impressions * p.ctr
    clicks = max(0, round(rng.gauss(expected_clicks, expected_clicks**0.5)))
    conversions = (
        max(0, round(rng.gauss(clicks * p.conversion_rate, 1))) if p.conversion_rate else 0
    )
    cost = clicks * p.cpc_micros
    return PerformanceRecord(
        ad_id=_required(ad.id),
        date=day,
        user_id=ad.user_id,
        campaign_id=ad.campaign_id,
        group_id=ad.group_id,
        impressions=impressions,
        clicks=min(clicks, impressions),
        conversions=Decimal(conversions),
        cost_micros=cost,
        conversion_value_micros=conversions * p.value_per_conversion_micros,
    )


def _scaled(r: PerformanceRecord, share: float) -> PerformanceRecord:
    clicks = int(r.clicks * share)
    return dataclasses.replace(
        r,
        impressions=int(r.impressions * share),
        clicks=clicks,
        conversions=Decimal(int(r.conversions * Decimal(share))),
        cost_micros=int(r.cost_micros * share),
        conversion_value_micros=int(r.conversion_value_micros * share),
    )


def _slug(text: str) -> str:
    return text.lower().replace(" ", "-")


def _required(value: int | None) -> int:
    if value is None:
        raise ValueError("store the ad before generating its performance")
    return value


def tiny_png(seed: int) -> bytes:
    """A valid 8x8 PNG whose colour depends on ``seed`` (creatives must pass magic checks)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    colour = bytes(((seed * 67) % 256, (seed * 131) % 256, (seed * 29) % 256))
    raw = b"".join(b"\x00" + colour * 8 for _ in range(8))
    header = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
