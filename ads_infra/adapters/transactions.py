"""A :class:`~ads_infra.domain.ports.TransactionRunner` over the repositories' units of work."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from ads_infra.domain.ports import TransactionRepositories
from ads_infra.repositories import RepositoryFactory

__all__ = ["RepositoryTransactions"]

T = TypeVar("T")


class RepositoryTransactions:
    """A :class:`~ads_infra.domain.ports.TransactionRunner` over :meth:`RepositoryFactory.run`.

    Each call is one unit of work, retried as a whole on transient errors; the
    cache entries its writes affect are dropped after the commit.
    """

    def __init__(self, factory: RepositoryFactory) -> None:
        self.factory = factory

    async def run(self, fn: Callable[[TransactionRepositories], Awaitable[T]]) -> T:
        return await self.factory.run(fn)
