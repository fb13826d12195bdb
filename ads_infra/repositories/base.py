"""What the six repositories share: cache-aside, the id-keyed CRUD, id checks, SQL helpers.

Where a call runs is not decided here: each repository is given a
:class:`~ads_infra.repositories.scope.RepositoryScope` (on its own, every
call is one retried transaction; in a unit of work, the unit's session and
transaction). A repository reads and fills the cache only when its calls
are their own transactions: a shared transaction sees its own uncommitted
writes, and those must not reach other readers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import logging
import typing
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from ads_infra.database import DatabaseManager
from ads_infra.domain.entities import (
    Ad,
    AdGroup,
    Campaign,
    OptimizationSuggestion,
    to_json_dict,
    utcnow,
)
from ads_infra.domain.errors import NotFoundError, ValidationError
from ads_infra.domain.repositories import Page
from ads_infra.domain.validation import (
    MAX_COUNT,
    apply_changes,
    check_date,
    check_text,
    validate,
)
from ads_infra.repositories.keys import entity_key, stats_key, user_tag
from ads_infra.repositories.mapping import EntityMapper
from ads_infra.repositories.pagination import KeysetQuery
from ads_infra.repositories.scope import CacheLike, RepositoryScope, StandaloneScope
from ads_infra.repositories.statements import Query, queries_of

__all__ = [
    "BaseRepository",
    "CacheLike",
    "EntityRepositoryBase",
    "check_filters",
    "check_ids",
    "like_pattern",
    "name_contains",
    "owned",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
F = TypeVar("F")
# The id-keyed aggregates (performance rows are keyed by ad and date).
E = TypeVar("E", Campaign, AdGroup, Ad, OptimizationSuggestion)


# --- shared SQL helpers -----------------------------------------------------------


def check_ids(**ids: object) -> None:
    """ValidationError naming the argument when an id is not a positive integer."""
    for name, value in ids.items():
        if type(value) is not int or not 0 < value <= MAX_COUNT:
            raise ValidationError(
                name, f"must be a positive integer id up to {MAX_COUNT}, got {value!r}"
            )


MAX_FILTER_TEXT = 200


def check_filters(filters: object | None) -> None:
    """ValidationError naming the filter field whose value no backend can compare with.

    Filters come from callers (often straight from a query string): ids must be
    BIGINT ids, text valid and bounded, dates dates and enums their members.
    """
    if filters is None:
        return
    if not dataclasses.is_dataclass(filters):
        raise ValidationError("filters", f"must be a filter dataclass, got {type(filters)!r}")
    hints = typing.get_type_hints(type(filters))
    for field in dataclasses.fields(filters):
        value = getattr(filters, field.name)
        if value is None:
            continue
        name = field.name
        kinds = [k for k in typing.get_args(hints[field.name]) if k is not type(None)]
        kind = kinds[0] if kinds else hints[field.name]
        if kind is int:
            check_ids(**{name: value})
        elif kind is str:
            if not isinstance(value, str) or len(value) > MAX_FILTER_TEXT:
                raise ValidationError(name, f"must be text of at most {MAX_FILTER_TEXT} characters")
            check_text(name, value)
        elif kind is dt.date:
            if not isinstance(value, dt.date):
                raise ValidationError(name, f"must be a date, got {value!r}")
            check_date(name, value)
        elif isinstance(kind, type) and issubclass(kind, enum.Enum):
            try:
                kind(value)
            except ValueError:
                allowed = ", ".join(str(m.value) for m in kind)
                raise ValidationError(name, f"must be one of {allowed}") from None


def like_pattern(text: str) -> str:
    """The LIKE pattern of a substring match, with the wildcards in ``text`` taken literally
    (escaped with a backslash)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def name_contains(column: ColumnElement[Any], text: str) -> ColumnElement[bool]:
    """Case-insensitive substring match, with LIKE wildcards in ``text`` taken literally."""
    return column.ilike(like_pattern(text), escape="\\")


async def owned(
    session: AsyncSession, table: Table, entity_id: int, user_id: int, *columns: str
) -> Row[Any] | None:
    """The row of ``table`` with this id when the user owns it (only ``columns``)."""
    cols = [table.c[c] for c in columns] or [table.c.id]
    stmt = select(*cols).where(table.c.id == entity_id, table.c.user_id == user_id)
    return (await session.execute(stmt)).first()


# --- the base class ----------------------------------------------------------------------


class BaseRepository:
    """Runs statements through its scope and keeps the cache coherent (cache-aside)."""

    ENTITY = "entity"
    CACHE_TTL = 300

    def __init__(
        self,
        db_manager: DatabaseManager,
        cache: CacheLike | None = None,
        *,
        scope: RepositoryScope | None = None,
        cache_ttl: int | None = None,
    ) -> None:
        """``scope``: where calls run (default: each call its own retried transaction)."""
        self._db = db_manager
        self._cache = cache
        self._scope = scope if scope is not None else StandaloneScope(db_manager, cache)
        self._ttl = cache_ttl or self.CACHE_TTL
        # A cache whose backend has no tags (a plugin's, any CacheLike) is still used.
        self._tagged = bool(getattr(cache, "supports_tags", False))
        # Fixed here rather than looked up per call: both are on get_by_id's hot path.
        self._own_transactions = not self._scope.shares_transaction
        self._caching = cache is not None and self._own_transactions

    def __repr__(self) -> str:
        bound = "" if self._own_transactions else " in unit of work"
        return f"{type(self).__name__}({self._db!r}{bound})"

    @property
    def db_manager(self) -> DatabaseManager:
        return self._db

    async def _write(
        self,
        fn: Callable[[AsyncSession], Awaitable[T]],
        *,
        keys: Iterable[str] = (),
        patterns: Iterable[str] = (),
        idempotent: bool = False,
    ) -> T:
        """``fn(session)`` in the scope, then drop ``keys``/``patterns`` from the cache once
        committed."""
        result = await self._scope.run_in_session(fn, idempotent=idempotent)
        await self._scope.invalidate_after_commit(list(keys), list(patterns))
        return result

    # -- cache-aside

    async def _cache_get(self, key: str) -> Any:
        assert self._cache is not None
        try:
            return await self._cache.get(key)
        except Exception as exc:  # a sick cache must not take reads down with it
            logger.warning("cache read of %s failed, reading the database: %s", key, exc)
            return None

    async def _cache_set(self, key: str, value: Any, user_id: int) -> None:
        assert self._cache is not None
        try:
            # Tagged with its user: invalidate_tags(user_tag(user_id)) drops every
            # entry of that user at a cost proportional to them, not to the cache.
            if self._tagged:
                await self._cache.set(key, value, ttl=self._ttl, tags=(user_tag(user_id),))
            else:
                await self._cache.set(key, value, ttl=self._ttl)
        except Exception as exc:
            logger.warning("cache write of %s failed: %s", key, exc)

    async def _cached(
        self,
        key: str,
        user_id: int,
        load: Callable[[], Awaitable[T | None]],
        dump: Callable[[T], Any],
        restore: Callable[[Any], T],
    ) -> T | None:
        """Cache-aside: the cached value, or ``load()`` stored for next time (misses not cached)."""
        if not self._caching:
            return await load()
        hit = await self._cache_get(key)
        if hit is not None:
            return restore(hit)
        value = await load()
        if value is not None:
            await self._cache_set(key, dump(value), user_id)
        return value


class EntityRepositoryBase(BaseRepository, Generic[E, F]):
    """create / get_by_id (cache-aside) / update / delete / list / count of an id-keyed aggregate.

    Subclasses name the table and entity, and add the ownership of foreign ids
    (a guard in the insert's own statement, and the check that names what is
    wrong), the cross-field rules an update must keep, and what each write
    invalidates. The hot calls are one statement each, built once per shape
    (:mod:`.statements`) and sent by the scope's leanest path.
    """

    TABLE: ClassVar[Table]
    ENTITY_CLS: ClassVar[type[Any]]
    ORDERINGS: ClassVar[frozenset[str]] = frozenset({"id", "created_at", "updated_at", "name"})

    def __init__(
        self,
        db_manager: DatabaseManager,
        cache: CacheLike | None = None,
        *,
        scope: RepositoryScope | None = None,
        cache_ttl: int | None = None,
    ) -> None:
        super().__init__(db_manager, cache, scope=scope, cache_ttl=cache_ttl)
        t = self.TABLE
        # Built once: SQLAlchemy caches the compiled form of a statement it has seen.
        self._by_id: Select[Any] = select(t).where(
            t.c.id == bindparam("id"), t.c.user_id == bindparam("user_id")
        )
        self._by_id_for_update: Select[Any] = self._by_id.with_for_update()
        self._keyset: KeysetQuery = KeysetQuery(t, self.ORDERINGS)
        self._mapper: EntityMapper[E] = EntityMapper(self.ENTITY_CLS, t)
        self._queries = queries_of(type(self))

    def cache_key(self, user_id: int, entity_id: int) -> str:
        return entity_key(user_id, self.ENTITY, entity_id)

    # -- hooks

    def _template(self, user_id: int) -> E:
        """A valid entity of this kind whose fields take part in no cross-field rule: an
        update's changes are checked on it (the stored row is not read first)."""
        raise NotImplementedError

    def _update_guards(
        self, changed: tuple[str, ...], new: Callable[[str], ColumnElement[Any]]
    ) -> list[ColumnElement[bool]]:
        """SQL conditions an update of ``changed`` must meet to keep the cross-field rules,
        ``new(column)`` being the column's value after the update."""
        return []

    def _reference_shape(self, entity: E) -> Hashable:
        """Which of the entity's optional foreign ids are set (one insert per shape)."""
        return ()

    def _reference_guard(self, shape: Hashable) -> ColumnElement[bool] | None:
        """The insert's condition that every foreign id is the user's (bind parameters named
        by column), or None when the entity has none."""
        return None

    async def _check_references(self, session: AsyncSession, entity: E) -> None:
        """Raise ValidationError naming the field when a foreign id is not the user's."""

    def _invalidated_by_write(self, user_id: int, entity_id: int) -> tuple[list[str], list[str]]:
        return [self.cache_key(user_id, entity_id), stats_key(user_id)], []

    def _invalidated_by_delete(self, user_id: int, entity_id: int) -> tuple[list[str], list[str]]:
        return self._invalidated_by_write(user_id, entity_id)

    # -- statements, one per shape

    def _insert(self, shape: Hashable) -> Executable:
        t, columns = self.TABLE, self._mapper.columns
        values = [bindparam(c, type_=t.c[c].type) for c in columns]
        guard = self._reference_guard(shape)
        if guard is None:
            return insert(t).values(dict(zip(columns, values, strict=True))).returning(t.c.id)
        # The ownership check in the insert's own statement: no row when it fails.
        return insert(t).from_select(columns, select(*values).where(guard)).returning(t.c.id)

    def _update(self, changed: tuple[str, ...]) -> Executable:
        t = self.TABLE
        written = changed + (("updated_at",) if "updated_at" in t.c else ())
        values = {c: bindparam(f"v_{c}", type_=t.c[c].type) for c in written}

        def new(column: str) -> ColumnElement[Any]:
            return values[column] if column in changed else t.c[column]

        return (
            update(t)
            .where(
                # Not "id": a column's own name is kept for its SET value.
                t.c.id == bindparam("w_id"),
                t.c.user_id == bindparam("w_user_id"),
                *self._update_guards(changed, new),
            )
            .values(values)
            .returning(*t.c)
        )

    def _filter_condition(self, name: str) -> ColumnElement[bool]:
        t = self.TABLE
        if name == "name_contains":
            return t.c.name.ilike(bindparam("f_name_contains", type_=t.c.name.type), escape="\\")
        return t.c[name] == bindparam(f"f_{name}", type_=t.c[name].type)

    def _listing(self, filters: tuple[str, ...], order_by: str, after: bool) -> Executable:
        t = self.TABLE
        stmt = select(t).where(
            t.c.user_id == bindparam("user_id"), *map(self._filter_condition, filters)
        )
        return self._keyset.bound(stmt, order_by, after)

    def _counting(self, filters: tuple[str, ...]) -> Executable:
        t = self.TABLE
        return (
            select(func.count().label("n"))
            .select_from(t)
            .where(t.c.user_id == bindparam("user_id"), *map(self._filter_condition, filters))
        )

    # -- operations

    async def create(self, entity: E) -> E:
        entity = validate(dataclasses.replace(entity))
        if entity.id is not None:
            raise ValidationError(
                "id", "must be None on create: the database assigns it", entity=self.ENTITY
            )
        now = utcnow()
        if hasattr(entity, "updated_at"):
            entity.updated_at = now
        entity.created_at = now
        values = self._mapper.to_values(entity)
        shape = self._reference_shape(entity)
        query = self._queries.get(("insert", shape), lambda: self._insert(shape))
        for _ in range(2):
            row = await self._scope.write_row(query, values)
            if row is not None:
                break
            # The guard held the insert back: say which id is not the user's. When
            # that check passes, a concurrent write made it the user's since: again.
            await self._scope.run_read(lambda s: self._check_references(s, entity), primary=True)
        else:
            raise ValidationError(
                "id", "a referenced id changed owner while the row was created; try again",
                entity=self.ENTITY,
            )  # fmt: skip
        await self._scope.invalidate_after_commit([stats_key(entity.user_id)], [])
        entity.id = int(row["id"])
        return entity

    async def get_by_id(self, entity_id: int, *, user_id: int) -> E | None:
        check_ids(id=entity_id, user_id=user_id)
        params = {"id": entity_id, "user_id": user_id}

        # What fills the shared cache is read on the primary: a replica that is
        # behind would put back, for the whole TTL, a row another process has
        # just changed (and invalidated). Uncached reads may go to a replica.
        primary = self._caching

        async def load() -> E | None:
            rows = await self._scope.rows(self._by_id_query, params, primary=primary, first=True)
            return self._mapper.from_mapping(rows[0]) if rows else None

        return await self._cached(
            self.cache_key(user_id, entity_id), user_id, load, to_json_dict, self._mapper.from_json
        )

    @property
    def _by_id_query(self) -> Query:
        return self._queries.get("by_id", lambda: self._by_id)

    async def update(self, entity_id: int, changes: Mapping[str, Any], *, user_id: int) -> E:
        check_ids(id=entity_id, user_id=user_id)
        # The changes are checked on their own (names, values, and the cross-field
        # rules among them); the rules that involve stored values are guards in
        # the UPDATE itself, so the row is written by one statement.
        checked = self._mapper.to_values(apply_changes(self._template(user_id), changes))
        changed = tuple(sorted(changes))
        params: dict[str, Any] = {f"v_{c}": checked[c] for c in changed}
        params.update(v_updated_at=utcnow(), w_id=entity_id, w_user_id=user_id)
        query = self._queries.get(("update", changed), lambda: self._update(changed))
        keys, patterns = self._invalidated_by_write(user_id, entity_id)
        row = await self._scope.write_row(query, params)
        if row is None:
            # Not the user's row, or a guard refused: the locked read-modify-write
            # says which (NotFoundError, the validator's own error) or, when the
            # row changed in between, writes it.
            return await self._write(
                lambda s: self._update_locked(s, entity_id, changes, user_id),
                keys=keys,
                patterns=patterns,
            )
        await self._scope.invalidate_after_commit(keys, patterns)
        return self._mapper.from_mapping(row)

    async def _update_locked(
        self, session: AsyncSession, entity_id: int, changes: Mapping[str, Any], user_id: int
    ) -> E:
        t = self.TABLE
        row = (
            await session.execute(self._by_id_for_update, {"id": entity_id, "user_id": user_id})
        ).first()
        if row is None:
            raise NotFoundError(self.ENTITY, entity_id, user_id=user_id)
        updated = apply_changes(self._mapper.from_row(row), changes)
        if hasattr(updated, "updated_at"):
            updated.updated_at = utcnow()
        values = self._mapper.to_values(updated)
        changed = {k: values[k] for k in values if k in changes or k == "updated_at"}
        await session.execute(
            update(t).where(t.c.id == entity_id, t.c.user_id == user_id).values(**changed)
        )
        return updated

    async def delete(self, entity_id: int, *, user_id: int) -> None:
        check_ids(id=entity_id, user_id=user_id)
        t = self.TABLE
        owns = (t.c.id == entity_id, t.c.user_id == user_id)

        async def op(session: AsyncSession) -> list[str]:
            cascaded: list[str] = []
            cascades = self._cascades(entity_id)
            if cascades:
                # Lock the row before reading what cascades from it: an insert
                # of a child holds a KEY SHARE lock on this row until it
                # commits, so once we hold FOR UPDATE every child there will
                # ever be is committed and visible to the next statement.
                locked = await session.execute(select(t.c.id).where(*owns).with_for_update())
                if locked.first() is None:
                    raise NotFoundError(self.ENTITY, entity_id, user_id=user_id)
                cascaded = await self._cascaded_keys(session, cascades)
            result = await session.execute(delete(t).where(*owns))
            if not getattr(result, "rowcount", 0):
                raise NotFoundError(self.ENTITY, entity_id, user_id=user_id)
            return cascaded

        cascaded = await self._scope.run_in_session(op)
        keys, patterns = self._invalidated_by_delete(user_id, entity_id)
        await self._scope.invalidate_after_commit(keys + cascaded, patterns)

    def _cascades(self, entity_id: int) -> list[tuple[Table, str, ColumnElement[bool]]]:
        """What the database deletes with this row (ON DELETE CASCADE) that may be cached.

        As (table, its repository's ENTITY, which of its rows): their cache
        entries are dropped with the row's own, by key.
        """
        return []

    async def _cascaded_keys(
        self, session: AsyncSession, cascades: list[tuple[Table, str, ColumnElement[bool]]]
    ) -> list[str]:
        """The cache keys of the rows the database deletes with this one (one statement).

        Dropping them by key keeps a cascading delete's invalidation
        proportional to what it deletes; a pattern over the user's keys cost
        a SCAN of the whole keyspace (9.5 s at 1M keys).
        """
        parts = [
            select(literal(entity).label("entity"), child.c.user_id, child.c.id).where(which)
            for child, entity, which in cascades
        ]
        stmt = parts[0] if len(parts) == 1 else union_all(*parts)
        rows = (await session.execute(stmt)).all()
        return [entity_key(user, entity, child_id) for entity, user, child_id in rows]

    async def list(
        self,
        *,
        user_id: int,
        filters: F | None = None,
        order_by: str = "id",
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[E]:
        check_ids(user_id=user_id)
        params = self._keyset.params(order_by, limit, cursor)
        params["user_id"] = user_id
        names = self._filter_params(filters, params)
        after = cursor is not None
        query = self._queries.get(
            ("list", names, order_by, after), lambda: self._listing(names, order_by, after)
        )
        rows = await self._scope.rows(query, params)
        return self._keyset.page(rows, order_by, limit, self._mapper.from_rows)

    async def count(self, *, user_id: int, filters: F | None = None) -> int:
        check_ids(user_id=user_id)
        params: dict[str, Any] = {"user_id": user_id}
        names = self._filter_params(filters, params)
        query = self._queries.get(("count", names), lambda: self._counting(names))
        return int((await self._scope.rows(query, params, first=True))[0]["n"])

    @staticmethod
    def _filter_params(filters: object | None, params: dict[str, Any]) -> tuple[str, ...]:
        """Check ``filters``, put the set ones into ``params`` (``f_<field>``: enums as their
        stored text, ``name_contains`` as a LIKE pattern) and return their names."""
        if filters is None:
            return ()
        check_filters(filters)
        names = []
        for field in dataclasses.fields(filters):  # type: ignore[arg-type]
            value = getattr(filters, field.name)
            if field.name == "name_contains":
                if not value:
                    continue
                value = like_pattern(value)
            elif value is None:
                continue
            elif type(value) is not int:
                value = str(value)
            params[f"f_{field.name}"] = value
            names.append(field.name)
        return tuple(names)
