"""Cache keys of the repositories: every key of a user starts with that user's prefix.

One prefix per user keeps one user's entries out of another's reach. Every
entry a repository caches is also tagged with :func:`user_tag`, so
``cache.invalidate_tags(user_tag(42))`` drops everything cached for user 42
at a cost proportional to those entries (``invalidate_pattern(user_pattern(42))``
does the same by scanning the whole cache).
"""

from __future__ import annotations

__all__ = ["KEY_PREFIX", "entity_key", "stats_key", "user_key", "user_pattern", "user_tag"]

KEY_PREFIX = "repo"


def user_key(user_id: int) -> str:
    """The prefix of every key of ``user_id``."""
    return f"{KEY_PREFIX}:u{user_id}"


def user_pattern(user_id: int) -> str:
    """A pattern matching every key of ``user_id`` (for ``invalidate_pattern``)."""
    return f"{KEY_PREFIX}:u{user_id}:*"


def user_tag(user_id: int) -> str:
    """The cache tag every entry of ``user_id`` is stored with."""
    return f"{KEY_PREFIX}:u{user_id}"


def stats_key(user_id: int) -> str:
    """The key of the user's cached ``UserStats``."""
    return f"{user_key(user_id)}:stats"


def entity_key(user_id: int, entity: str, entity_id: int) -> str:
    """The key of one cached entity, e.g. ``repo:u7:ad:42``."""
    # Spelled out rather than built on user_key(): it runs on every cached
    # get_by_id, the hottest path there is, so it stays one call deep.
    return f"{KEY_PREFIX}:u{user_id}:{entity}:{entity_id}"
