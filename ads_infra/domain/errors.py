"""Domain errors: what the domain layer raises, with no dependency on the infrastructure.

:mod:`ads_infra.errors` builds on these (its ``NotFoundError`` is a
:class:`NotFoundError` of this module too, and it re-exports
:class:`ValidationError`), so a caller may catch either family.
"""

from __future__ import annotations

__all__ = ["DomainError", "NotFoundError", "ValidationError"]


class DomainError(Exception):
    """Root of every error the domain layer raises."""


class ValidationError(DomainError, ValueError):
    """An entity or a change to it is invalid; nothing was written.

    ``field`` names the offending attribute (``daily_budget_micros``,
    ``end_date``, ``campaign_id`` ...), ``entity`` the kind of entity.
    """

    def __init__(self, field: str, message: str, *, entity: str | None = None) -> None:
        self.field = field
        self.entity = entity
        self.reason = message
        where = f"{entity}.{field}" if entity else field
        super().__init__(f"{where}: {message}")


class NotFoundError(DomainError, LookupError):
    """The requested entity does not exist for this user (another user's row included)."""

    def __init__(self, entity: str, entity_id: object, *, user_id: object | None = None):
        self.entity = entity
        self.entity_id = entity_id
        self.user_id = user_id
        owner = f" for user {user_id}" if user_id is not None else ""
        super().__init__(f"{entity} {entity_id} not found{owner}")
