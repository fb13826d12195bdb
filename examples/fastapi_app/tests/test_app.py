"""The example host app: endpoints over the container, overrides, health and metrics."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from dependency_injector import providers

from ads_infra.config import AIProviderConfig, DatabaseConfig
from ads_infra.domain import PerformanceRecord
from ads_infra.external_services import AIProviderService
from examples.fastapi_app.containers import AppContainer

ALICE = {"X-User-Id": "1"}
BOB = {"X-User-Id": "2"}


async def _campaign_and_group(
    client: httpx.AsyncClient, container: AppContainer
) -> tuple[int, int]:
    created = await client.post(
        "/campaigns", json={"name": "Launch", "daily_budget_micros": 5_000_000}, headers=ALICE
    )
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]
    from ads_infra.domain import AdGroup

    group = await container.repositories.groups().create(
        AdGroup(user_id=1, campaign_id=campaign_id, name="Broad")
    )
    return campaign_id, group.id


async def test_campaigns_are_created_listed_and_scoped_by_user(
    client: httpx.AsyncClient, container: AppContainer
) -> None:
    campaign_id, _ = await _campaign_and_group(client, container)
    got = await client.get(f"/campaigns/{campaign_id}", headers=ALICE)
    assert got.status_code == 200 and got.json()["name"] == "Launch"
    assert (await client.get(f"/campaigns/{campaign_id}", headers=BOB)).status_code == 404
    listed = await client.get("/campaigns", headers=ALICE)
    assert [c["id"] for c in listed.json()["items"]] == [campaign_id]
    assert (await client.get("/campaigns", headers=BOB)).json()["items"] == []


async def test_bad_input_is_a_422_naming_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/campaigns", json={"name": "X", "daily_budget_micros": -5}, headers=ALICE
    )
    assert response.status_code == 422
    assert response.json()["field"] == "daily_budget_micros"


def _openai_provider(container: AppContainer, url: str) -> providers.Singleton[Any]:
    """The AI service on an OpenAI-compatible server: what a test swaps in for ``services.ai``."""
    return providers.Singleton(
        AIProviderService,
        container.services.manager,
        config=AIProviderConfig(
            provider="openai",  # type: ignore[arg-type]
            base_url=url,
            api_key="sk-example",  # type: ignore[arg-type]
        ),
    )


async def _ad_with_generated_copy(
    client: httpx.AsyncClient, container: AppContainer, server: dict[str, Any]
) -> httpx.Response:
    campaign_id, group_id = await _campaign_and_group(client, container)
    with container.services.ai.override(_openai_provider(container, server["url"])):
        return await client.post(
            "/ads",
            json={
                "campaign_id": campaign_id,
                "group_id": group_id,
                "name": "Hero",
                "generate_copy_for": "Trail running shoes",
            },
            headers=ALICE,
        )


async def test_ads_get_copy_from_an_overridden_ai_provider(
    client: httpx.AsyncClient, container: AppContainer, openai_server: dict[str, Any]
) -> None:
    response = await _ad_with_generated_copy(client, container, openai_server)
    assert response.status_code == 201, response.text
    ad = response.json()
    assert ad["headline"] == "Run Further, Ache Less"
    assert ad["metadata"]["copy"]["provider"] == "openai"
    assert openai_server["seen"][0]["auth"] == "Bearer sk-example"
    assert "Trail running shoes" in str(openai_server["seen"][0]["body"]["messages"])
    assert (await client.get(f"/ads/{ad['id']}", headers=BOB)).status_code == 404


@pytest.mark.parametrize(
    ("content", "finish_reason", "why"),
    [
        (None, "stop", "content is empty"),
        ("Run Further, Ache", "length", "cut off at the token limit"),
        ("Run Further, Ache Less", "stop", "one line, not a headline and a description"),
        (None, "content_filter", "filtered"),
    ],
)
async def test_empty_or_cut_off_copy_is_a_502_and_no_ad(
    client: httpx.AsyncClient,
    container: AppContainer,
    openai_server: dict[str, Any],
    content: str | None,
    finish_reason: str,
    why: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Twice: a cut-off reply is asked for once more, with more tokens.
    openai_server["replies"].extend([(content, finish_reason)] * 2)
    response = await _ad_with_generated_copy(client, container, openai_server)
    assert response.status_code == 502, response.text  # an upstream's failure, not the input's
    # The client reads a fixed phrase (a 5xx's text is for the logs); the log says why.
    assert why in caplog.text and "nothing was stored" in caplog.text
    ads = container.repositories.ads()
    page = await ads.list(user_id=1)
    assert page.items == []


async def test_copy_cut_off_once_is_asked_again_with_more_tokens(
    client: httpx.AsyncClient, container: AppContainer, openai_server: dict[str, Any]
) -> None:
    openai_server["replies"].append(("Run Further, Ache", "length"))
    response = await _ad_with_generated_copy(client, container, openai_server)
    assert response.status_code == 201, response.text
    assert response.json()["headline"] == "Run Further, Ache Less"
    first, second = (hit["body"] for hit in openai_server["seen"])
    assert second["max_tokens"] == 4 * first["max_tokens"]


async def test_analytics_derives_metrics_from_sums(
    client: httpx.AsyncClient, container: AppContainer
) -> None:
    campaign_id, group_id = await _campaign_and_group(client, container)
    ad = await client.post(
        "/ads",
        json={"campaign_id": campaign_id, "group_id": group_id, "name": "A", "headline": "Hi"},
        headers=ALICE,
    )
    day = dt.date(2026, 11, 1)
    await container.repositories.performance().bulk_upsert(
        [
            PerformanceRecord(ad_id=ad.json()["id"], date=day, impressions=1000, clicks=50,
                              cost_micros=25_000_000, conversion_value_micros=100_000_000),
            PerformanceRecord(ad_id=ad.json()["id"], date=day + dt.timedelta(days=1),
                              impressions=3000, clicks=50, cost_micros=25_000_000),
        ],
        user_id=1,
    )  # fmt: skip
    response = await client.get(
        "/analytics/campaigns",
        params={"start_date": "2026-11-01", "end_date": "2026-11-30"},
        headers=ALICE,
    )
    (summary,) = response.json()
    assert summary["impressions"] == 4000 and summary["clicks"] == 100
    assert summary["ctr"] == 0.025  # 100 / 4000, not the mean of 5% and 1.67%
    assert summary["roas"] == 2.0
    assert summary["cpa_micros"] is None  # no conversions: no denominator


async def test_health_reports_every_component(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    components = {c["component"] for c in response.json()["checks"]}
    assert {"database", "cache", "storage"} <= components


def _sample(text: str, prefix: str) -> float:
    return float(next(line for line in text.splitlines() if line.startswith(prefix)).split()[-1])


async def test_metrics_expose_pool_cache_and_service_metrics(
    client: httpx.AsyncClient, container: AppContainer, openai_server: dict[str, Any]
) -> None:
    ad = (await _ad_with_generated_copy(client, container, openai_server)).json()
    await client.get(f"/ads/{ad['id']}", headers=ALICE)
    await client.get(f"/ads/{ad['id']}", headers=ALICE)
    text = (await client.get("/metrics")).text
    assert _sample(text, 'ads_db_pool_size{backend="sqlite"}') == DatabaseConfig().pool_size
    assert _sample(text, "ads_db_transactions_total") >= 1
    assert _sample(text, "ads_cache_hits_total") >= 1
    assert _sample(text, 'ads_external_requests_total{service="ai.openai"}') == 1
    assert 'ads_external_circuit_state{service="ai.openai"} 0.0' in text
