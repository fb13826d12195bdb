"""Plugins found through entry points: names, options, errors, and the managers built on them.

Each test installs a real distribution on sys.path (conftest.install_plugin);
nothing is mocked: importlib.metadata reads its entry points, the registry
imports its module, and the managers run on the strategy it names.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ads_infra.cache import CacheConfig, CacheManager, build_strategy, cache_backends
from ads_infra.core import plugins
from ads_infra.core.errors import ConfigurationError, PluginError
from ads_infra.core.settings import Settings, StorageConfig
from ads_infra.external_services import ExternalServiceManager, PluginServices
from ads_infra.storage import FileStorageManager, storage_backends
from tests.plugin_packages import InstallPlugin

CACHE_PLUGIN = """
import dataclasses
from typing import ClassVar
from ads_infra.cache import MemoryCacheStrategy
from ads_infra.core.errors import ConfigurationError
from ads_infra.core.section import ConfigSection

@dataclasses.dataclass(frozen=True, repr=False)
class Options(ConfigSection):
    label: str = "plain"
    slots: int = dataclasses.field(default=4, metadata={"min": 1})

    def validate(self):
        if self.label == "bad":
            raise ConfigurationError("must not be 'bad'", key="label")

class LabelledMemory(MemoryCacheStrategy):
    backend: ClassVar[str] = "labelled"
    options_type = Options

    def __init__(self, config=None, options=None):
        super().__init__(config)
        self.options = options
"""

STORAGE_PLUGIN = """
import dataclasses
from ads_infra.core.section import ConfigSection
from ads_infra.storage import LocalStorageStrategy

@dataclasses.dataclass(frozen=True, repr=False)
class Options(ConfigSection):
    folder: str = "./var/mirror"

class FolderStorage(LocalStorageStrategy):
    backend = "folder"
    options_type = Options

    def __init__(self, config, options):
        super().__init__(dataclasses.replace(config, base_path=options.folder))
"""

SERVICE_PLUGIN = """
from ads_infra.external_services import ExternalServiceConfig
from ads_infra.external_services.service import ManagedService

class Pinger(ManagedService):
    def __init__(self, manager):
        super().__init__(manager)
        self._add_upstream("pinger", ExternalServiceConfig(base_url="http://127.0.0.1:9"))
"""


@pytest.fixture
def labelled(install_plugin: InstallPlugin) -> Path:
    return install_plugin(
        "labelled-cache",
        {plugins.CACHE_GROUP: {"labelled": "labelled_cache:LabelledMemory"}},
        {"labelled_cache": CACHE_PLUGIN},
    )


def test_an_installed_plugin_is_listed_with_its_distribution(labelled: Path) -> None:
    (found,) = [p for p in plugins.installed(plugins.CACHE_GROUP) if p.name == "labelled"]
    assert plugins.find(plugins.CACHE_GROUP, "labelled") == found
    assert (found.name, found.value) == ("labelled", "labelled_cache:LabelledMemory")
    assert (found.distribution, found.version) == ("labelled-cache", "1.0")
    assert "labelled" in cache_backends() and "memory" in cache_backends()


async def test_its_name_is_a_cache_type_and_its_options_are_validated(labelled: Path) -> None:
    settings = Settings.from_dict({"cache": {"cache_type": "labelled", "options": {"slots": "8"}}})
    assert settings.cache.cache_type == "labelled"
    # Coerced and completed with the plugin's defaults.
    assert settings.cache.options == {"label": "plain", "slots": 8}
    async with CacheManager(settings.cache) as cache:
        assert type(cache.strategy).__name__ == "LabelledMemory"
        assert cache.backend == "labelled" and cache.strategy.options.slots == 8
        await cache.set("k", {"v": 1})
        assert await cache.get("k") == {"v": 1}
        assert (await cache.get_stats())["backend"] == "labelled"


@pytest.mark.parametrize(
    ("options", "key", "fragment"),
    [
        ({"slotz": 1}, "cache.options.slotz", "did you mean 'slots'?"),
        ({"slots": 0}, "cache.options.slots", "must be >= 1"),
        ({"slots": "many"}, "cache.options.slots", "expected a whole number"),
        ({"label": "bad"}, "cache.options.label", "must not be 'bad'"),
        ("oops", "cache.options", "expected a mapping"),
    ],
)
def test_bad_plugin_options_name_the_key(
    labelled: Path, options: object, key: str, fragment: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_dict(
            {"cache": {"cache_type": "labelled", "options": options}}, source="f.yml"
        )
    assert caught.value.key == key and fragment in str(caught.value), str(caught.value)
    assert "(in f.yml)" in str(caught.value)


def test_an_unknown_name_lists_the_built_ins_and_the_installed_plugins(labelled: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_dict({"cache": {"cache_type": "labeled"}})
    message = str(caught.value)
    assert caught.value.key == "cache.cache_type"
    assert "allowed: memory, redis, redis_cluster" in message
    assert "or a plugin: labelled" in message and "`ads-infra plugins` lists them" in message
    assert "did you mean 'labelled'?" in message


def test_a_built_in_backend_takes_no_options(labelled: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        CacheConfig.from_dict({"cache_type": "memory", "options": {"slots": 2}})
    assert caught.value.key == "cache.options" and "plugin backends only" in str(caught.value)


def test_a_plugin_whose_import_fails_names_its_distribution_and_entry_point(
    install_plugin: InstallPlugin,
) -> None:
    install_plugin(
        "broken-cache",
        {plugins.CACHE_GROUP: {"broken": "broken_cache:Strategy"}},
        {"broken_cache": "import not_a_module_anywhere\n"},
    )
    with pytest.raises(PluginError) as caught:
        Settings.from_dict({"cache": {"cache_type": "broken"}}, source="f.yml")
    message = str(caught.value)
    assert caught.value.key == "cache.cache_type"
    assert "distribution 'broken-cache' 1.0" in message
    assert "'broken' = 'broken_cache:Strategy'" in message
    assert "ModuleNotFoundError: No module named 'not_a_module_anywhere'" in message
    # Other names still work: a broken plugin is reported only where it is named.
    assert Settings.from_dict({"cache": {"cache_type": "memory"}}).cache.cache_type == "memory"


def test_a_plugin_that_does_not_implement_the_interface_is_refused(
    install_plugin: InstallPlugin,
) -> None:
    install_plugin(
        "wrong-cache",
        {plugins.CACHE_GROUP: {"wrong": "wrong_cache:NotAStrategy"}},
        {"wrong_cache": "class NotAStrategy:\n    pass\n"},
    )
    config = CacheConfig(cache_type="wrong")  # no options: nothing more to validate here
    with pytest.raises(PluginError) as caught:
        build_strategy(config)
    message = str(caught.value)
    assert "does not implement ads_infra.cache.base.CacheStrategy" in message
    assert "distribution 'wrong-cache'" in message and "docs/plugins.md" in message


def test_a_name_declared_by_two_distributions_is_refused(install_plugin: InstallPlugin) -> None:
    for dist in ("first-cache", "second-cache"):
        module = dist.replace("-", "_")
        install_plugin(
            dist, {plugins.CACHE_GROUP: {"twice": f"{module}:S"}}, {module: CACHE_PLUGIN}
        )
    with pytest.raises(PluginError) as caught:
        Settings.from_dict({"cache": {"cache_type": "twice"}})
    message = str(caught.value)
    assert caught.value.key == "cache.cache_type" and "declared more than once" in message
    assert "'first-cache'" in message and "'second-cache'" in message


async def test_a_storage_plugin_runs_under_file_storage_manager(
    install_plugin: InstallPlugin, tmp_path: Path
) -> None:
    install_plugin(
        "folder-storage",
        {plugins.STORAGE_GROUP: {"folder": "folder_storage:FolderStorage"}},
        {"folder_storage": STORAGE_PLUGIN},
    )
    assert "folder" in storage_backends() and "local" in storage_backends()
    config = StorageConfig.from_dict(
        {"storage_type": "folder", "options": {"folder": str(tmp_path / "tree")}}
    )
    async with FileStorageManager(config) as storage:
        name = await storage.save_file(b"hello", "note.txt")
        assert await storage.get_file(name) == b"hello"
        stats = await storage.get_storage_stats()
        assert stats["backend"] == "folder" and stats["total_files"] == 1
        assert (await storage.health_check()).healthy
    assert any((tmp_path / "tree").rglob("*"))


async def test_a_service_plugin_is_built_on_the_manager_and_registered_by_start(
    install_plugin: InstallPlugin,
) -> None:
    install_plugin(
        "pinger-service",
        {plugins.SERVICES_GROUP: {"pinger": "pinger_service:Pinger"}},
        {"pinger_service": SERVICE_PLUGIN},
    )
    settings = Settings.from_dict({"services": {"plugins": {"pinger": {}}}})
    async with ExternalServiceManager(settings.services.http) as manager:
        services = PluginServices(manager, settings.services.plugins)
        assert list(services) == ["pinger"] and not manager.has_service("pinger")
        async with services:
            assert manager.has_service("pinger")
            assert manager.get_service_status("pinger")["name"] == "pinger"
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_dict({"services": {"plugins": {"pinger": {"url": "x"}}}})
    assert caught.value.key == "services.plugins.pinger" and "takes no options" in str(caught.value)
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_dict({"services": {"plugins": {"pingr": {}}}})
    assert caught.value.key == "services.plugins.pingr" and "did you mean 'pinger'?" in str(
        caught.value
    )


async def test_managers_built_without_a_config_resolve_plugin_names_from_the_environment(
    labelled: Path, install_plugin: InstallPlugin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_plugin(
        "folder-storage",
        {plugins.STORAGE_GROUP: {"folder": "folder_storage:FolderStorage"}},
        {"folder_storage": STORAGE_PLUGIN},
    )
    monkeypatch.chdir(tmp_path)  # the plugin's default folder is ./var/mirror
    monkeypatch.setenv("ADS_CACHE_TYPE", "labelled")
    monkeypatch.setenv("ADS_STORAGE_TYPE", "folder")
    async with CacheManager() as cache, FileStorageManager() as storage:
        assert type(cache.strategy).__name__ == "LabelledMemory"
        assert cache.strategy.options.label == "plain"  # the plugin's defaults
        assert type(storage.strategy).__name__ == "FolderStorage"
        await storage.save_file(b"x", "a.txt")
    assert any((tmp_path / "var" / "mirror").rglob("*"))


def test_a_hostile_backend_name_gives_a_bounded_error(labelled: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_dict({"storage": {"storage_type": "x" * 1_000_000}})
    assert caught.value.key == "storage.storage_type" and len(str(caught.value)) < 500


def test_a_group_with_no_plugin_says_none_is_installed() -> None:
    error = plugins.unknown_name("ads_infra.no_such_group", "x", ["a", "b"])
    assert (
        error.reason == "unknown value 'x'; allowed: a, b (no plugin installed in group "
        "ads_infra.no_such_group)"
    )


TICKER_PLUGIN = """
import asyncio

from ads_infra.external_services.service import ManagedService

class Ticker(ManagedService):
    task = None

    async def start(self):
        await super().start()
        type(self).task = asyncio.create_task(asyncio.sleep(3600))

    async def close(self):
        if type(self).task is not None:
            type(self).task.cancel()
"""

BROKEN_PLUGIN = """
from ads_infra.external_services.service import ManagedService

class Broken(ManagedService):
    async def start(self):
        raise RuntimeError("cannot start")
"""


async def test_services_started_before_one_that_fails_to_start_are_closed(
    install_plugin: InstallPlugin,
) -> None:
    """The container closes only what started: a failed start must close what it opened."""
    install_plugin(
        "ticker-service",
        {plugins.SERVICES_GROUP: {"ticker": "ticker_service:Ticker"}},
        {"ticker_service": TICKER_PLUGIN},
    )
    install_plugin(
        "broken-service",
        {plugins.SERVICES_GROUP: {"broken": "broken_service:Broken"}},
        {"broken_service": BROKEN_PLUGIN},
    )
    settings = Settings.from_dict({"services": {"plugins": {"ticker": {}, "broken": {}}}})
    async with ExternalServiceManager(settings.services.http) as manager:
        services = PluginServices(manager, settings.services.plugins)
        assert list(services) == ["ticker", "broken"]
        with pytest.raises(RuntimeError, match="cannot start"):
            await services.start()
        ticker = type(services["ticker"])
        task = ticker.task  # type: ignore[attr-defined]
        assert task is not None
        await asyncio.sleep(0)
        assert task.cancelled()
