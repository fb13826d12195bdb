"""The wheel as a host app gets it: built from this checkout, installed in a fresh venv.

Installed without any extra and run from an empty folder that holds only a
host app's own ``containers.py`` (the usual file name in dependency-injector
apps) and ``benchmarks.py``: ours installs only the ``ads_infra`` namespace,
never imports the host's modules, and runs with no configuration file. Then,
with the ``testing`` and ``fastapi`` extras, a small host app (host_app/: its
own container subclass with wiring, a FastAPI endpoint on ``Provide[...]``)
passes its own tests on our pytest plugin.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
# uv (a test dependency) builds and installs in seconds from its cache; pip took a minute.
UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")

HOST_MODULE = 'raise ImportError("the host app\'s own {name}.py was imported by ads-infra")\n'


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{args[0]} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with the wheel and its runtime dependencies only; yields its bin/."""
    if UV is None:
        pytest.fail("uv is missing: install the test extras (pip install -e '.[test]')")
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(
        REPO,
        source,
        symlinks=True,
        ignore=shutil.ignore_patterns(".venv", ".git", "var", "build", "*.egg-info", "__pycache__"),
    )
    _run(UV, "build", "--quiet", "--wheel", "--out-dir", root / "dist", source, cwd=root)
    (wheel,) = (root / "dist").glob("ads_infra-*.whl")
    _run(UV, "venv", "--quiet", "--python", sys.executable, root / "venv", cwd=root)
    env = {**os.environ, "VIRTUAL_ENV": str(root / "venv")}
    _run(UV, "pip", "install", "--quiet", wheel, cwd=root, env=env)
    yield root / "venv" / "bin"


def _site_packages(bin_dir: Path) -> Path:
    (site,) = (bin_dir.parent / "lib").glob("python*/site-packages")
    return site


def test_only_the_ads_infra_namespace_is_installed(installed: Path) -> None:
    site = _site_packages(installed)
    assert not (site / "containers").exists()
    assert not (site / "benchmarks").exists()
    assert (site / "ads_infra" / "containers" / "application.py").is_file()
    (dist_info,) = site.glob("ads_infra-*.dist-info")
    assert (dist_info / "top_level.txt").read_text().split() == ["ads_infra"]
    assert not (site / "pytest").exists()  # no test toolchain in a runtime install


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ADS_", "PYTEST_"))}
    return {**env, **extra}


def test_demo_runs_with_no_config_file_beside_a_host_apps_own_modules(
    installed: Path, tmp_path: Path
) -> None:
    for name in ("containers", "benchmarks"):
        (tmp_path / f"{name}.py").write_text(HOST_MODULE.format(name=name))
    env = _clean_env(PYTHONPATH=str(tmp_path))  # the host's modules come first, as in a host app
    out = _run(
        installed / "ads-infra", "demo", "--users", "1", "--days", "7", "--json",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert json.loads(out)["backends"]["database"] == "sqlite+aiosqlite:///./var/ads.db"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["benchmarks.py", "containers.py", "var"]
    code = "import ads_infra.containers as c, containers; print(c.Container)"
    done = subprocess.run(
        [installed / "python", "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert "the host app's own containers.py was imported" in done.stderr  # theirs is theirs


def test_config_init_writes_a_file_the_cli_then_accepts(installed: Path, tmp_path: Path) -> None:
    env = _clean_env()
    _run(installed / "ads-infra", "config", "init", cwd=tmp_path, env=env)
    assert (tmp_path / "config.yml").read_text().startswith("# ads-infra configuration")
    (tmp_path / "config.yml").write_text(
        (tmp_path / "config.yml").read_text().replace("max_size: 1000", "max_size: 77")
    )
    shown = json.loads(
        _run(installed / "ads-infra", "--config", "config.yml", "config", "show", "--json",
             cwd=tmp_path, env=env)
    )  # fmt: skip
    assert shown["source"] == "config.yml" and shown["settings"]["cache"]["max_size"] == 77


# Last in the module: it adds the extras to the venv the tests above check has none.
def test_a_host_app_passes_its_own_tests_on_the_plugin(installed: Path, tmp_path: Path) -> None:
    (wheel,) = (installed.parent.parent / "dist").glob("ads_infra-*.whl")
    env = _clean_env(VIRTUAL_ENV=str(installed.parent))
    _run(UV, "pip", "install", "--quiet", f"{wheel}[testing,fastapi]", cwd=tmp_path, env=env)
    app = tmp_path / "app"
    shutil.copytree(Path(__file__).parent / "host_app", app)
    out = _run(installed / "pytest", "-q", "-p", "no:cacheprovider", cwd=app, env=_clean_env())
    assert "2 passed" in out
