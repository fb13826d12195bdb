"""Settings laid over the file, one dotted key each: from key-value text to a document. No I/O.

A key-value store (etcd, under ``discovery.config_prefix``) holds settings one
a key: the key is the dotted setting (``services.ai.rate_limit``), the value
its YAML text (``5``). :func:`overlay_document` turns such a set into the
partial document the loader merges over the file's, refusing what could not
be meant: an unknown key (with the closest known one), a value that is not
YAML, too many keys, a value too large. Its errors name keys, never values,
since a value may be a secret.

:func:`clipped` is what a holder of the store's raw keys keeps of one entry:
enough to report it, bounded whatever the store holds.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Mapping
from typing import Any

from ads_infra.core.errors import ConfigurationError
from ads_infra.core.loader import parse_yaml
from ads_infra.core.reload import setting_keys

__all__ = [
    "MAX_OVERLAY_KEYS",
    "MAX_OVERLAY_KEY_CHARS",
    "MAX_OVERLAY_VALUE_BYTES",
    "clipped",
    "overlay_document",
]

# A setting's value is a number, a word, a URL or a short list; the settings
# number a few dozen. The bounds refuse a prefix used as something else.
MAX_OVERLAY_KEYS = 256
MAX_OVERLAY_KEY_CHARS = 200
MAX_OVERLAY_VALUE_BYTES = 16 * 1024

_KEYS = setting_keys()


def _shown(key: str) -> str:
    return ascii(key if len(key) <= 60 else key[:57] + "...")


def _check_key(key: str, source: str) -> None:
    if len(key) > MAX_OVERLAY_KEY_CHARS:
        raise ConfigurationError(
            f"key {_shown(key)} is longer than {MAX_OVERLAY_KEY_CHARS} characters; "
            "a key is one dotted setting, e.g. services.ai.rate_limit",
            source=source,
        )
    if key in _KEYS:
        return
    close = difflib.get_close_matches(key, _KEYS, n=1)
    hint = f"did you mean {close[0]!r}?" if close else "e.g. services.ai.rate_limit"
    sections = {known.rsplit(".", 1)[0] for known in _KEYS}
    what = "is a section: one key holds one setting" if key in sections else "is no setting"
    raise ConfigurationError(
        f"key {_shown(key)} {what}; {hint} (`ads-infra config show` lists them)", source=source
    )


def overlay_document(values: Mapping[str, str], source: str) -> dict[str, Any]:
    """``{"services.ai.rate_limit": "5"}`` as ``{"services": {"ai": {"rate_limit": 5}}}``.

    ``source`` names the store in errors (``etcd:/ads-infra/config/``), each
    key appended. Raises ConfigurationError on the first problem, in key order.
    """
    if len(values) > MAX_OVERLAY_KEYS:
        raise ConfigurationError(
            f"holds {len(values)} keys, more than {MAX_OVERLAY_KEYS}; keep one key for each "
            "setting that differs from the file",
            source=source,
        )
    document: dict[str, Any] = {}
    for key in sorted(values):
        _check_key(key, source)
        text = values[key]
        if len(text.encode("utf-8", "surrogatepass")) > MAX_OVERLAY_VALUE_BYTES:
            raise ConfigurationError(
                f"value is larger than {MAX_OVERLAY_VALUE_BYTES // 1024} KiB; a setting is "
                "a number, a word or a short list",
                key=key,
                source=source,
            )
        value = parse_yaml(text, f"{source}{key}")
        *sections, name = key.split(".")
        target = document
        for section in sections:
            target = target.setdefault(section, {})
        target[name] = value
    return document


def clipped(key: str, value: str | None) -> tuple[str, str | None]:
    """``key`` and ``value`` as a holder keeps them: past the bounds, just enough to refuse.

    A key longer than allowed keeps its start and a digest of the whole (so
    deleting it still finds it); a value larger than allowed keeps one
    character more than the bound, so :func:`overlay_document` still refuses it.
    """
    if len(key) > MAX_OVERLAY_KEY_CHARS:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        key = f"{key[:MAX_OVERLAY_KEY_CHARS]}#{digest}"
    if value is not None and len(value) > MAX_OVERLAY_VALUE_BYTES:
        value = value[: MAX_OVERLAY_VALUE_BYTES + 1]
    return key, value
