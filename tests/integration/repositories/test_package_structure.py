"""The repositories package's floor plan: one catalog that everything is built from.

No database is touched: the factory, a unit of work and the container are
only built, on a SQLite URL that is never connected to.
"""

from __future__ import annotations

import inspect
import typing

import pytest

import ads_infra.repositories as package
from ads_infra.config import DatabaseConfig
from ads_infra.containers import create_container
from ads_infra.database import DatabaseManager
from ads_infra.repositories import (
    REPOSITORIES,
    RepositoryFactory,
    RepositoryScope,
    StandaloneScope,
    UnitOfWork,
)
from ads_infra.repositories.base import BaseRepository
from tests.unit.test_architecture import GRAPH


@pytest.fixture
def factory(sqlite_url: str) -> RepositoryFactory:
    return RepositoryFactory(DatabaseManager(DatabaseConfig(url=sqlite_url)))


def test_the_catalog_lists_the_six_repositories() -> None:
    assert list(REPOSITORIES) == [
        "ads", "campaigns", "groups", "performance", "analytics", "optimization",
    ]  # fmt: skip
    assert all(issubclass(cls, BaseRepository) for cls in REPOSITORIES.values())


def test_the_unit_of_work_declares_one_typed_attribute_per_catalog_entry() -> None:
    hints = typing.get_type_hints(UnitOfWork)
    declared = {
        name: hint
        for name, hint in hints.items()
        if isinstance(hint, type) and issubclass(hint, BaseRepository)
    }
    assert declared == dict(REPOSITORIES)


async def test_a_unit_of_work_builds_every_catalog_entry_in_its_own_scope(
    factory: RepositoryFactory,
) -> None:
    async with factory.unit_of_work() as uow:
        assert isinstance(uow, RepositoryScope) and uow.shares_transaction
        for name, cls in REPOSITORIES.items():
            repo = getattr(uow, name)
            assert type(repo) is cls
            assert repo._scope is uow
            assert repr(repo).endswith(" in unit of work)")
    await factory.db_manager.close()


def test_the_seed_factory_methods_match_the_catalog(factory: RepositoryFactory) -> None:
    seed = {
        name: method
        for name, method in inspect.getmembers(RepositoryFactory, inspect.isfunction)
        if name.startswith("create_") and name.endswith("_repository")
    }
    returned = {typing.get_type_hints(method)["return"] for method in seed.values()}
    assert returned == set(REPOSITORIES.values())
    for name in seed:
        repo = getattr(factory, name)()
        assert type(repo) is typing.get_type_hints(seed[name])["return"]
        assert isinstance(repo._scope, StandaloneScope)
        assert not repr(repo).endswith(" in unit of work)")
    for name, cls in REPOSITORIES.items():
        assert type(factory.create(name)) is cls
    with pytest.raises(KeyError, match="no repository 'nosuch'"):
        factory.create("nosuch")


def test_the_container_has_one_provider_per_catalog_entry(sqlite_url: str) -> None:
    container = create_container(database={"url": sqlite_url})
    names = set(container.repositories.providers) - {"database", "cache", "factory"}
    assert names == set(REPOSITORIES)


def test_only_the_unit_of_work_s_builders_know_it() -> None:
    """Repositories never import the unit of work (cycles are checked package-wide in
    tests/unit/test_architecture.py, from the same import graph)."""
    unit_of_work = f"{package.__name__}.unit_of_work"
    knows = {m for m, deps in GRAPH.items() if unit_of_work in deps}
    assert knows == {package.__name__, f"{package.__name__}.factory"}
