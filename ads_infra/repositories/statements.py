"""Statements built once per shape and compiled once for the driver.

A repository call builds its Core statement with named bind parameters
(``bindparam("user_id")``) rather than literal values, so one statement
serves every call of the same shape (the same filters set, the same
ordering): :class:`Queries` keeps one :class:`Query` per shape. On
PostgreSQL the scope sends a query straight to asyncpg (see
:mod:`ads_infra.database.direct`): :meth:`Query.driver` compiles it once
with the asyncpg dialect into its SQL text and the order of its ``$n``
arguments, and asyncpg's statement cache prepares that text once per
connection. Elsewhere (SQLite, a unit of work's session) the Core statement
runs through SQLAlchemy with the same parameters.

Compiling ourselves, rather than executing through SQLAlchemy, is what takes
the per-call work down to the driver's: SQLAlchemy's own cache still builds
a cache key, an execution context and a result per call.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any, cast

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

__all__ = ["DriverStatement", "Queries", "Query", "queries_of"]

Processor = Callable[[Any], Any] | None


class DriverStatement:
    """A statement's SQL as asyncpg takes it, and its named parameters in ``$n`` order."""

    __slots__ = ("_order", "sql")

    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        compiled = cast(SQLCompiler, cast(ClauseElement, statement).compile(dialect=dialect))
        self.sql = str(compiled)
        binds = compiled.binds
        order: list[tuple[str, Processor, Any]] = []
        for name in compiled.positiontup or ():
            bind = binds[name]
            # What SQLAlchemy would do to the value on the way in (JSON is
            # serialized: the dialect's codec takes text).
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            order.append((name, processor, bind.value))
        self._order = tuple(order)

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        """The positional arguments for ``params`` (a parameter not given keeps its built-in
        value)."""
        out = []
        for name, processor, default in self._order:
            value = params.get(name, default)
            out.append(value if processor is None else processor(value))
        return out


class Query:
    """A Core statement with named parameters, and its driver form once asked for."""

    __slots__ = ("_driver", "core")

    def __init__(self, core: Executable) -> None:
        self.core = core
        self._driver: DriverStatement | None = None

    def driver(self, dialect: Dialect) -> DriverStatement:
        found = self._driver
        if found is None:
            found = self._driver = DriverStatement(self.core, dialect)
        return found


class Queries:
    """One Query per shape, built on first use; shapes come from whitelists, so they are few.

    Bounded all the same: past ``limit`` shapes a new one is built for its
    call and not kept.
    """

    def __init__(self, limit: int = 512) -> None:
        self._found: dict[Hashable, Query] = {}
        self._limit = limit

    def get(self, shape: Hashable, build: Callable[[], Executable]) -> Query:
        query = self._found.get(shape)
        if query is None:
            query = Query(build())
            if len(self._found) < self._limit:
                self._found[shape] = query
        return query


_BY_OWNER: dict[type, Queries] = {}


def queries_of(owner: type) -> Queries:
    """The Queries of one repository class: shared by its instances (a unit of work builds
    new ones each time), since a shape's statement depends only on the class."""
    found = _BY_OWNER.get(owner)
    if found is None:
        found = _BY_OWNER[owner] = Queries()
    return found
