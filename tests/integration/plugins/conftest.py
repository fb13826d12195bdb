"""Fixtures for the plugin tests: plugins installed for one test, the example package.

``install_plugin`` writes a real distribution (tests/plugin_packages.py) into a
folder put on ``sys.path`` and makes the registry read the entry points again;
the modules it added are forgotten afterwards. ``example_installed`` skips (or
fails, with ADS_REQUIRE_SERVICES=1) unless the example package is installed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ads_infra.core import plugins
from tests.plugin_packages import InstallPlugin, require_example, write_distribution


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = __file__.rsplit("/", 1)[0]
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InstallPlugin]:
    """``install_plugin(dist, {group: {name: "module:attr"}}, {module: source})``."""
    installed: list[str] = []

    def install(
        dist: str, entry_points: dict[str, dict[str, str]], modules: dict[str, str]
    ) -> Path:
        root = write_distribution(tmp_path / f"site-{dist}", dist, entry_points, modules)
        monkeypatch.syspath_prepend(str(root))
        installed.extend(modules)
        plugins.reset()
        return root

    yield install
    for module in installed:
        sys.modules.pop(module, None)
    monkeypatch.undo()
    plugins.reset()


@pytest.fixture
def example_installed() -> None:
    """The example plugin package, installed in this interpreter's environment."""
    require_example()
