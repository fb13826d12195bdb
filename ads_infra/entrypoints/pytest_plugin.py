"""pytest plugin for host applications: a ready ads-infra container on embedded backends.

Installed with the package (entry point ``pytest11``; ``pip install
'ads-infra[testing]'`` brings pytest and pytest-asyncio), it gives every test
suite in the environment these fixtures:

- ``ads_container``: the host's container (see ``ads_container_class``) on
  SQLite, the memory cache, local storage and the offline AI provider, all
  under ``tmp_path``; its wiring applied, migrated, resources started, shut
  down and unwired after the test. It reads no ``ADS_*`` variable, so a
  developer's environment cannot leak in.
- ``ads_container_class``: the container class to build, by default the one
  the ini option ``ads_container_class = myapp.containers:Container`` names,
  else :class:`ads_infra.containers.Container`. Override the fixture to choose
  in code.
- ``ads_container_overrides``: override it in a conftest.py to change config
  sections (``{"cache": {"max_size": 10}}``).

and :func:`override_providers`, to swap providers for one block::

    with override_providers(ads_container, {"services.ai": fake_ai}):
        ...

The module imports nothing heavy at load time: a plugin is imported by every
pytest run in the environment.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ads_infra.core.lifecycle import running
from ads_infra.core.loader import merge_sections

if TYPE_CHECKING:
    from ads_infra.containers import Container

__all__ = [
    "build_test_container",
    "embedded_overrides",
    "override_providers",
]


def embedded_overrides(root: Path) -> dict[str, Any]:
    """Config sections that put every backend on the embedded defaults under ``root``."""
    return {
        "database": {"url": f"sqlite+aiosqlite:///{root / 'ads.db'}"},
        "cache": {"cache_type": "memory"},
        "storage": {"storage_type": "local", "base_path": str(root / "storage")},
        "services": {"ai": {"provider": "offline"}},
    }


def build_test_container(
    root: Path,
    overrides: Mapping[str, Any] | None = None,
    *,
    container_cls: type[Container] | None = None,
) -> Container:
    """A container on embedded backends under ``root`` (not started, not migrated).

    ``container_cls``: a host app's Container subclass (its wiring_config applies).
    """
    from ads_infra.containers import Container, create_container

    root.mkdir(parents=True, exist_ok=True)
    config_file = root / "ads-infra.yml"
    config_file.write_text("{}\n")  # dataclass defaults; no ${ENV} markers to read
    return create_container(
        config_file,
        container_cls=container_cls or Container,
        **merge_sections(embedded_overrides(root), overrides or {}),
    )


@contextlib.contextmanager
def override_providers(container: Any, replacements: Mapping[str, Any]) -> Iterator[None]:
    """Override providers by dotted path (``"cache.manager"``) for the duration of the block.

    A value that is not a provider is wrapped in ``providers.Object``. The
    singletons that were built from an overridden provider (the repository
    factory from ``cache.manager``, the ad service from ``services.ai``, ...)
    are reset on entry and on exit, so an override takes effect even after
    first use, and the originals come back after the block. (A bare
    ``provider.override(...)`` does not do that: dependency-injector keeps a
    singleton built before the override.)
    """
    from dependency_injector import providers

    targets: list[Any] = []
    with contextlib.ExitStack() as stack:
        for path, value in replacements.items():
            provider: Any = container
            for part in path.split("."):
                provider = getattr(provider, part)
            if not isinstance(value, providers.Provider):
                value = providers.Object(value)
            stack.enter_context(provider.override(value))
            targets.append(provider)
        dependents = _built_from(container, targets)
        stack.callback(_reset, dependents)  # on exit, after the overrides are undone
        _reset(dependents)
        yield


def _built_from(container: Any, targets: list[Any]) -> list[Any]:
    """The container's singletons that depend, directly or not, on one of ``targets``."""
    from dependency_injector import providers

    wanted = {id(target) for target in targets}
    return [
        singleton
        for singleton in container.traverse(types=[providers.BaseSingleton])
        if id(singleton) not in wanted and any(id(p) in wanted for p in singleton.traverse())
    ]


def _reset(singletons: list[Any]) -> None:
    for singleton in singletons:
        singleton.reset()


def _container_class(spec: str) -> type[Container]:
    module_name, _, attribute = spec.partition(":")
    if not attribute:
        raise pytest.UsageError(
            f"ads_container_class = {spec!r}: write it as 'package.module:ContainerClass'"
        )
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise pytest.UsageError(
            f"ads_container_class = {spec!r} cannot be imported: {exc}"
        ) from None
    return found  # type: ignore[no-any-return]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "ads_container_class",
        "the host's Container subclass for the ads_container fixture ('module:Class')",
        default="",
    )


@pytest.fixture
def ads_container_class(request: pytest.FixtureRequest) -> type[Container]:
    """The container class ``ads_container`` builds: the ini option's, else ads-infra's."""
    spec = str(request.config.getini("ads_container_class") or "")
    if spec:
        return _container_class(spec)
    from ads_infra.containers import Container

    return Container


@pytest.fixture
def ads_container_overrides() -> dict[str, Any]:
    """Config sections merged over the embedded defaults; override it in your conftest.py."""
    return {}


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the host has no async test support
    pass
else:

    @pytest_asyncio.fixture
    async def ads_container(
        tmp_path: Path,
        ads_container_overrides: dict[str, Any],
        ads_container_class: type[Container],
    ) -> AsyncIterator[Container]:
        """A wired, migrated, started container under tmp_path; shut down after the test."""
        from ads_infra.database import migrate

        container = build_test_container(
            tmp_path / "ads-infra", ads_container_overrides, container_cls=ads_container_class
        )
        await migrate.upgrade(container.database.manager())
        try:
            async with running(container):
                yield container
        finally:
            container.unwire()
