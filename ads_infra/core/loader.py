"""Loading the configuration: find the file, parse YAML, resolve ``${ENV:default}``.

Values may be ``${ENV_NAME}`` or ``${ENV_NAME:default}`` (dependency-injector's
syntax). They are resolved *after* YAML parsing, so a password holding ``#`` or
``:`` cannot break the document; the result is validated once into
:class:`~ads_infra.core.settings.Settings`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ads_infra.core.errors import ConfigurationError
from ads_infra.core.settings import Settings

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "config_file_path",
    "load_document",
    "load_settings",
    "merge_sections",
]

DEFAULT_CONFIG_FILE = "config.yml"

_ENV_MARKER = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<default>[^}]*))?\}")


def _interpolate(value: Any, environ: Mapping[str, str]) -> Any:
    """Resolve ``${NAME}`` / ``${NAME:default}`` in every string of a parsed document.

    An unset variable with no default becomes None (so an optional key is off).
    """
    if isinstance(value, dict):
        return {k: _interpolate(v, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, environ) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value
    whole = _ENV_MARKER.fullmatch(value)
    if whole:
        resolved = environ.get(whole["name"], whole["default"])
        return None if resolved is None else resolved
    return _ENV_MARKER.sub(lambda m: environ.get(m["name"], m["default"] or ""), value)


def merge_sections(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` merged into ``base`` recursively (mappings merge, other values replace)."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = merge_sections(merged[key], value)
        else:
            merged[key] = value
    return merged


def config_file_path(config_file: str | os.PathLike[str] | None = None) -> Path:
    """The file to load: the argument, else ADS_INFRA_CONFIG, else ./config.yml."""
    return Path(config_file or os.environ.get("ADS_INFRA_CONFIG") or DEFAULT_CONFIG_FILE)


def load_document(
    config_file: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], str]:
    """Read and interpolate a configuration file; return the document and its path.

    ``overrides`` (``{"cache": {"cache_type": "redis"}}``) are merged over the
    file. Nothing is validated here: :func:`load_settings` does that.
    """
    path = config_file_path(config_file)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(
            "configuration file not found; create it (see config.yml in the ads-infra "
            "repository) or point ADS_INFRA_CONFIG at one",
            source=source,
        ) from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read: {exc.strerror}", source=source) from None
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigurationError(f"is not valid YAML{where}", source=source) from None
    if not isinstance(document, dict):
        raise ConfigurationError("top level must be a mapping of sections", source=source)
    document = _interpolate(document, os.environ if environ is None else environ)
    if overrides:
        document = merge_sections(document, overrides)
    return document, source


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read, interpolate and validate a configuration file, once.

    Raises ConfigurationError naming the key and the file.
    """
    document, source = load_document(config_file, overrides, environ=environ)
    return Settings.from_dict(document, source=source, prefix="")
