"""Reloading from a file: what the SIGHUP handler runs, on files in a temporary folder."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from ads_infra.containers import create_container


def _write(path: Path, ai: dict[str, object]) -> None:
    path.write_text(yaml.safe_dump({"services": {"ai": ai}}))


async def test_a_reload_reads_the_containers_file_with_its_overrides(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    _write(config, {"model": "gpt-4o-mini"})
    container = create_container(config, cache={"default_ttl": 5})
    reloader = container.reloader()
    _write(config, {"model": "gpt-4.1"})
    result = await reloader.reload_from_file()
    # The override is applied again: only the file's change is a change.
    assert (result.result, result.keys) == ("applied", ("services.ai.model",))
    assert container.settings().cache.default_ttl == 5
    assert container.services.ai().config.model == "gpt-4.1"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("services: [unclosed\n", "is not valid YAML at line"),
        ("services:\n  ai:\n    temprature: 0.3\n", "did you mean 'temperature'?"),
    ],
)
async def test_a_broken_file_is_one_error_line_and_changes_nothing(
    tmp_path: Path, text: str, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "config.yml"
    _write(config, {"model": "gpt-4o-mini"})
    container = create_container(config)
    before = container.settings()
    config.write_text(text)
    with caplog.at_level(logging.INFO, logger="ads_infra.config"):
        result = await container.reloader().reload_from_file(origin="SIGHUP")
    assert result.result == "invalid" and problem in result.message
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [("ERROR", result.message)]
    assert container.settings() is before


async def test_a_missing_file_or_none_at_all_is_invalid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.yml"
    _write(config, {})
    container = create_container(config)
    config.unlink()
    result = await container.reloader().reload_from_file()
    assert result.result == "invalid" and "configuration file not found" in result.message
    # On the packaged defaults there is no file to read again.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ADS_INFRA_CONFIG", raising=False)
    result = await create_container().reloader().reload_from_file()
    assert result.result == "invalid" and "no configuration file to reload" in result.message
