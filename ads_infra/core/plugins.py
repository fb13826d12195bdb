"""Plugins: cache and storage backends and external services from other packages.

A distribution adds one by declaring an entry point in its ``pyproject.toml``
(the mechanism pytest plugins and SQLAlchemy dialects use)::

    [project.entry-points."ads_infra.storage_strategies"]
    tree = "ads_infra_plugin_example.tree:TreeStorageStrategy"

Once it is installed, ``storage.storage_type: tree`` selects that class, and
``storage.options`` is validated by the class's ``options_type`` (a
:class:`~ads_infra.core.section.ConfigSection`). The groups are
:data:`CACHE_GROUP`, :data:`STORAGE_GROUP` and :data:`SERVICES_GROUP`;
docs/plugins.md describes what a plugin of each group implements.

Entry points are read once per process and per group (``importlib.metadata``
walks every installed distribution to find them); :func:`reset` forgets what
was read and loaded, for a test that installs a plugin. A plugin is imported
only when the configuration names it, or by ``ads-infra plugins``. Every
failure is a :class:`~ads_infra.core.errors.PluginError` that names the entry
point and the distribution declaring it.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib.metadata
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar

from ads_infra.core.errors import ConfigurationError, PluginError
from ads_infra.core.section import ConfigSection

__all__ = [
    "CACHE_GROUP",
    "GROUPS",
    "SERVICES_GROUP",
    "STORAGE_GROUP",
    "Plugin",
    "find",
    "installed",
    "instantiate",
    "load",
    "load_class",
    "names",
    "options_type_of",
    "reset",
    "unknown_name",
    "validated_options",
]

CACHE_GROUP = "ads_infra.cache_strategies"
STORAGE_GROUP = "ads_infra.storage_strategies"
SERVICES_GROUP = "ads_infra.services"
GROUPS = (CACHE_GROUP, STORAGE_GROUP, SERVICES_GROUP)

# An error quoting a plugin's exception keeps this many characters of it: the
# message of a failed import is the plugin's, and may be arbitrarily long.
_MAX_DETAIL = 300

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True)
class Plugin:
    """One entry point of a plugin group, as its distribution declares it."""

    group: str
    name: str
    value: str  # "module:attribute", what loading imports
    distribution: str | None
    version: str | None

    def describe(self) -> str:
        """``entry point 'tree = pkg.mod:Cls' of distribution 'pkg' 1.0``, for errors."""
        where = f"distribution {self.distribution!r} {self.version}".rstrip()
        if self.distribution is None:
            where = "an unknown distribution"
        return f"entry point {self.name!r} = {self.value!r} (group {self.group}) of {where}"


def _detail(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."


@functools.cache
def _declared(group: str) -> tuple[Plugin, ...]:
    found = []
    for entry in importlib.metadata.entry_points(group=group):
        dist = entry.dist
        found.append(
            Plugin(
                group=group,
                name=entry.name,
                value=entry.value,
                distribution=dist.metadata["Name"] if dist is not None else None,
                version=dist.version if dist is not None else None,
            )
        )
    # importlib.metadata lists a distribution once per sys.path entry it is found
    # under; the same declaration twice is one plugin, not a conflict.
    return tuple(sorted(set(found), key=lambda p: (p.name, p.distribution or "")))


def installed(group: str) -> list[Plugin]:
    """Every plugin declared in ``group``, by name (a name declared twice is listed twice)."""
    return list(_declared(group))


def names(group: str) -> list[str]:
    """The plugin names declared in ``group``, sorted, each once."""
    return sorted({plugin.name for plugin in _declared(group)})


def find(group: str, name: str) -> Plugin | None:
    """The plugin ``name`` of ``group``; PluginError when two distributions declare it."""
    matches = [plugin for plugin in _declared(group) if plugin.name == name]
    if len(matches) > 1:
        both = "; ".join(plugin.describe() for plugin in matches)
        raise PluginError(
            f"plugin {name!r} is declared more than once ({both}); uninstall all but one"
        )
    return matches[0] if matches else None


@functools.cache
def _load(group: str, name: str) -> object:
    plugin = find(group, name)
    if plugin is None:
        raise PluginError(f"no plugin {name!r} is installed in group {group}")
    entry = importlib.metadata.EntryPoint(name=plugin.name, value=plugin.value, group=group)
    try:
        return entry.load()
    except Exception as exc:  # any import-time failure is the plugin's: report it whole
        raise PluginError(
            f"plugin {name!r} cannot be loaded: {plugin.describe()} raised {_detail(exc)}; "
            f"fix or reinstall {plugin.distribution or 'the package'}, or uninstall it"
        ) from exc


def load(group: str, name: str) -> object:
    """Import the object plugin ``name`` names (once; later calls return it)."""
    return _load(group, name)


def load_class(group: str, name: str, interface: type) -> type[Any]:
    """Plugin ``name``, checked to be a subclass of ``interface`` (an abstract base)."""
    obj = load(group, name)
    if not (isinstance(obj, type) and issubclass(obj, interface)):
        plugin = find(group, name)
        raise PluginError(
            f"plugin {name!r} does not implement {interface.__module__}.{interface.__qualname__}: "
            f"{plugin.describe() if plugin else name} names {obj!r}, which is not a subclass "
            "of it (docs/plugins.md lists what a plugin implements)"
        )
    return obj


def options_type_of(group: str, name: str) -> type[ConfigSection] | None:
    """The ``options_type`` plugin ``name`` declares for its settings, or None."""
    obj = load(group, name)
    options_type = getattr(obj, "options_type", None)
    if options_type is None:
        return None
    if not (isinstance(options_type, type) and issubclass(options_type, ConfigSection)):
        plugin = find(group, name)
        raise PluginError(
            f"plugin {name!r}: options_type must be a ConfigSection subclass (a frozen "
            f"dataclass), got {options_type!r} ({plugin.describe() if plugin else name})"
        )
    return options_type


def unknown_name(group: str, value: object, builtins: Iterable[str]) -> ConfigurationError:
    """The error for a backend name that is neither built in nor an installed plugin."""
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    builtin = sorted(set(builtins))
    plugins = names(group)
    close = difflib.get_close_matches(str(value)[:100], builtin + plugins, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    if plugins:
        found = f"a plugin: {', '.join(plugins)} (`ads-infra plugins` lists them)"
        allowed = f"{', '.join(builtin)}, or {found}" if builtin else found
    else:
        allowed = f"{', '.join(builtin) or 'a plugin'} (no plugin installed in group {group})"
    return ConfigurationError(f"unknown value {shown}; allowed: {allowed}{hint}")


def validated_options(
    group: str, name: str, options: Mapping[str, Any], *, key: str = "options"
) -> dict[str, Any]:
    """``options`` validated by plugin ``name``'s ``options_type``, defaults filled in.

    A bad value raises ConfigurationError whose key is ``key`` plus the
    option's name (``options.root``); a plugin without ``options_type`` takes
    no options. Loads the plugin: its import errors surface here, at load time.
    """
    options_type = options_type_of(group, name)
    if options_type is None:
        if options:
            raise ConfigurationError(
                f"plugin {name!r} takes no options; remove {', '.join(map(repr, options))}",
                key=key,
            )
        return {}
    return options_type.from_dict(options, prefix=key).to_dict()


def instantiate(
    cls: Callable[..., T],
    group: str,
    name: str,
    *args: Any,
    options: Mapping[str, Any],
    key: str = "options",
) -> T:
    """``cls(*args, options_section)``, or ``cls(*args)`` when the plugin declares no options."""
    options_type = options_type_of(group, name)
    if options_type is None:
        return cls(*args)
    return cls(*args, options_type.from_dict(options, prefix=key))


def reset() -> None:
    """Forget the entry points read and the plugins loaded (tests that install one)."""
    _declared.cache_clear()
    _load.cache_clear()


class _HasOptions(Protocol):
    @property
    def options(self) -> Mapping[str, Any]: ...


Config = TypeVar("Config", bound=_HasOptions)


def build_backend(group: str, name: str, interface: type, options_key: str, config: Config) -> Any:
    """Backend plugin ``name`` of ``group``, built on ``config`` and its ``options``.

    A plugin class is called as ``cls(config)``, or ``cls(config, options)``
    when it declares an ``options_type``.
    """
    cls = load_class(group, name, interface)
    return instantiate(cls, group, name, config, options=config.options, key=options_key)


def backends_with_plugins(
    builtins: Mapping[Any, Callable[[Config], T]],
    group: str,
    interface: type,
    options_key: str,
) -> dict[str, Callable[[Config], T]]:
    """Every backend name a section accepts and what builds it: ``builtins``, then plugins.

    A plugin is imported only when its builder is called; a plugin named like a
    built-in backend is shadowed by it.
    """
    table: dict[str, Callable[[Config], T]] = {str(name): b for name, b in builtins.items()}
    for name in names(group):
        table.setdefault(
            name, functools.partial(build_backend, group, name, interface, options_key)
        )
    return table
