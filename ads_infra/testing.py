"""Test helpers for host apps: ``from ads_infra.testing import build_test_container``.

The fixtures (``ads_container``, ``ads_container_overrides``) come from the
pytest plugin, :mod:`ads_infra.entrypoints.pytest_plugin`, which pytest loads
through the package's ``pytest11`` entry point.
"""

from ads_infra.entrypoints.pytest_plugin import (
    build_test_container,
    embedded_overrides,
    override_providers,
)

__all__ = ["build_test_container", "embedded_overrides", "override_providers"]
