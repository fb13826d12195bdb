"""Hostile input to every repository's list and count: a ValidationError, never the database's.

Hypothesis draws crafted cursors (bad base64, wrong shapes, values of the
wrong type or beyond BIGINT, deep nesting), orderings, limits, user ids far
beyond BIGINT and filters holding NUL characters, lone surrogates, datetimes
and unknown enum values, on both backends. Whatever it draws, a call returns a
page or raises ValidationError: nothing malformed reaches the database (where
it came back as a "database rejected the statement" 503 before).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import json
import typing
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ads_infra.domain.errors import ValidationError
from ads_infra.domain.repositories import (
    AdFilter,
    CampaignFilter,
    GroupFilter,
    PerformanceFilter,
    SuggestionFilter,
)
from ads_infra.repositories import RepositoryFactory

FILTERS = {
    "campaigns": CampaignFilter,
    "groups": GroupFilter,
    "ads": AdFilter,
    "performance": PerformanceFilter,
    "optimization": SuggestionFilter,
}

huge_ints = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70), st.sampled_from([0, -1, 2**63, 2**63 - 1])
)
nasty_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["\x00", "a\x00b", "\ud800", "x" * 5000, "%_\\", "'; DROP TABLE ads; --"]),
)
json_values = st.recursive(
    st.none() | st.booleans() | huge_ints | st.floats() | nasty_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(nasty_text, inner, max_size=3),
    max_leaves=20,
)


def _b64(payload: bytes) -> str:
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


@st.composite
def cursors(draw: st.DrawFn, orderings: list[str]) -> str | None:
    order = draw(st.sampled_from([*orderings, "nope"]))
    shape = draw(st.sampled_from(["none", "text", "json", "deep", "tagged"]))
    if shape == "none":
        return None
    if shape == "text":
        return draw(nasty_text)
    if shape == "deep":
        return _b64(("[" * 5000 + "]" * 5000).encode())
    if shape == "tagged":
        tag = draw(st.sampled_from(["dt", "d", "dec", "x"]))
        values = [{tag: draw(nasty_text)}, draw(json_values)]
        return _b64(json.dumps({"o": order, "v": values}).encode())
    values = draw(st.lists(json_values, max_size=3))
    return _b64(json.dumps({"o": order, "v": values}, allow_nan=True).encode())


def _field_values(hint: Any) -> st.SearchStrategy[Any]:
    kinds = [k for k in typing.get_args(hint) if k is not type(None)] or [hint]
    kind = kinds[0]
    if kind is int:
        return huge_ints
    if kind is str:
        return nasty_text
    if kind is dt.date:
        return st.one_of(st.dates(), st.datetimes(), nasty_text)
    return st.one_of(st.sampled_from(list(kind)), nasty_text, huge_ints)


@st.composite
def filters(draw: st.DrawFn, cls: type) -> Any:
    hints = typing.get_type_hints(cls)
    values = {
        f.name: draw(st.none() | _field_values(hints[f.name])) for f in dataclasses.fields(cls)
    }
    return cls(**values)


def _repository(factory: RepositoryFactory, name: str) -> Any:
    return factory.create(name)


@pytest.mark.parametrize("name", sorted(FILTERS))
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_list_and_count_take_any_input_without_a_database_error(
    factory: RepositoryFactory, name: str, data: st.DataObject
) -> None:
    repository = _repository(factory, name)
    orderings = sorted(repository.ORDERINGS)
    order_by = data.draw(st.sampled_from([*orderings, *(f"-{o}" for o in orderings), "x; --"]))
    user_id = data.draw(huge_ints)
    chosen = data.draw(st.none() | filters(FILTERS[name]))
    limit = data.draw(st.integers(min_value=-5, max_value=2000))
    cursor = data.draw(cursors(orderings))
    with contextlib.suppress(ValidationError):
        await repository.list(
            user_id=user_id, filters=chosen, order_by=order_by, limit=limit, cursor=cursor
        )
    with contextlib.suppress(ValidationError):
        await repository.count(user_id=user_id, filters=chosen)
