"""Building a ``providers.Selector``'s choices from a package's table of backends.

Each adapter package names its backends once (``STORAGE_BACKENDS``, ...);
the sub-containers turn that table into one Singleton per backend here, so a
new backend is added in its package alone.
"""

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from dependency_injector import providers

Name = TypeVar("Name", bound=str)  # a backend enum (StrEnum) or a plain name


def one_per_backend(
    backends: Mapping[Name, Callable[..., Any]], **kwargs: Any
) -> dict[str, providers.Provider[Any]]:
    """``{name: providers.Singleton(build, **kwargs)}`` for every backend."""
    return {str(name): providers.Singleton(build, **kwargs) for name, build in backends.items()}
