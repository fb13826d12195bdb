"""Keyset cursors: every value a sort column can hold comes back as it went in."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import pytest
from sqlalchemy import Column, Date, DateTime, Float, Integer, MetaData, Numeric, String, Table

from ads_infra.domain.errors import ValidationError
from ads_infra.repositories.pagination import decode_cursor, encode_cursor

T = Table(
    "t", MetaData(),
    Column("i", Integer), Column("s", String), Column("f", Float), Column("d", Date),
    Column("ts", DateTime(timezone=True)), Column("n", Numeric(12, 4)),
)  # fmt: skip


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("i", 2**63 - 1),
        ("s", "été 日本 🎯 \\u2028"),
        ("f", 0.1),
        ("f", float("inf")),
        ("f", float("-inf")),
        ("d", dt.date(2024, 2, 29)),
        ("ts", dt.datetime(2024, 1, 1, 12, 30, tzinfo=dt.UTC)),
        ("n", Decimal("12.3400")),
        ("s", None),
    ],
)
def test_a_cursor_gives_back_the_value_it_was_made_from(column: str, value: object) -> None:
    cursor = encode_cursor("x", [value, 7])
    assert decode_cursor(cursor, "x", [T.c[column], T.c.i]) == [value, 7]


def test_a_nan_sort_value_survives_the_cursor() -> None:
    # JSON has no NaN: written as null it would compare as NULL and end the listing early.
    (value, key) = decode_cursor(encode_cursor("-f", [math.nan, 3]), "-f", [T.c.f, T.c.i])
    assert math.isnan(value) and key == 3


def test_a_tag_that_is_no_float_is_not_a_cursor() -> None:
    cursor = encode_cursor("x", [{"f": "1e999"}, 1])  # a dict is no sort value
    with pytest.raises(ValidationError):
        decode_cursor(cursor, "x", [T.c.f, T.c.i])
