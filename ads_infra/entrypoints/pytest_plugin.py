"""pytest plugin for host applications: a ready ads-infra container on embedded backends.

Installed with the package (entry point ``pytest11``), it gives every test
suite in the environment these fixtures:

- ``ads_container``: a :class:`containers.Container` on SQLite, the memory
  cache, local storage and the offline AI provider, all under ``tmp_path``;
  migrated, resources started, shut down after the test. It reads no
  ``ADS_*`` variable, so a developer's environment cannot leak in.
- ``ads_container_overrides``: override this fixture in a host app's
  conftest.py to change config sections (``{"cache": {"max_size": 10}}``).

and :func:`override_providers`, to swap providers for one block::

    with override_providers(ads_container, {"services.ai": fake_ai}):
        ...

The module imports nothing heavy at load time: a plugin is imported by every
pytest run in the environment.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ads_infra.core.lifecycle import running
from ads_infra.core.loader import merge_sections

if TYPE_CHECKING:
    from ads_infra.containers import Container

__all__ = ["build_test_container", "embedded_overrides", "override_providers"]


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

    A value that is not a provider is wrapped in ``providers.Object``.
    """
    from dependency_injector import providers

    with contextlib.ExitStack() as stack:
        for path, value in replacements.items():
            provider: Any = container
            for part in path.split("."):
                provider = getattr(provider, part)
            if not isinstance(value, providers.Provider):
                value = providers.Object(value)
            stack.enter_context(provider.override(value))
        yield


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
        tmp_path: Path, ads_container_overrides: dict[str, Any]
    ) -> AsyncIterator[Container]:
        """A migrated, started container under tmp_path; shut down after the test."""
        from ads_infra.database import migrate

        container = build_test_container(tmp_path / "ads-infra", ads_container_overrides)
        await migrate.upgrade(container.database.manager())
        try:
            async with running(container):
                yield container
        finally:
            container.unwire()
