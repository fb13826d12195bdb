"""Rows to entities: the generated builders read by name or by position and give equal entities."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from ads_infra.database.tables import ads
from ads_infra.domain.entities import Ad, AdType, Status
from ads_infra.domain.errors import ValidationError
from ads_infra.repositories.mapping import EntityMapper, _assigns_only, _builder, _entity_fields


class RecordLike:
    """What asyncpg's Record offers the mapper: keys in column order, reads by name or index
    (and it is no Mapping)."""

    def __init__(self, columns: dict[str, Any]) -> None:
        self._names = list(columns)
        self._values = list(columns.values())
        self.reads: list[object] = []

    def keys(self) -> Iterator[str]:
        return iter(self._names)

    def __getitem__(self, key: int | str) -> Any:
        self.reads.append(key)
        return self._values[key if isinstance(key, int) else self._names.index(key)]


def _columns(i: int, naive: bool = False) -> dict[str, Any]:
    created = dt.datetime(2024, 5, 1, 12, 0, tzinfo=None if naive else dt.UTC)
    row = {
        "id": i, "user_id": 7, "campaign_id": 3, "group_id": 4, "name": f"ad {i}",
        "ad_type": "image", "status": "active", "headline": "h", "description": "d",
        "final_url": None, "creative_key": "k", "metadata": {"tags": ["a"]},
        "created_at": created, "updated_at": None,
    }  # fmt: skip
    return {c.name: row[c.name] for c in ads.c}


def test_a_page_of_records_in_table_order_is_read_by_position() -> None:
    mapper: EntityMapper[Ad] = EntityMapper(Ad, ads)
    records = [RecordLike(_columns(i)) for i in range(3)]
    built = mapper.from_rows(records)
    assert built == [mapper.from_mapping(_columns(i)) for i in range(3)]
    assert built[0].ad_type is AdType.IMAGE and built[0].status is Status.ACTIVE
    assert all(isinstance(key, int) for key in records[1].reads)


def test_records_in_another_order_and_mappings_are_read_by_name() -> None:
    mapper: EntityMapper[Ad] = EntityMapper(Ad, ads)
    reordered = RecordLike(dict(reversed(list(_columns(1).items()))))
    (from_record,) = mapper.from_rows([reordered])
    assert all(isinstance(key, str) for key in reordered.reads)
    (from_dict,) = mapper.from_rows([_columns(1, naive=True)])
    assert from_record == from_dict
    assert from_dict.created_at is not None and from_dict.created_at.tzinfo is dt.UTC


def test_a_stored_value_that_is_no_member_is_refused_on_either_path() -> None:
    mapper: EntityMapper[Ad] = EntityMapper(Ad, ads)
    bad = {**_columns(1), "status": "sleeping"}
    for rows in ([RecordLike(bad)], [bad]):
        with pytest.raises((ValueError, ValidationError)):
            mapper.from_rows(rows)


@dataclasses.dataclass(kw_only=True)
class Checked:
    name: str
    seen: bool = False

    def __post_init__(self) -> None:
        self.seen = True


def test_a_class_whose_init_does_more_than_assign_is_built_by_calling_it() -> None:
    assert _assigns_only(Ad) and not _assigns_only(Checked)
    build = _builder(Checked, _entity_fields(Checked))
    assert build({"name": "x", "seen": False}).seen is True


@dataclasses.dataclass(kw_only=True)
class HandWritten:
    name: str
    seen: bool = False

    def __init__(self, *, name: str, seen: bool = False) -> None:  # kept by @dataclass
        self.name, self.seen = name, True


class Plain(Ad):
    """Not a dataclass of its own: its fields and __init__ are Ad's."""


def test_only_a_generated_init_of_the_class_itself_is_skipped() -> None:
    assert not _assigns_only(HandWritten) and not _assigns_only(Plain)
    assert _builder(HandWritten, _entity_fields(HandWritten))({"name": "x", "seen": False}).seen
