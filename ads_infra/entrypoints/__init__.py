"""What people run: the ``ads-infra`` CLI, the demo, the soak and the pytest plugin.

Entry points sit on top of everything else: they build the container
(:mod:`ads_infra.containers`) and drive it; nothing below imports them.
"""
