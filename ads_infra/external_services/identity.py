"""Who is calling: the package version, as the User-Agent and Segment's ``context.library``.

Read from the installed distribution's metadata, so a release never sends a
stale hard-coded number; a source tree that is not installed (no metadata)
reports ``0+unknown`` rather than a number that may be wrong.
"""

from __future__ import annotations

from importlib import metadata

__all__ = ["LIBRARY_NAME", "USER_AGENT", "VERSION"]

LIBRARY_NAME = "ads-infra"


def _version() -> str:
    try:
        return metadata.version(LIBRARY_NAME)
    except metadata.PackageNotFoundError:  # pragma: no cover - running from an uninstalled tree
        return "0+unknown"


VERSION = _version()
USER_AGENT = f"{LIBRARY_NAME}/{VERSION}"
