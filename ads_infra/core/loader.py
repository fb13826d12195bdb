"""Loading the configuration: find the file, parse YAML, resolve ``${ENV:default}``.

The lookup order is an explicit path, ``ADS_INFRA_CONFIG``, ``./config.yml``,
then the packaged defaults: the generated file of
:mod:`ads_infra.core.template`, read the same way, so the environment
variables apply with no file at all.

Values may be ``${ENV_NAME}`` or ``${ENV_NAME:default}`` (dependency-injector's
syntax). They are resolved *after* YAML parsing, so a password holding ``#`` or
``:`` cannot break the document; the result is validated once into
:class:`~ads_infra.core.settings.Settings`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ads_infra.core.errors import ConfigurationError
from ads_infra.core.redact import mask_url
from ads_infra.core.settings import Settings

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "PACKAGED_DEFAULTS",
    "LoadedConfig",
    "config_file_path",
    "config_lookup",
    "environment_settings",
    "from_mapping",
    "load_settings",
    "merge_sections",
    "parse_yaml",
    "read_config",
    "settings_for",
]

DEFAULT_CONFIG_FILE = "config.yml"
ENV_CONFIG_FILE = "ADS_INFRA_CONFIG"
PACKAGED_DEFAULTS = "packaged defaults"

_ENV_MARKER = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<default>[^}]*))?\}")
_SECRET_KEY = re.compile(r"(?i)(key|secret|password|token|webhook)")

# dotted key -> (variable, its value, or None when it is unset and has no default)
Origins = dict[str, tuple[str, str | None]]


def _interpolate(value: Any, environ: Mapping[str, str], path: str, origins: Origins) -> Any:
    """Resolve ``${NAME}`` / ``${NAME:default}`` in every string of a parsed document.

    An unset variable with no default becomes None (so an optional key is off).
    Where a value came from the environment is noted in ``origins``, so an
    error about it names the variable rather than the file.
    """
    if isinstance(value, dict):
        return {
            k: _interpolate(v, environ, f"{path}.{k}" if path else str(k), origins)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_interpolate(v, environ, path, origins) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value
    for marker in _ENV_MARKER.finditer(value):
        name = marker["name"]
        if name in environ or marker["default"] is None:
            origins[path] = (name, environ.get(name))
            break
    whole = _ENV_MARKER.fullmatch(value)
    if whole:
        return environ.get(whole["name"], whole["default"])
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


def config_lookup(
    config_file: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> list[tuple[str, str, bool]]:
    """The lookup order as ``(what, where, used)``: the first that applies is used.

    An explicit path, then ADS_INFRA_CONFIG, then ./config.yml, then the
    packaged defaults (:func:`ads_infra.core.template.render_config`). A path
    given explicitly or by the variable must exist; ./config.yml is used only
    when it does.
    """
    environ = os.environ if environ is None else environ
    explicit = str(config_file) if config_file else ""
    variable = environ.get(ENV_CONFIG_FILE, "")
    local = Path(DEFAULT_CONFIG_FILE)
    steps = [
        ("--config", explicit or "(not given)", bool(explicit)),
        (ENV_CONFIG_FILE, variable or "(not set)", not explicit and bool(variable)),
        (f"./{DEFAULT_CONFIG_FILE}", str(local.resolve()), False),
        (PACKAGED_DEFAULTS, "ads_infra.core.template", False),
    ]
    if not explicit and not variable:
        steps[2] = (steps[2][0], steps[2][1], local.is_file())
        steps[3] = (steps[3][0], steps[3][1], not local.is_file())
    return steps


def config_file_path(
    config_file: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Path | None:
    """The file to load by the lookup order, or None for the packaged defaults."""
    environ = os.environ if environ is None else environ
    if config_file:
        return Path(config_file)
    if environ.get(ENV_CONFIG_FILE):
        return Path(environ[ENV_CONFIG_FILE])
    local = Path(DEFAULT_CONFIG_FILE)
    return local if local.is_file() else None


@dataclasses.dataclass(frozen=True)
class LoadedConfig:
    """A configuration document read and interpolated, before validation."""

    document: dict[str, Any]
    source: str  # the file, or PACKAGED_DEFAULTS
    origins: Origins

    def validate(self) -> Settings:
        """The document as :class:`Settings`; errors name the variable or the file."""
        try:
            return Settings.from_dict(self.document, source=self.source, prefix="")
        except ConfigurationError as exc:
            origin = self.origins.get(exc.key or "")
            if origin is None:
                raise
            raise exc.at(exc.key, origin=_describe_origin(exc.key or "", *origin)) from None


def _describe_origin(key: str, variable: str, value: str | None) -> str:
    if value is None:
        return f"{variable} is not set"
    if _SECRET_KEY.search(key.rsplit(".", 1)[-1]):
        return f"{variable}=***"
    shown = mask_url(value) if "://" in value else value
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"{variable}={ascii(shown)[1:-1]}"


def read_config(
    config_file: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> LoadedConfig:
    """Find, read and interpolate the configuration (see :func:`config_lookup`).

    ``overrides`` (``{"cache": {"cache_type": "redis"}}``) are merged over the
    file. Nothing is validated here: :meth:`LoadedConfig.validate` does that.
    """
    environ = os.environ if environ is None else environ
    path = config_file_path(config_file, environ=environ)
    if path is None:
        return _parse(_packaged_text(), PACKAGED_DEFAULTS, environ, overrides)
    try:
        with path.open("rb") as file:  # no more than the bound, whatever the file's size
            raw = file.read(MAX_CONFIG_BYTES + 1)
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigurationError("is not UTF-8 text", source=str(path)) from None
    except FileNotFoundError:
        raise ConfigurationError(
            "configuration file not found; write one with `ads-infra config init "
            f"{path}`, or unset {ENV_CONFIG_FILE} and pass no --config to run on the "
            "packaged defaults",
            source=str(path),
        ) from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read: {exc.strerror}", source=str(path)) from None
    return _parse(text, str(path), environ, overrides)


def from_mapping(
    document: Mapping[str, Any],
    source: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> LoadedConfig:
    """A document parsed elsewhere (a watched key-value store) read as a file would be.

    ``${ENV:default}`` is resolved and ``overrides`` merged over it; nothing is
    validated (:meth:`LoadedConfig.validate` does that). ``source`` names where
    it came from in errors.
    """
    if not isinstance(document, Mapping):
        raise ConfigurationError("top level must be a mapping of sections", source=source)
    environ = os.environ if environ is None else environ
    origins: Origins = {}
    resolved = _interpolate(dict(document), environ, "", origins)
    if overrides:
        resolved = merge_sections(resolved, overrides)
    return LoadedConfig(resolved, source, origins)


def _packaged_text() -> str:
    from ads_infra.core.template import render_config  # the template imports the settings

    return render_config()


def _parse(
    text: str, source: str, environ: Mapping[str, str], overrides: Mapping[str, Any] | None
) -> LoadedConfig:
    document = _safe_yaml(text, source) or {}
    if not isinstance(document, dict):
        raise ConfigurationError("top level must be a mapping of sections", source=source)
    origins: Origins = {}
    document = _interpolate(document, environ, "", origins)
    if overrides:
        document = merge_sections(document, overrides)
    return LoadedConfig(document, source, origins)


# A configuration file is small and flat. These bounds refuse what only an
# attack or a broken generator produces (an alias bomb: 1 KB that expands to
# billions of values; a recursive alias) before anything walks the document.
MAX_CONFIG_BYTES = 1024 * 1024
MAX_CONFIG_VALUES = 10_000
MAX_CONFIG_DEPTH = 20


def _safe_yaml(text: str, source: str) -> Any:
    """Parse ``text`` with bounds on size, expanded values and depth; no duplicate keys."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigurationError(
            f"is larger than {MAX_CONFIG_BYTES // 1024} KiB; a configuration file is a few KiB",
            source=source,
        )
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node, source)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigurationError(f"is not valid YAML{where}", source=source) from None
    finally:
        loader.dispose()


def parse_yaml(text: str, source: str) -> Any:
    """``text`` parsed as YAML within the file's bounds; errors name ``source``, not the text."""
    return _safe_yaml(text, source)


def _check_nodes(root: yaml.Node, source: str) -> None:
    """Count the values ``root`` expands to (aliases included) and refuse duplicate keys."""
    budget = MAX_CONFIG_VALUES
    stack: list[tuple[yaml.Node, int]] = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        budget -= 1
        if budget < 0:
            raise ConfigurationError(
                f"expands to more than {MAX_CONFIG_VALUES:,} values (through aliases?); "
                "write the values out",
                source=source,
            )
        if depth > MAX_CONFIG_DEPTH:
            raise ConfigurationError(
                f"is nested more than {MAX_CONFIG_DEPTH} levels deep (an alias that refers "
                "to itself?)",
                source=source,
            )
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                    if key.value in seen:
                        raise ConfigurationError(
                            f"key {key.value[:60]!r} appears twice at line "
                            f"{key.start_mark.line + 1}; keep one",
                            source=source,
                        )
                    seen.add(key.value)
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, depth + 1) for item in node.value)


def environment_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The packaged defaults with the environment applied, ignoring any file.

    What a manager built with no config uses (``DatabaseManager()``,
    ``CacheManager()``, ...), so the seed's direct style honours the same
    ``ADS_*`` variables as the container.
    """
    from ads_infra.core.template import ENVIRONMENT

    environ = os.environ if environ is None else environ
    return _environment_settings(tuple((v, environ.get(v)) for v in ENVIRONMENT.values()))


@functools.lru_cache(maxsize=8)
def _environment_settings(variables: tuple[tuple[str, str | None], ...]) -> Settings:
    environ = {name: value for name, value in variables if value is not None}
    return _parse(_packaged_text(), PACKAGED_DEFAULTS, environ, None).validate()


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Find, read, interpolate and validate the configuration, once.

    Raises ConfigurationError naming the key and the file, or the environment
    variable the bad value came from.
    """
    return read_config(config_file, overrides, environ=environ).validate()


def settings_for(document: Mapping[str, Any] | None) -> Settings:
    """A container's settings: from its ``config`` when one was loaded, else by lookup.

    So a bare ``Container()`` runs on the lookup order (ADS_INFRA_CONFIG,
    ./config.yml, the packaged defaults, the environment in each), and
    ``container.config.from_yaml(path)`` before first use is honoured too.
    """
    if not document:
        return load_settings()
    return Settings.from_dict(document, prefix="")
