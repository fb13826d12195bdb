"""HTTP endpoints: campaigns, ads, analytics, health and metrics, injected from the container.

Repositories are typed as the domain's interfaces: the endpoints rely on the
contract, not on the SQLAlchemy implementations the container happens to build.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated, Any

from dependency_injector.wiring import Provide, inject
from fastapi import APIRouter, Depends, Header, Query, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, Field

from ads_infra.domain import Ad, Campaign, NotFoundError, to_json_dict
from ads_infra.domain.ports import CopyBrief
from ads_infra.domain.repositories import (
    AnalyticsRepository,
    CampaignRepository,
)
from ads_infra.domain.services import AdService

router = APIRouter()

# A stand-in for authentication: a real app takes the user from a verified token,
# never from a header the client sets.
UserId = Annotated[
    int,
    Header(
        alias="X-User-Id",
        description="The caller's user id (demo only: a stand-in for real authentication)",
        ge=1,
        le=2**63 - 1,
    ),
]


class CampaignIn(BaseModel):
    name: str
    objective: str = "traffic"
    status: str = "draft"
    daily_budget_micros: int = 0
    currency: str = "USD"
    start_date: dt.date | None = None
    end_date: dt.date | None = None


class AdIn(BaseModel):
    campaign_id: int
    group_id: int
    name: str
    headline: str = ""
    description: str = ""
    final_url: str | None = None
    generate_copy_for: str | None = Field(
        default=None, description="A product: the AI provider writes headline and description"
    )


@router.post("/campaigns", status_code=201)
@inject
async def create_campaign(
    body: CampaignIn,
    user_id: UserId,
    campaigns: CampaignRepository = Depends(Provide["repositories.campaigns"]),
) -> dict[str, Any]:
    campaign = await campaigns.create(Campaign(user_id=user_id, **body.model_dump()))
    return to_json_dict(campaign)


@router.get("/campaigns")
@inject
async def list_campaigns(
    user_id: UserId,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    campaigns: CampaignRepository = Depends(Provide["repositories.campaigns"]),
) -> dict[str, Any]:
    page = await campaigns.list(user_id=user_id, cursor=cursor, limit=limit)
    return {"items": [to_json_dict(c) for c in page.items], "next_cursor": page.next_cursor}


@router.get("/campaigns/{campaign_id}")
@inject
async def get_campaign(
    campaign_id: int,
    user_id: UserId,
    campaigns: CampaignRepository = Depends(Provide["repositories.campaigns"]),
) -> dict[str, Any]:
    campaign = await campaigns.get_by_id(campaign_id, user_id=user_id)
    if campaign is None:
        raise NotFoundError("campaign", campaign_id, user_id=user_id)
    return to_json_dict(campaign)


@router.post("/ads", status_code=201)
@inject
async def create_ad(
    body: AdIn,
    user_id: UserId,
    service: AdService = Depends(Provide["domain.ad_service"]),
) -> dict[str, Any]:
    fields = body.model_dump(exclude={"generate_copy_for"})
    ad = Ad(user_id=user_id, **fields)
    if body.generate_copy_for:
        created = await service.create_ad_with_copy(ad, CopyBrief(product=body.generate_copy_for))
    else:
        created = await service.create_ad(ad)
    return to_json_dict(created)


@router.get("/ads/{ad_id}")
@inject
async def get_ad(
    ad_id: int,
    user_id: UserId,
    service: AdService = Depends(Provide["domain.ad_service"]),
) -> dict[str, Any]:
    return to_json_dict(await service.get_ad(ad_id, user_id=user_id))


@router.get("/analytics/campaigns")
@inject
async def campaign_analytics(
    user_id: UserId,
    start_date: dt.date,
    end_date: dt.date,
    analytics: AnalyticsRepository = Depends(Provide["repositories.analytics"]),
) -> list[dict[str, Any]]:
    summaries = await analytics.summaries(
        "campaign", user_id=user_id, start_date=start_date, end_date=end_date
    )
    return [s.to_dict() for s in summaries]


@router.get("/health")
@inject
async def health(
    response: Response,
    database: Any = Depends(Provide["database.manager"]),
    cache: Any = Depends(Provide["cache.manager"]),
    storage: Any = Depends(Provide["storage.manager"]),
    services: Any = Depends(Provide["services.manager"]),
) -> dict[str, Any]:
    results = await asyncio.gather(
        database.health_check(), cache.health_check(), storage.health_check(),
        services.health_check(),
    )  # fmt: skip
    checks = [c for r in results for c in (r if isinstance(r, list) else [r])]
    healthy = all(c.healthy for c in checks)
    response.status_code = 200 if healthy else 503
    return {"healthy": healthy, "checks": [c.to_dict() for c in checks]}


@router.get("/metrics")
@inject
async def metrics(registry: CollectorRegistry = Depends(Provide["metrics"])) -> Response:
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
