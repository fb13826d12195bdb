"""``ads-infra`` with plugins, as a user runs it: subprocesses, a YAML file, nothing else.

The must-show of the plugin feature: the demo switches to the example's
SQLite cache by a configuration file alone, and a broken plugin is one clear
line naming its distribution and entry point.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ads_infra.core import plugins
from tests.plugin_packages import EXAMPLE, subprocess_env, write_distribution

ADS_INFRA = str(Path(sys.executable).parent / "ads-infra")


def _run(*args: str, cwd: Path, paths: tuple[Path, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ADS_INFRA, *args],
        cwd=cwd,
        env=subprocess_env(*paths),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.usefixtures("example_installed")
def test_the_demo_runs_on_the_example_plugins_named_in_yaml_only(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text(
        "cache:\n"
        "  cache_type: sqlite\n"
        "  fallback_enabled: false\n"  # a plugin failure fails the demo, not hidden
        "  options:\n"
        "    path: ./var/plugin-cache/cache.sqlite3\n"
        "storage:\n"
        "  storage_type: tree\n"
        "  options:\n"
        "    root: ./var/tree\n"
    )
    result = _run("--config", "config.yml", "demo", "--json", "--users", "1", "--days", "7",
                  cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    cache, storage = report["stats"]["cache"], report["stats"]["storage"]
    assert cache["backend"] == "sqlite" and cache["active_backend"] == "sqlite"
    assert cache["hits"] > 0 and cache["sets"] > 0 and cache["errors"] == 0
    with sqlite3.connect(tmp_path / "var" / "plugin-cache" / "cache.sqlite3") as db:
        (entries,) = db.execute("SELECT count(*) FROM cache_entries").fetchone()
        (namespaced,) = db.execute(
            "SELECT count(*) FROM cache_entries WHERE key LIKE 'ads:%'"
        ).fetchone()
    assert entries > 0 and namespaced == entries
    tree = tmp_path / "var" / "tree"
    assert storage["backend"] == "tree" and storage["target"] == str(tree)
    assert report["storage"]["saved"] == report["storage"]["verified"] > 0
    files = [p for p in tree.rglob("*") if p.is_file() and ".ads-tree" not in p.parts]
    assert len(files) == storage["total_files"] > 0
    # The creatives are plain files: a PNG on disk starts like one.
    assert any(p.read_bytes().startswith(b"\x89PNG") for p in files)


@pytest.mark.usefixtures("example_installed")
def test_plugins_lists_the_example_with_its_distribution_and_status(tmp_path: Path) -> None:
    result = _run("plugins", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert listing["groups"] == list(plugins.GROUPS)
    rows = {(row["group"], row["name"]): row for row in listing["plugins"]}
    sqlite = rows[(plugins.CACHE_GROUP, "sqlite")]
    assert sqlite["distribution"] == EXAMPLE and sqlite["version"] == "0.1.0"
    assert sqlite["entry_point"] == "ads_infra_plugin_example.sqlite_cache:SQLiteCacheStrategy"
    assert sqlite["status"] == "ok (options: SQLiteCacheOptions)"
    assert rows[(plugins.SERVICES_GROUP, "status_page")]["status"].startswith("ok")
    assert rows[(plugins.STORAGE_GROUP, "tree")]["status"] == "ok (options: TreeOptions)"
    text = _run("plugins", cwd=tmp_path)
    assert text.returncode == 0 and "sqlite" in text.stdout and EXAMPLE in text.stdout


def test_a_broken_plugin_is_one_line_naming_it_and_plugins_exits_1(tmp_path: Path) -> None:
    site = write_distribution(
        tmp_path / "site",
        "broken-storage",
        {plugins.STORAGE_GROUP: {"vault": "broken_storage:VaultStorage"}},
        {"broken_storage": "raise RuntimeError('vault SDK missing its native library')\n"},
    )
    (tmp_path / "config.yml").write_text("storage:\n  storage_type: vault\n")
    result = _run("--config", "config.yml", "demo", "--users", "1", "--days", "7",
                  cwd=tmp_path, paths=(site,))  # fmt: skip
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("ads-infra: configuration error: storage.storage_type: plugin 'vault'")
    assert "distribution 'broken-storage' 1.0" in line
    assert "RuntimeError: vault SDK missing its native library" in line
    assert "(in config.yml)" in line and "Traceback" not in result.stderr
    listing = _run("plugins", cwd=tmp_path, paths=(site,))
    assert listing.returncode == 1
    assert "vault" in listing.stdout and "error: plugin 'vault' cannot be loaded" in listing.stdout
    assert "broken plugins: vault" in listing.stderr


def test_an_unknown_backend_name_lists_what_is_installed(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text("storage:\n  storage_type: vaults\n")
    result = _run("--config", "config.yml", "config", "show", cwd=tmp_path)
    assert result.returncode == 2
    assert "storage.storage_type: unknown value 'vaults'; allowed: local, s3" in result.stderr
    site = write_distribution(
        tmp_path / "site", "vault-storage", {plugins.STORAGE_GROUP: {"vault": "vault:V"}}, {}
    )
    result = _run("--config", "config.yml", "config", "show", cwd=tmp_path, paths=(site,))
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "allowed: local, s3, or a plugin: " in line and "vault" in line
    assert line.endswith("(`ads-infra plugins` lists them); did you mean 'vault'? (in config.yml)")


@pytest.mark.usefixtures("example_installed")
def test_config_show_prints_plugin_options_with_secrets_masked(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text(
        "services:\n  plugins:\n    status_page:\n"
        "      url: https://status.example.com\n      api_key: sk-status-secret-123\n"
    )
    result = _run("--config", "config.yml", "config", "show", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)["settings"]["services"]["plugins"]["status_page"]
    assert shown["url"] == "https://status.example.com" and shown["api_key"] == "********"
    assert shown["rate_limit"] == 5  # the plugin's default, filled in
    assert "sk-status-secret-123" not in result.stdout
