"""What ``ads-infra plugins`` prints: every installed plugin and whether it can be used.

Each plugin of each group (core/plugins.py) is loaded and checked against its
group's interface, so a broken one shows here with the reason, before a
configuration names it.
"""

from __future__ import annotations

from typing import Any

from ads_infra.cache import CacheStrategy
from ads_infra.core import plugins
from ads_infra.core.errors import PluginError
from ads_infra.core.settings import CacheType, StorageType
from ads_infra.external_services.service import ManagedService
from ads_infra.storage import StorageStrategy

__all__ = ["INTERFACES", "plugin_report"]

# What a plugin of each group implements, and the names built in to it.
INTERFACES: dict[str, tuple[type, frozenset[str]]] = {
    plugins.CACHE_GROUP: (CacheStrategy, frozenset(CacheType)),
    plugins.STORAGE_GROUP: (StorageStrategy, frozenset(StorageType)),
    plugins.SERVICES_GROUP: (ManagedService, frozenset()),
}


def _status(group: str, name: str, interface: type, builtins: frozenset[str]) -> str:
    if name in builtins:
        return f"shadowed: {name!r} is a built-in backend, which a configuration naming it gets"
    try:
        plugins.load_class(group, name, interface)
        options = plugins.options_type_of(group, name)
    except PluginError as exc:
        return f"error: {exc.reason}"
    return f"ok (options: {options.__name__})" if options else "ok"


def plugin_report() -> list[dict[str, Any]]:
    """One row per declared plugin: group, name, entry point, distribution, version, status."""
    rows = []
    for group, (interface, builtins) in INTERFACES.items():
        for plugin in plugins.installed(group):
            rows.append(
                {
                    "group": group,
                    "name": plugin.name,
                    "entry_point": plugin.value,
                    "distribution": plugin.distribution,
                    "version": plugin.version,
                    "status": _status(group, plugin.name, interface, builtins),
                }
            )
    return rows
