"""Plugin distributions for tests: written on disk as an installer leaves them.

:func:`write_distribution` writes a ``<name>-<version>.dist-info`` (its
``METADATA`` and ``entry_points.txt``) and the plugin's modules into a folder;
on ``sys.path`` (or ``PYTHONPATH``, :func:`subprocess_env`) importlib.metadata
finds it like any installed package. :func:`require_example` guards the tests
that use the example package (examples/ads-infra-plugin-example), which
``make test`` installs.
"""

from __future__ import annotations

import importlib.metadata
import os
import textwrap
from collections.abc import Callable
from pathlib import Path

from tests.services import unavailable

EXAMPLE = "ads-infra-plugin-example"
# The install_plugin fixture: (dist, {group: {name: "module:attr"}}, {module: source}) -> folder.
InstallPlugin = Callable[..., Path]


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


def require_example() -> None:
    """Skip (or fail, with ADS_REQUIRE_SERVICES=1) unless the example package is installed."""
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
