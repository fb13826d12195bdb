"""HTTP endpoints: campaigns, ads, analytics, health and metrics, injected from the container.

Repositories are typed as the domain's interfaces: the endpoints rely on the
contract, not on the SQLAlchemy implementations the container happens to build.

Each dependency is an ``async def`` that calls the container's provider (the
app's ``state.container``) for the request: FastAPI awaits it on the event
loop. ``Depends(Provide[...])`` under ``@inject`` did the same work at a far
higher price per request: FastAPI runs the sync ``Provide`` marker in its
thread pool (a thread hop per marker), then the ``@inject`` wrapper resolves
the providers again. Calling the provider per request (rather than once at
startup) keeps ``provider.override(...)`` working while the app runs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
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


def provided(path: str) -> Callable[[Request], Awaitable[Any]]:
    """A FastAPI dependency: the container's provider at ``path`` ("domain.ad_service"), called.

    ``async def``, so FastAPI awaits it on the loop instead of the thread pool;
    the provider is called per request, so an override made while the app
    runs takes effect on the next request.
    """
    names = path.split(".")

    async def dependency(request: Request) -> Any:
        provider = request.app.state.container
        for name in names:
            provider = getattr(provider, name)
        return provider()

    dependency.__name__ = f"provided_{'_'.join(names)}"
    return dependency


Campaigns = Annotated[CampaignRepository, Depends(provided("repositories.campaigns"))]
Analytics = Annotated[AnalyticsRepository, Depends(provided("repositories.analytics"))]
Ads = Annotated[AdService, Depends(provided("domain.ad_service"))]

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
async def create_campaign(
    body: CampaignIn,
    user_id: UserId,
    campaigns: Campaigns,
) -> dict[str, Any]:
    campaign = await campaigns.create(Campaign(user_id=user_id, **body.model_dump()))
    return to_json_dict(campaign)


@router.get("/campaigns")
async def list_campaigns(
    user_id: UserId,
    campaigns: Campaigns,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    page = await campaigns.list(user_id=user_id, cursor=cursor, limit=limit)
    return {"items": [to_json_dict(c) for c in page.items], "next_cursor": page.next_cursor}


@router.get("/campaigns/{campaign_id}")
async def get_campaign(
    campaign_id: int,
    user_id: UserId,
    campaigns: Campaigns,
) -> dict[str, Any]:
    campaign = await campaigns.get_by_id(campaign_id, user_id=user_id)
    if campaign is None:
        raise NotFoundError("campaign", campaign_id, user_id=user_id)
    return to_json_dict(campaign)


@router.post("/ads", status_code=201)
async def create_ad(
    body: AdIn,
    user_id: UserId,
    service: Ads,
) -> dict[str, Any]:
    fields = body.model_dump(exclude={"generate_copy_for"})
    ad = Ad(user_id=user_id, **fields)
    if body.generate_copy_for:
        created = await service.create_ad_with_copy(ad, CopyBrief(product=body.generate_copy_for))
    else:
        created = await service.create_ad(ad)
    return to_json_dict(created)


@router.get("/ads/{ad_id}")
async def get_ad(
    ad_id: int,
    user_id: UserId,
    service: Ads,
) -> dict[str, Any]:
    return to_json_dict(await service.get_ad(ad_id, user_id=user_id))


@router.get("/analytics/campaigns")
async def campaign_analytics(
    user_id: UserId,
    start_date: dt.date,
    end_date: dt.date,
    analytics: Analytics,
) -> list[dict[str, Any]]:
    summaries = await analytics.summaries(
        "campaign", user_id=user_id, start_date=start_date, end_date=end_date
    )
    return [s.to_dict() for s in summaries]


@router.get("/health")
async def health(
    response: Response,
    database: Annotated[Any, Depends(provided("database.manager"))],
    cache: Annotated[Any, Depends(provided("cache.manager"))],
    storage: Annotated[Any, Depends(provided("storage.manager"))],
    services: Annotated[Any, Depends(provided("services.manager"))],
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
async def metrics(
    registry: Annotated[CollectorRegistry, Depends(provided("metrics"))],
) -> Response:
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
