"""Hostile requests to the example app: a 4xx naming what is wrong, never a 5xx.

Crafted cursors, user ids beyond BIGINT, NUL characters and lone surrogates
came back as 503 "the database rejected the statement: ..." (or a 500) before:
a load balancer reads 503 as "unhealthy", and the client read database text.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ads_infra.domain import AdGroup, Campaign
from ads_infra.testing import build_test_container, override_providers
from examples.fastapi_app.app import create_app
from examples.fastapi_app.containers import AppContainer

ALICE = {"X-User-Id": "1"}


def cursor(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "crafted",
    [
        cursor({"o": "id", "v": ["x"]}),
        cursor({"o": "id", "v": [10**30]}),
        cursor({"o": "id", "v": [{"dec": "nan"}]}),
        base64.urlsafe_b64encode(b"[" * 3000 + b"]" * 3000).decode(),
        "not base64 at all \x00",
        "A" * 10_000,
    ],
)
async def test_a_crafted_cursor_is_a_422_naming_cursor(
    client: httpx.AsyncClient, crafted: str
) -> None:
    response = await client.get("/campaigns", params={"cursor": crafted}, headers=ALICE)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "cursor"


@pytest.mark.parametrize("user_id", [str(2**70), "0", "-1", "abc"])
async def test_a_user_id_beyond_bigint_is_a_422(client: httpx.AsyncClient, user_id: str) -> None:
    response = await client.get("/campaigns", headers={"X-User-Id": user_id})
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("name", ["a\x00b", "\ud800"])
async def test_text_the_database_cannot_store_is_a_422_naming_the_field(
    client: httpx.AsyncClient, name: str
) -> None:
    body = json.dumps({"name": name}).encode()  # json.dumps escapes a lone surrogate as \\ud800
    response = await client.post(
        "/campaigns", content=body, headers={**ALICE, "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "name"


class CountingAI:
    calls = 0

    async def generate_content(self, *args: Any, **kwargs: Any) -> Any:
        CountingAI.calls += 1
        raise AssertionError("the provider must not be called for another user's group")


async def test_ownership_is_checked_before_the_ai_provider_is_paid(
    client: httpx.AsyncClient, container: AppContainer
) -> None:
    campaign = await container.repositories.campaigns().create(Campaign(user_id=2, name="Bob's"))
    assert campaign.id is not None
    group = await container.repositories.groups().create(
        AdGroup(user_id=2, campaign_id=campaign.id, name="Bob's group")
    )
    with override_providers(container, {"services.ai": CountingAI()}):
        for _ in range(5):
            response = await client.post(
                "/ads",
                json={"campaign_id": campaign.id, "group_id": group.id, "name": "x",
                      "generate_copy_for": "shoes"},
                headers=ALICE,
            )  # fmt: skip
            assert response.status_code == 422 and response.json()["field"] == "group_id"
    assert CountingAI.calls == 0


async def test_a_5xx_shows_no_database_text(tmp_path: Path) -> None:
    """A database without the schema: 500 with a fixed phrase, the details only in the log."""
    container = build_test_container(
        tmp_path / "unmigrated", {"database": {"auto_migrate": "never"}}, container_cls=AppContainer
    )
    app = create_app(container)  # type: ignore[arg-type]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            response = await http.get("/campaigns", headers=ALICE)
    container.unwire()
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error"}


def test_the_app_is_built_once() -> None:
    import examples.fastapi_app.app as module

    assert module.app is module.app


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from(["/campaigns", "/campaigns/{x}", "/ads/{x}"]),
    x=st.one_of(st.integers(min_value=-(2**70), max_value=2**70), st.text(max_size=20)),
    params=st.dictionaries(
        st.sampled_from(["cursor", "limit", "order_by"]), st.text(max_size=50), max_size=3
    ),
)
async def test_fuzzed_requests_never_get_a_5xx(
    client: httpx.AsyncClient, path: str, x: object, params: dict[str, str]
) -> None:
    url = path.replace("{x}", quote(str(x), safe=""))
    response = await client.get(url, params=params, headers=ALICE)
    assert response.status_code < 500, (url, params, response.text)
