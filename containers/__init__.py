"""The composition root: declarative containers that build ads-infra from its configuration.

>>> container = create_container()                 # ADS_INFRA_CONFIG or ./config.yml
>>> async with running(container):                 # start what the config selects
...     db = container.database.manager()

The source lives in the repository's top-level ``containers/`` folder and is
installed as ``ads_infra.containers``, so a host app's own ``containers``
module never shadows it.
"""

from __future__ import annotations

import os
from typing import Any

from ads_infra.containers.application import Container
from ads_infra.core.loader import load_settings

__all__ = ["Container", "create_container"]


def create_container(
    config_file: str | os.PathLike[str] | None = None,
    *,
    container_cls: type[Container] = Container,
    **overrides: Any,
) -> Container:
    """Build a Container from a config file, validated before it returns.

    ``config_file`` defaults to ADS_INFRA_CONFIG, then ./config.yml, then the
    packaged defaults (the environment applies in each). Keyword
    arguments override whole or partial sections before validation:
    ``create_container(cache={"cache_type": "redis"})``. A bad file raises
    ConfigurationError naming the key and the file. ``container_cls`` is a
    host app's subclass of Container (with its own ``wiring_config``).

    ``config`` holds the validated values, every credential (a secret field, a
    URL with a password or a secret query value) as a
    :class:`~ads_infra.core.redact.Secret`; the container's ``settings``
    (:class:`~ads_infra.core.settings.Settings`) is built from it on first use,
    so that ``container.config.<key>.override(...)`` before then is what the
    container builds from, validated the same way.
    """
    settings = load_settings(config_file, overrides)  # a bad file fails here, not at first use
    container = container_cls()
    container.config.from_dict(settings.to_config())
    # A reload reads the same file with the same overrides (docs/reload.md).
    container.reloader.add_kwargs(config_file=config_file, overrides=overrides)
    return container
