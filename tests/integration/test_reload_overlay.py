"""Keys laid over the file (what etcd's config_prefix feeds): with real files in a temporary folder.

The overlay is the whole set each time; only an applied one stays in force;
a file reload keeps it over the file; the container's keyword overrides win
over it.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ads_infra.containers import create_container

ORIGIN = "etcd:/ads-infra/config/"


def _write(path: Path, ai: dict[str, object]) -> None:
    path.write_text(yaml.safe_dump({"services": {"ai": {"provider": "openai", **ai}}}))


async def test_the_overlay_stays_over_file_reloads_and_leaves_with_its_keys(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.yml"
    _write(config, {"rate_limit": 60, "model": "gpt-4o-mini"})
    container = create_container(config)
    reloader = container.reloader()
    result = await reloader.reload_overlay({"services.ai.rate_limit": "5"}, ORIGIN)
    assert (result.result, result.keys) == ("applied", ("services.ai.rate_limit",))
    assert result.message == f"config reloaded from {ORIGIN}: services.ai.rate_limit (60 -> 5)"

    _write(config, {"rate_limit": 70, "model": "gpt-4.1"})
    result = await reloader.reload_from_file()
    assert (result.result, result.keys) == ("applied", ("services.ai.model",))
    assert container.settings().services.ai.rate_limit == 5

    # The whole set each time: a key no longer in it is the file's again.
    result = await reloader.reload_overlay({}, ORIGIN)
    assert (result.result, result.keys) == ("applied", ("services.ai.rate_limit",))
    assert container.services.ai().config.rate_limit == 70


async def test_a_refused_or_invalid_overlay_is_not_kept(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    _write(config, {"rate_limit": 60})
    container = create_container(config)
    reloader = container.reloader()
    assert (await reloader.reload_overlay({"services.ai.rate_limit": "5"}, ORIGIN)).result == (
        "applied"
    )
    refused = {"services.ai.rate_limit": "4", "database.pool_size": "9"}
    result = await reloader.reload_overlay(refused, ORIGIN)
    assert (result.result, result.keys) == ("refused", ("database.pool_size",))
    result = await reloader.reload_overlay({"services.ai.rate_limit": "fast"}, ORIGIN)
    assert result.result == "invalid" and f"{ORIGIN}services.ai.rate_limit=fast" in result.message
    # A file reload lays the overlay in force (rate_limit 5) over the file, not a refused one.
    result = await reloader.reload_from_file()
    assert result.result == "unchanged"
    assert container.settings().services.ai.rate_limit == 5
    assert container.settings().database.pool_size != 9


async def test_the_containers_overrides_win_over_the_overlay(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    _write(config, {"rate_limit": 60})
    container = create_container(config, cache={"default_ttl": 5})
    reloader = container.reloader()
    values = {"cache.default_ttl": "9", "services.ai.rate_limit": "5"}
    result = await reloader.reload_overlay(values, ORIGIN)
    assert result.keys == ("services.ai.rate_limit",)
    assert container.settings().cache.default_ttl == 5
