"""The repositories package's floor plan: one catalog that everything is built from, no cycles.

No database is touched: the factory, a unit of work and the container are
only built, on a SQLite URL that is never connected to.
"""

from __future__ import annotations

import ast
import inspect
import pathlib
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

PACKAGE_DIR = pathlib.Path(package.__file__).parent


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


def _imports(path: pathlib.Path) -> set[str]:
    """Every module ``path`` imports: top level, under TYPE_CHECKING and inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import"
            base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {
        (package.__name__ if p.stem == "__init__" else f"{package.__name__}.{p.stem}"): p
        for p in PACKAGE_DIR.glob("*.py")
    }
    return {
        name: {m for m in _imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def test_the_package_has_no_import_cycles() -> None:
    graph = _graph()
    done: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        for dep in sorted(graph[module]):
            if dep in path:
                cycles.append([*path[path.index(dep) :], dep])
            elif dep not in done:
                visit(dep, [*path, dep])
        done.add(module)

    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    assert cycles == []


def test_only_the_unit_of_work_s_builders_know_it() -> None:
    knows = {m for m, deps in _graph().items() if f"{package.__name__}.unit_of_work" in deps}
    assert knows == {package.__name__, f"{package.__name__}.factory"}
