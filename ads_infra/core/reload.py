"""What a configuration reload may change, and what it changes: pure functions, no I/O.

A field of :mod:`ads_infra.core.settings` marked ``metadata={"reloadable":
True}`` may change while the layer runs; :data:`RELOADABLE_KEYS` lists them
as dotted keys (``services.ai.rate_limit``). :func:`changed_keys` compares two
validated :class:`~ads_infra.core.settings.Settings`, :func:`restart_only`
picks the changed keys no reload can apply, and :func:`describe_changes`
renders the changes for a log line with every secret masked.

A component that takes a new section while running implements
:class:`Reconfigurable`: ``prepare_settings(section)`` checks the section and
returns the function that applies it. The reloader prepares every component
first and applies only when all of them accepted, so a reload takes effect
whole or not at all.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from ads_infra.core.section import ConfigSection
from ads_infra.core.settings import Settings

__all__ = [
    "RELOADABLE_KEYS",
    "Applier",
    "Reconfigurable",
    "changed_keys",
    "describe_changes",
    "reloadable_keys",
    "restart_only",
    "section_at",
    "setting_keys",
]

# Applies a prepared section: plain assignments that cannot fail, run with no
# await between components so no request sees half of a reload.
Applier = Callable[[], None]


class Reconfigurable(Protocol):
    """A component that takes a new configuration section while it runs."""

    def prepare_settings(self, section: Any) -> Applier:
        """Check ``section``; raise ConfigurationError (or RestartRequiredError) or
        return what applies it."""
        ...


def _walk(section: type[ConfigSection], prefix: str) -> Iterator[tuple[str, bool]]:
    hints = typing.get_type_hints(section)
    for field in dataclasses.fields(section):
        key = f"{prefix}.{field.name}" if prefix else field.name
        kind = hints[field.name]
        if isinstance(kind, type) and issubclass(kind, ConfigSection):
            yield from _walk(kind, key)
        else:
            yield key, bool(field.metadata.get("reloadable"))


def reloadable_keys(settings: type[ConfigSection] = Settings) -> frozenset[str]:
    """The dotted keys of ``settings`` marked reloadable, read from the fields' metadata."""
    return frozenset(key for key, reloadable in _walk(settings, "") if reloadable)


RELOADABLE_KEYS = reloadable_keys()


def setting_keys(settings: type[ConfigSection] = Settings) -> frozenset[str]:
    """Every dotted key of ``settings`` that holds a value (its sections not included)."""
    return frozenset(key for key, _ in _walk(settings, ""))


def _flat(section: ConfigSection, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in dataclasses.fields(section):
        key = f"{prefix}.{field.name}" if prefix else field.name
        value = getattr(section, field.name)
        if isinstance(value, ConfigSection):
            out.update(_flat(value, key))
        else:
            out[key] = value
    return out


def changed_keys(old: Settings, new: Settings) -> list[str]:
    """Every dotted key whose value differs between ``old`` and ``new``, in file order."""
    before, after = _flat(old), _flat(new)
    return [key for key, value in after.items() if before.get(key) != value]


def restart_only(keys: list[str], reloadable: frozenset[str] = RELOADABLE_KEYS) -> list[str]:
    """The keys of ``keys`` that a reload may not change."""
    return [key for key in keys if key not in reloadable]


def _masked_flat(settings: Settings) -> dict[str, Any]:
    def flat(masked: dict[str, Any], prefix: str) -> Iterator[tuple[str, Any]]:
        for name, value in masked.items():
            key = f"{prefix}.{name}" if prefix else name
            if isinstance(value, dict):
                yield from flat(value, key)
            else:
                yield key, value

    return dict(flat(settings.masked(), ""))


def _shown(value: Any) -> str:
    text = "null" if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def describe_changes(old: Settings, new: Settings, keys: list[str]) -> str:
    """``key (old -> new), ...`` for ``keys``, secrets and URL passwords masked."""
    before, after = _masked_flat(old), _masked_flat(new)
    return ", ".join(
        f"{key} ({_shown(before.get(key))} -> {_shown(after.get(key))})" for key in keys
    )


def section_at(settings: Settings, path: str) -> Any:
    """The section at dotted ``path`` (``services.ai``) of ``settings``."""
    value: Any = settings
    for name in path.split("."):
        value = getattr(value, name)
    return value
