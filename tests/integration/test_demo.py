"""The main job on embedded backends, and the domain services it drives, on real repositories."""

from __future__ import annotations

import dataclasses
import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ads_infra.adapters import AICopyWriter, StorageCreativeStore
from ads_infra.domain.entities import Ad, AdGroup, Campaign, Status, SuggestionStatus
from ads_infra.domain.errors import NotFoundError, ValidationError
from ads_infra.domain.ports import CopyBrief
from ads_infra.domain.services import AdService, OptimizationService
from ads_infra.entrypoints.cli import cli
from ads_infra.entrypoints.demo import InfrastructureSystemDemo, tiny_png

REPO = Path(__file__).resolve().parents[2]


async def test_demo_reports_non_zero_figures_for_every_component(ads_container: Any) -> None:
    demo = InfrastructureSystemDemo(ads_container, users=2, days=40, quiet=True)
    report = await demo.run_comprehensive_demo()
    assert report["seed"]["ads"] == 36 and report["seed"]["performance_rows"] == 36 * 40
    assert report["cache"]["hits"] > 0 and 0 < report["cache"]["hit_rate"] < 1
    assert report["storage"]["saved"] == report["storage"]["verified"] == 8
    assert all(row["headline"] and row["provider"] == "offline" for row in report["ai"])
    assert len(report["analytics"]) == 6
    assert all(row["impressions"] > 0 and row["ctr"] is not None for row in report["analytics"])
    assert {s["type"] for s in report["optimization"]} == {"budget", "creative", "pause"}
    assert report["external"]["analytics"].startswith("skipped")
    stats = report["stats"]
    assert stats["pool"]["transactions"] > 0
    assert stats["cache"]["sets"] > 0
    assert stats["storage"]["total_files"] == 8

    rerun = InfrastructureSystemDemo(ads_container, users=2, days=40, quiet=True)
    again = await rerun.run_comprehensive_demo()
    assert again["stats"]["storage"]["total_files"] == 8  # the rerun replaced, not added
    assert again["seed"] == {**report["seed"], "seconds": again["seed"]["seconds"]}


def test_ads_infra_demo_json_on_the_repository_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(REPO / "config.yml", tmp_path / "config.yml")
    monkeypatch.chdir(tmp_path)
    for name in ("ADS_DATABASE_URL", "ADS_CACHE_TYPE", "ADS_STORAGE_TYPE", "ADS_STORAGE_PATH"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(cli, ["demo", "--json", "--users", "1", "--days", "20"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["backends"]["cache"] == "memory"
    assert report["stats"]["pool"]["backend"] == "sqlite"
    assert (tmp_path / "var" / "ads.db").exists()
    assert report["storage"]["total_files"] == 4


# --- domain services on real repositories ------------------------------------------------


async def _campaign_with_group(container: Any, user_id: int) -> tuple[Campaign, AdGroup]:
    repos = container.repositories
    campaign = await repos.campaigns().create(
        Campaign(user_id=user_id, name="Launch", daily_budget_micros=50_000_000)
    )
    group = await repos.groups().create(
        AdGroup(user_id=user_id, campaign_id=campaign.id, name="Broad")
    )
    return campaign, group


async def test_ad_service_validates_ownership_and_attaches_creatives(ads_container: Any) -> None:
    repos = ads_container.repositories
    storage = ads_container.storage.manager()
    service = AdService(
        repos.ads(),
        groups=repos.groups(),
        copywriter=AICopyWriter(ads_container.services.ai()),
        creatives=StorageCreativeStore(storage),
    )
    campaign, group = await _campaign_with_group(ads_container, user_id=1)
    _, other_group = await _campaign_with_group(ads_container, user_id=2)
    ad = Ad(user_id=1, campaign_id=campaign.id, group_id=group.id, name="A", headline="Hi")

    with pytest.raises(ValidationError) as info:
        await service.create_ad(dataclasses.replace(ad, group_id=other_group.id))
    assert info.value.field == "group_id"
    created = await service.create_ad(ad)

    with pytest.raises(NotFoundError):  # nothing is stored for an ad that is not the user's
        await service.attach_creative(created.id, user_id=2, content=tiny_png(1), filename="x.png")
    assert (await storage.get_storage_stats())["total_files"] == 0

    updated = await service.attach_creative(
        created.id, user_id=1, content=tiny_png(1), filename="hero.png"
    )
    assert updated.creative_key and await storage.get_file(updated.creative_key) == tiny_png(1)
    assert (await service.get_ad(created.id, user_id=1)).creative_key == updated.creative_key

    brief = CopyBrief(product="Trail running shoes", audience="runners", max_headline_length=30)
    copy = await service.generate_copy(brief)
    assert 0 < len(copy.headline) <= 30 and copy.description and copy.provider == "offline"
    assert copy == await service.generate_copy(brief)  # the offline provider is deterministic
    with_copy = await service.create_ad_with_copy(dataclasses.replace(ad, name="B"), brief)
    assert with_copy.headline == copy.headline
    assert with_copy.metadata["copy"]["provider"] == "offline"


async def test_optimization_service_finds_each_rule_and_applies_a_budget_change(
    ads_container: Any,
) -> None:
    demo = InfrastructureSystemDemo(ads_container, users=1, days=30, quiet=True)
    await demo.run_comprehensive_demo()  # seeds one user and stores its suggestions
    repos = ads_container.repositories
    service = OptimizationService(
        analytics=repos.analytics(),
        campaigns=repos.campaigns(),
        groups=repos.groups(),
        ads=repos.ads(),
        suggestions=repos.optimization(),
    )
    user_id = demo.dataset.users[0].user_id
    found = await service.suggest(user_id, end_date=demo.dataset.end_date)
    by_type = {s.type.value: s for s in found}
    assert set(by_type) == {"budget", "creative", "pause"}
    budget = by_type["budget"]
    assert budget.evidence["roas"] >= 3.0
    assert budget.evidence["days_budget_capped"] >= 0.6 * budget.evidence["days_with_spend"]
    assert by_type["creative"].evidence["ad_ctr"] < 0.5 * by_type["creative"].evidence["group_ctr"]
    assert Decimal(by_type["pause"].evidence["conversions"]) == 0
    assert found == sorted(found, key=lambda s: s.score, reverse=True)

    # generate() stored them during the demo: a second call adds no duplicate
    assert await service.generate(user_id, end_date=demo.dataset.end_date) == []

    stored = (await repos.optimization().list(user_id=user_id)).items
    stored_budget = next(s for s in stored if s.type.value == "budget")
    applied = await service.apply(stored_budget.id, user_id=user_id)
    assert applied.status is SuggestionStatus.APPLIED
    campaign = await repos.campaigns().get_by_id(stored_budget.campaign_id, user_id=user_id)
    assert campaign.daily_budget_micros == stored_budget.payload["daily_budget_micros"]
    assert campaign.status is Status.ACTIVE
