"""The seed's import path of the demo: ``from ads_infra.infrastructure_demo import ...``.

The demo lives in :mod:`ads_infra.entrypoints.demo`.
"""

from ads_infra.entrypoints.demo import InfrastructureSystemDemo, main

__all__ = ["InfrastructureSystemDemo", "main"]
