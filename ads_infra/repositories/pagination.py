"""Keyset pagination: opaque cursors and the ordered, limited SELECT of one page.

Pages are cut with ``WHERE (col, key...) > (last values)``, never OFFSET, so
a page costs the same however deep it is. A cursor is base64 JSON of the last
row's key values plus the ordering it was made for, so it cannot be replayed
against another ordering.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import json
import math
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import orjson
from sqlalchemy import ColumnElement, Integer, Select, Table, bindparam, tuple_

from ads_infra.domain.errors import ValidationError
from ads_infra.domain.repositories import Page
from ads_infra.domain.validation import MAX_COUNT, check_text

__all__ = ["MAX_PAGE_SIZE", "KeysetQuery", "decode_cursor", "encode_cursor"]

T = TypeVar("T")

MAX_PAGE_SIZE = 1000


_NON_FINITE = ("nan", "inf", "-inf")


def _encode_value(value: Any) -> Any:
    # JSON has no dates or decimals: tag them so they come back as the same type.
    if isinstance(value, dt.datetime):
        return {"dt": value.isoformat()}
    if isinstance(value, dt.date):
        return {"d": value.isoformat()}
    if isinstance(value, Decimal):
        return {"dec": str(value)}
    if isinstance(value, float) and not math.isfinite(value):
        return {"f": str(value)}  # JSON has no NaN or infinities either ("nan", "inf", "-inf")
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        (tag, text), *rest = value.items() if value else ((None, None),)
        if rest or not isinstance(text, str) or len(text) > 64:
            raise TypeError("not a cursor value")
        if tag == "dt":
            return dt.datetime.fromisoformat(text)
        if tag == "d":
            return dt.date.fromisoformat(text)
        if tag == "dec":
            return Decimal(text)
        if tag == "f" and text in _NON_FINITE:
            return float(text)
        raise TypeError("not a cursor value")
    if isinstance(value, list):
        raise TypeError("not a cursor value")
    return value


def encode_cursor(order_by: str, values: Sequence[Any]) -> str:
    """The opaque cursor after a row whose ordering columns hold ``values``."""
    payload = orjson.dumps({"o": order_by, "v": [_encode_value(v) for v in values]})
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


MAX_CURSOR_LENGTH = 2048  # a cursor holds a few key values: far less than this

_BAD_CURSOR = "is not a cursor returned by list(); pass Page.next_cursor as is"


def decode_cursor(cursor: str, order_by: str, columns: Sequence[ColumnElement[Any]]) -> list[Any]:
    """The key values a cursor holds; ValidationError naming ``cursor`` when it is not one of ours.

    A cursor comes back from the client, so it is checked like any input: its
    length, its shape, and each value against the type of the column it is
    compared with (an id is an integer within BIGINT, a name is text without
    NUL, a date is a date), so nothing malformed reaches the database.
    """
    if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR_LENGTH:
        raise ValidationError("cursor", _BAD_CURSOR)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        ordering, encoded = data["o"], data["v"]
        if not isinstance(ordering, str) or not isinstance(encoded, list):
            raise TypeError("not a cursor")
        values = [_decode_value(v) for v in encoded]
    except (binascii.Error, ValueError, KeyError, TypeError, ArithmeticError, RecursionError):
        raise ValidationError("cursor", _BAD_CURSOR) from None
    if ordering != order_by or len(values) != len(columns):
        raise ValidationError(
            "cursor",
            f"was made for order_by={ordering[:40]!r}, not {order_by!r}; "
            "keep order_by the same while paging",
        )
    for value, column in zip(values, columns, strict=True):
        if not _fits(value, column):
            raise ValidationError("cursor", _BAD_CURSOR)
    return values


def _fits(value: Any, column: ColumnElement[Any]) -> bool:
    """Whether ``value`` is of the Python type ``column`` holds, within what it stores."""
    if value is None:
        return True  # a nullable ordering column's NULL
    try:
        kind = column.type.python_type
    except NotImplementedError:
        return False
    if kind is int:
        return type(value) is int and abs(value) <= MAX_COUNT
    if kind is str:
        if not isinstance(value, str) or len(value) > 1000:
            return False
        try:
            check_text("cursor", value)
        except ValidationError:
            return False
        return True
    if kind is dt.datetime:
        return isinstance(value, dt.datetime)
    if kind is dt.date:
        return isinstance(value, dt.date) and not isinstance(value, dt.datetime)
    if kind is float:
        # A float column may hold NaN and the infinities (a cursor tags them).
        return type(value) in (int, float) and (not math.isfinite(value) or abs(value) < 1e300)
    if kind is Decimal:
        return isinstance(value, Decimal) and value.is_finite() and abs(value) < Decimal(10) ** 15
    return False


@dataclasses.dataclass(frozen=True)
class KeysetQuery:
    """Ordering and paging of one listing: ``order_by`` from a whitelist, ties broken by key."""

    table: Table
    orderings: frozenset[str]
    key: tuple[str, ...] = ("id",)

    def columns(self, order_by: str) -> tuple[bool, list[ColumnElement[Any]]]:
        descending = order_by.startswith("-")
        name = order_by.removeprefix("-")
        if name not in self.orderings:
            allowed = ", ".join(sorted(self.orderings))
            raise ValidationError(
                "order_by",
                f"cannot order by {order_by!r}; use one of {allowed} (prefix - for descending)",
            )
        names = [name, *(k for k in self.key if k != name)]
        return descending, [self.table.c[n] for n in names]

    def bound(self, stmt: Select[Any], order_by: str, after_cursor: bool) -> Select[Any]:
        """``stmt`` ordered and limited with parameters (``k0``.. the cursor's values,
        ``limit``), so one statement serves every page: :meth:`params` gives their values."""
        descending, cols = self.columns(order_by)
        if after_cursor:
            keys = [bindparam(f"k{i}", type_=c.type) for i, c in enumerate(cols)]
            if len(cols) == 1:
                cond = cols[0] < keys[0] if descending else cols[0] > keys[0]
            else:
                left, right = tuple_(*cols), tuple_(*keys)
                cond = left < right if descending else left > right
            stmt = stmt.where(cond)
        order = [c.desc() if descending else c.asc() for c in cols]
        return stmt.order_by(*order).limit(bindparam("limit", type_=Integer()))

    def params(self, order_by: str, limit: int, cursor: str | None) -> dict[str, Any]:
        """The values of :meth:`bound`'s parameters: ``limit`` checked, ``cursor`` decoded."""
        _check_limit(limit)
        # One row more than asked: its presence says whether there is a next page.
        params: dict[str, Any] = {"limit": limit + 1}
        if cursor is not None:
            _, cols = self.columns(order_by)
            for i, value in enumerate(decode_cursor(cursor, order_by, cols)):
                params[f"k{i}"] = value
        return params

    def apply(
        self, stmt: Select[Any], order_by: str, limit: int, cursor: str | None
    ) -> Select[Any]:
        _check_limit(limit)
        descending, cols = self.columns(order_by)
        if cursor is not None:
            values = decode_cursor(cursor, order_by, cols)
            if len(cols) == 1:
                cond = cols[0] < values[0] if descending else cols[0] > values[0]
            else:
                left, right = tuple_(*cols), tuple_(*values)
                cond = left < right if descending else left > right
            stmt = stmt.where(cond)
        order = [c.desc() if descending else c.asc() for c in cols]
        # One row more than asked: its presence says whether there is a next page.
        return stmt.order_by(*order).limit(limit + 1)

    def page(
        self,
        rows: Sequence[Mapping[str, Any]],
        order_by: str,
        limit: int,
        convert: Callable[[Sequence[Any]], list[T]],
    ) -> Page[T]:
        """The page of ``rows`` (up to ``limit + 1``, by column name) as ``convert`` makes
        them, and its next cursor."""
        _, cols = self.columns(order_by)
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = None
        if more and rows:
            last = rows[-1]
            next_cursor = encode_cursor(order_by, [last[c.name] for c in cols])
        return Page(items=convert(rows), next_cursor=next_cursor)


def _check_limit(limit: object) -> None:
    if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValidationError("limit", f"must be between 1 and {MAX_PAGE_SIZE}, got {limit!r}")
