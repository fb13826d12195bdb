"""Repositories on each backend: a migrated SQLite file under tmp_path, a fresh PostgreSQL db,
and that same kind of PostgreSQL db reached through PgBouncer in transaction pooling mode."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.engine import make_url

from ads_infra.config import DatabaseConfig
from ads_infra.database import DatabaseManager
from ads_infra.domain.entities import Ad, AdGroup, Campaign
from ads_infra.repositories import RepositoryFactory
from tests.pg_servers import PgBouncer


def make_db(url: str, *, pgbouncer: bool = False, auto_migrate: str = "never") -> DatabaseManager:
    """A manager of ``url``; its schema is the test's business unless ``auto_migrate`` says."""
    return DatabaseManager(
        DatabaseConfig(
            url=url, pool_size=5, max_overflow=5, retry_delay=0.01, retry_max_delay=0.05,
            pgbouncer=pgbouncer, auto_migrate=auto_migrate,
        )
    )  # fmt: skip


def through_pgbouncer(url: str, bouncer: PgBouncer) -> str:
    """``url`` (a database on the test server) reached through ``bouncer`` instead."""
    return make_url(url).set(port=bouncer.port).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """An empty database on each backend (for the tests of migrations themselves)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/repositories.db"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(params=["sqlite", "postgresql", "pgbouncer"])
async def db(request: pytest.FixtureRequest) -> AsyncIterator[DatabaseManager]:
    """A migrated DatabaseManager on each backend, a clone of the session's migrated template."""
    fixture = "migrated_sqlite_url" if request.param == "sqlite" else "migrated_postgres_url"
    url = str(request.getfixturevalue(fixture))
    if request.param == "pgbouncer":
        url = through_pgbouncer(url, request.getfixturevalue("pgbouncer"))
    manager = make_db(url, pgbouncer=request.param == "pgbouncer")
    yield manager
    await manager.close()


@pytest.fixture
def factory(db: DatabaseManager) -> RepositoryFactory:
    return RepositoryFactory(db)


@dataclasses.dataclass
class Tree:
    campaign: Campaign
    group: AdGroup
    ad: Ad


async def make_tree(factory: RepositoryFactory, user_id: int, name: str = "t") -> Tree:
    """A campaign with one group and one ad, owned by ``user_id``."""
    campaign = await factory.create_campaign_repository().create(
        Campaign(user_id=user_id, name=f"{name}-campaign", daily_budget_micros=10_000_000)
    )
    assert campaign.id is not None
    group = await factory.create_group_repository().create(
        AdGroup(user_id=user_id, campaign_id=campaign.id, name=f"{name}-group")
    )
    assert group.id is not None
    ad = await factory.create_ads_repository().create(
        Ad(user_id=user_id, campaign_id=campaign.id, group_id=group.id, name=f"{name}-ad",
           final_url="https://example.com/landing")
    )  # fmt: skip
    return Tree(campaign, group, ad)
