"""The main job: ``ads-infra demo`` / ``InfrastructureSystemDemo().run_comprehensive_demo()``.

:mod:`.runner` drives every component end to end, :mod:`.report` prints what
it saw and :mod:`.data` generates the deterministic demo data set.
"""

from ads_infra.entrypoints.demo.data import tiny_png
from ads_infra.entrypoints.demo.runner import InfrastructureSystemDemo, main

__all__ = ["InfrastructureSystemDemo", "main", "tiny_png"]
