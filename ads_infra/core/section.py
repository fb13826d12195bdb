"""The base of every configuration section: typed fields, coercion, validation.

Each section of ``config.yml`` has the field names of its dataclass as keys,
so ``CacheConfig.from_dict(section)`` is ``CacheConfig(**section)`` plus
checks: an unknown or mistyped key, a wrong type, a malformed URL or an unknown
backend raises :class:`~ads_infra.core.errors.ConfigurationError` naming the
dotted key, what is wrong with the value, and the file. Strings from the
environment are coerced to the field's type (``"20"`` -> ``20``).

The dataclasses are validated by this small checker rather than pydantic: the
checks are few, the seed wants plain dataclasses (``CacheConfig(**section)``),
and direct construction must raise the same ConfigurationError as loading a
file does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import enum
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar, Union
from urllib.parse import urlsplit

from ads_infra.core.errors import ConfigurationError
from ads_infra.core.redact import Secret, mask_url

__all__ = ["MAX_NUMBER", "ConfigSection", "url_problem"]

# Every number in the configuration: counts, sizes, seconds. Beyond this a value is
# a typo or an attack (10^26 seconds, a 2^70 pool), never a setting.
MAX_NUMBER = 2**53

_Section = TypeVar("_Section", bound="ConfigSection")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _describe(value: object) -> str:
    if isinstance(value, Secret):
        return "a secret"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _coerce(name: str, hint: Any, value: Any) -> Any:
    """Return ``value`` converted to ``hint`` or raise ConfigurationError for ``name``."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if (value is None or value == "") and type(None) in typing.get_args(hint):
            return None
        errors: list[ConfigurationError] = []
        for option in options:
            try:
                return _coerce(name, option, value)
            except ConfigurationError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is list:
        (item_hint,) = typing.get_args(hint) or (Any,)
        if isinstance(value, str):
            value = [item.strip() for item in value.split(",") if item.strip()]
        if not isinstance(value, list | tuple):
            raise ConfigurationError(f"expected a list, got {_describe(value)}", key=name)
        return [_coerce(f"{name}[{i}]", item_hint, item) for i, item in enumerate(value)]
    if origin is dict:
        _key_hint, value_hint = typing.get_args(hint) or (str, Any)
        if not isinstance(value, Mapping):
            raise ConfigurationError(f"expected a mapping, got {_describe(value)}", key=name)
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigurationError(f"keys must be strings, got {_describe(key)}", key=name)
            out[key] = _coerce(f"{name}.{key}", value_hint, item)
        return out
    if hint is Any:
        return value
    if isinstance(hint, type) and issubclass(hint, ConfigSection):
        if isinstance(value, hint):
            return value
        if not isinstance(value, Mapping):
            raise ConfigurationError(f"expected a mapping, got {_describe(value)}", key=name)
        try:
            return hint.from_dict(value, prefix="")
        except ConfigurationError as exc:
            raise exc.at(f"{name}.{exc.key}") from None
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        if isinstance(value, hint):
            return value
        allowed = sorted({member.value for member in hint})
        try:
            return hint(value)
        except ValueError:
            raise ConfigurationError(
                f"unknown value {_describe(value)}; allowed: {', '.join(map(str, allowed))}",
                key=name,
            ) from None
    if hint is Secret:
        if isinstance(value, Secret):
            return value
        if isinstance(value, str):
            return Secret(value)
        raise ConfigurationError("expected a string", key=name)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ConfigurationError(f"expected true or false, got {_describe(value)}", key=name)
    if hint is int:
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and len(value) <= 40:
            with contextlib.suppress(ValueError):
                number = int(value.strip())
        if number is None:
            raise ConfigurationError(f"expected a whole number, got {_describe(value)}", key=name)
        if abs(number) > MAX_NUMBER:
            raise ConfigurationError(f"must be at most {MAX_NUMBER:,}, got {number:.3g}", key=name)
        return number
    if hint is float:
        real: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            real = float(value) if abs(value) <= MAX_NUMBER else math.inf
        elif isinstance(value, str) and len(value) <= 40:
            with contextlib.suppress(ValueError):
                real = float(value.strip())
        if real is None:
            raise ConfigurationError(f"expected a number, got {_describe(value)}", key=name)
        if not math.isfinite(real) or abs(real) > MAX_NUMBER:
            raise ConfigurationError(
                f"must be a finite number of at most {MAX_NUMBER:,}, got {_describe(value)}",
                key=name,
            )
        return real
    if hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, Secret):  # a credential as the container's config holds it
            return value.get_secret_value()
        raise ConfigurationError(f"expected a string, got {_describe(value)}", key=name)
    raise TypeError(f"unsupported config field type {hint!r} for {name}")  # programming error


def _masked(value: Any) -> Any:
    """``value`` safe to print: secrets and URL passwords masked, in mappings too
    (a plugin's ``options``)."""
    if isinstance(value, Secret):
        return "********" if value else ""
    if isinstance(value, str) and "://" in value:
        return mask_url(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    return value


def _guarded(value: Any) -> Any:
    """``value`` with every string holding a credential (a URL with a password) as a Secret."""
    if isinstance(value, str) and "://" in value and mask_url(value) != value:
        return Secret(value)
    if isinstance(value, dict):
        return {k: _guarded(v) for k, v in value.items()}
    return value


_UNENCODED_USERINFO = (
    "cannot be split into user, password and host: a password holding '/', '?' or '#' "
    "must be percent-encoded (urllib.parse.quote(password, safe=''))"
)


def url_problem(url: str, schemes: tuple[str, ...]) -> str | None:
    """Return why ``url`` is not a usable URL with one of ``schemes``, or None."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    scheme = parts.scheme.split("+", 1)[0]
    if not parts.scheme or "://" not in url:
        return f"is not a URL; expected {' or '.join(s + '://...' for s in schemes)}"
    if scheme not in schemes:
        return f"has scheme {parts.scheme!r}; expected one of {', '.join(schemes)}"
    if parts.netloc and "@" in parts.path + parts.fragment:
        return _UNENCODED_USERINFO
    try:
        parts.port  # noqa: B018  (raises on a malformed port)
    except ValueError:
        return _UNENCODED_USERINFO if "@" in url else "has a malformed port"
    return None


@dataclasses.dataclass(frozen=True)
class ConfigSection:
    """Base of every config dataclass: coerces and validates in ``__post_init__``.

    Sections are frozen: a running component's settings cannot drift from what
    was validated (use ``dataclasses.replace`` for a changed copy). Subclasses
    add cross-field checks in :meth:`validate`, normalizing values with
    :meth:`_normalize`, and declare a lower bound for numbers with
    ``field(metadata={"min": 0})``.
    """

    _section: ClassVar[str] = ""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            value = _coerce(field.name, hints[field.name], getattr(self, field.name))
            minimum = field.metadata.get("min")
            if minimum is not None and value is not None and value < minimum:
                raise ConfigurationError(f"must be >= {minimum}, got {value}", key=field.name)
            object.__setattr__(self, field.name, value)
        self.validate()

    def validate(self) -> None:
        """Cross-field checks; raise ConfigurationError(key=field name)."""

    def _normalize(self, **values: Any) -> None:
        """Replace field values while validating (the only writes a frozen section takes)."""
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_dict(
        cls: type[_Section],
        data: Mapping[str, Any] | None,
        *,
        source: str | None = None,
        prefix: str | None = None,
    ) -> _Section:
        """Build from a config section, rejecting unknown keys.

        ``prefix`` (``"cache"``) and ``source`` (the file) go into the error.
        """
        prefix = prefix if prefix is not None else cls._section
        data = dict(data or {})
        known = {field.name for field in dataclasses.fields(cls) if field.init}
        for key in data:
            if key not in known:
                close = difflib.get_close_matches(str(key), sorted(known), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigurationError(
                    f"unknown key{hint} (known keys: {', '.join(sorted(known))})",
                    key=f"{prefix}.{key}" if prefix else str(key),
                    source=source,
                )
        try:
            return cls(**data)
        except ConfigurationError as exc:
            key = f"{prefix}.{exc.key}" if prefix and exc.key else exc.key or prefix
            raise exc.at(key, source=source) from None

    def to_dict(self) -> dict[str, Any]:
        """Plain values: enums as their value, secrets kept as :class:`Secret`."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, ConfigSection):
                value = value.to_dict()
            elif isinstance(value, enum.Enum):
                value = value.value
            elif isinstance(value, list | dict):
                value = value.copy()
            out[field.name] = value
        return out

    def to_config(self) -> dict[str, Any]:
        """Like :meth:`to_dict`, with every string that holds a credential as a :class:`Secret`.

        What the container's ``config`` provider holds: a URL with a password
        or a secret query value stays usable (``.get_secret_value()``) but never
        shows in ``repr(container.config())`` or a log line.
        """
        out: dict[str, Any] = {}
        for key, value in self.to_dict().items():
            if isinstance(getattr(self, key), ConfigSection):
                value = getattr(self, key).to_config()
            else:
                value = _guarded(value)
            out[key] = value
        return out

    def masked(self) -> dict[str, Any]:
        """Like :meth:`to_dict`, safe to print: secrets and URL passwords masked."""
        out: dict[str, Any] = {}
        for key, value in self.to_dict().items():
            section = getattr(self, key)
            out[key] = section.masked() if isinstance(section, ConfigSection) else _masked(value)
        return out

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self.masked().items())
        return f"{type(self).__name__}({body})"
