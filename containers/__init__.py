"""The composition root: declarative containers that build ads-infra from config.yml.

>>> container = create_container()                 # ADS_INFRA_CONFIG or ./config.yml
>>> await container.init_resources()               # start what the config selects
>>> db = container.database.manager()
>>> await container.shutdown_resources()
"""

from __future__ import annotations

import os
from typing import Any

from ads_infra.config import load_settings
from containers.application import Container

__all__ = ["Container", "create_container"]


def create_container(
    config_file: str | os.PathLike[str] | None = None,
    *,
    container_cls: type[Container] = Container,
    **overrides: Any,
) -> Container:
    """Build a Container from a validated config file.

    ``config_file`` defaults to ADS_INFRA_CONFIG, then ./config.yml. Keyword
    arguments override whole or partial sections before validation:
    ``create_container(cache={"cache_type": "redis"})``. A bad file raises
    ConfigurationError naming the key and the file. ``container_cls`` is a
    host app's subclass of Container (with its own ``wiring_config``).
    """
    settings = load_settings(config_file, overrides)
    container = container_cls()
    container.config.from_dict(settings.to_dict())
    return container
