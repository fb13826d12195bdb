"""Entities round-trip through their JSON-safe form; the domain imports no infrastructure."""

from __future__ import annotations

import ast
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from ads_infra.domain.entities import (
    Ad,
    AdGroup,
    BidStrategy,
    Campaign,
    OptimizationSuggestion,
    PerformanceRecord,
    SuggestionStatus,
    SuggestionType,
    from_json_dict,
    to_json_dict,
)
from ads_infra.domain.errors import NotFoundError as DomainNotFound
from ads_infra.errors import InfrastructureError, NotFoundError

NOW = dt.datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)

ENTITIES = [
    Campaign(id=7, user_id=1, name="C", daily_budget_micros=5_000_000,
             start_date=dt.date(2024, 5, 1), created_at=NOW, updated_at=NOW),
    AdGroup(id=3, user_id=1, campaign_id=7, name="G", targeting={"geo": ["DE", "FR"]},
            bid_strategy=BidStrategy.TARGET_CPA, bid_amount_micros=1_500_000, created_at=NOW),
    Ad(id=9, user_id=1, campaign_id=7, group_id=3, name="A", headline="Hi",
       final_url="https://example.com", metadata={"tags": ["x"], "n": 1}, created_at=NOW),
    PerformanceRecord(ad_id=9, date=dt.date(2024, 5, 1), user_id=1, campaign_id=7, group_id=3,
                      impressions=10, clicks=1, conversions=Decimal("0.2500"), cost_micros=7),
    OptimizationSuggestion(id=1, user_id=1, campaign_id=7, type=SuggestionType.PAUSE,
                           status=SuggestionStatus.APPLIED, payload={"status": "paused"},
                           score=0.7, created_at=NOW, applied_at=NOW),
]  # fmt: skip


@pytest.mark.parametrize("entity", ENTITIES, ids=lambda e: type(e).__name__)
def test_json_round_trip(entity: object) -> None:
    data = to_json_dict(entity)  # type: ignore[arg-type]
    text = json.dumps(data)  # plain json: no default= hook needed
    assert from_json_dict(type(entity), json.loads(text)) == entity  # type: ignore[type-var]


def test_infrastructure_not_found_is_a_domain_not_found() -> None:
    exc = NotFoundError("ad", 5, user_id=2)
    assert isinstance(exc, DomainNotFound) and isinstance(exc, InfrastructureError)
    assert isinstance(exc, LookupError)
    assert str(exc) == "ad 5 not found for user 2"


def test_domain_imports_nothing_from_the_infrastructure() -> None:
    domain = Path(__file__).resolve().parents[2] / "ads_infra" / "domain"
    offenders = []
    for path in sorted(domain.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                infra = name.startswith("ads_infra") and not name.startswith("ads_infra.domain")
                if infra or top in {"sqlalchemy", "redis", "aiohttp", "asyncpg"}:
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []
