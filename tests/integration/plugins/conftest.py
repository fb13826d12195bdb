"""Plugins installed for one test: real distributions on disk, found by importlib.metadata.

``install_plugin`` writes a distribution (``<name>-<version>.dist-info`` with
its ``entry_points.txt``, and the plugin's module) into a folder put on
``sys.path``, exactly what an installer leaves in site-packages, and makes
the registry read the entry points again. ``plugin_env`` is the same for a
subprocess (``PYTHONPATH``). The example package (examples/ads-infra-plugin-example)
is installed in the checkout's venv by ``make test``; tests that use it
skip or fail (ADS_REQUIRE_SERVICES=1) when it is missing.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ads_infra.core import plugins
from tests.services import unavailable

InstallPlugin = Callable[..., Path]
EXAMPLE = "ads-infra-plugin-example"


def write_distribution(
    root: Path,
    dist: str,
    entry_points: dict[str, dict[str, str]],
    modules: dict[str, str],
    version: str = "1.0",
) -> Path:
    """Write distribution ``dist`` (its metadata, entry points and modules) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = []
    for group, entries in entry_points.items():
        lines.append(f"[{group}]")
        lines.extend(f"{name} = {value}" for name, value in entries.items())
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))
    return root


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
    try:
        importlib.metadata.distribution(EXAMPLE)
    except importlib.metadata.PackageNotFoundError:
        unavailable(
            f"{EXAMPLE} is not installed; `make test` installs it "
            f"(uv pip install -e examples/{EXAMPLE})"
        )


def subprocess_env(*paths: Path) -> dict[str, str]:
    """The environment of an ``ads-infra`` subprocess: no ADS_* variable, ``paths`` importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADS_")}
    env["PYTHONPATH"] = os.pathsep.join([*map(str, paths), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    return env
