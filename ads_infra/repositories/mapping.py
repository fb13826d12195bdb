"""Rows to entities and back: the one place that knows how columns become entity fields.

SQLite and PostgreSQL hand back the same columns as slightly different
Python values (naive datetimes, floats for NUMERIC, strings for enums); the
conversions here make both give equal entities.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import typing
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import Table
from sqlalchemy.engine import Row

from ads_infra.domain.entities import PerformanceRecord, from_json_dict

__all__ = ["EntityMapper", "aware", "to_performance_record"]

E = TypeVar("E")

Fields = tuple[tuple[str, Callable[[Any], Any] | None], ...]

# The keyword argument ``_builder`` writes for a field, by how it is converted: the
# common case (a value already aware, a stored enum value) is spelled out inline and
# the converter is called only for what it has to change (a call per field and row
# is a tenth of building an entity).
_AS_IS = "{name}=m[{key}]"
_CONVERTED = "{name}=(None if (v{i} := m[{key}]) is None else convert{i}(v{i}))"
_DATETIME = (
    "{name}=(v{i} if (v{i} := m[{key}]) is None or v{i}.tzinfo is not None else convert{i}(v{i}))"
)
# A member found by its value is the answer; a miss (or a member that is falsy) goes to
# the converter, which raises for a value that is no member.
_ENUM = "{name}=(None if (v{i} := m[{key}]) is None else members{i}.get(v{i}) or convert{i}(v{i}))"


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes; everything is stored in UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _base(hint: Any) -> Any:
    """``X`` of ``X | None`` (or of ``X``)."""
    args = [a for a in getattr(hint, "__args__", ()) if a is not type(None)]
    return args[0] if args else hint


def _enum_of(hint: Any) -> type[enum.Enum] | None:
    base = _base(hint)
    return base if isinstance(base, type) and issubclass(base, enum.Enum) else None


def _converter(hint: Any) -> Callable[[Any], Any] | None:
    """How a column value becomes the entity field's value (None: as is)."""
    base = _base(hint)
    if base is dt.datetime:
        return aware
    if isinstance(base, type) and issubclass(base, enum.Enum):
        return _enum_converter(base)
    if base is Decimal:
        return lambda v: v if isinstance(v, Decimal) else Decimal(str(v))
    return None


def _members(cls: type[enum.Enum]) -> dict[Any, enum.Enum]:
    return {member.value: member for member in cls}


def _enum_converter(cls: type[enum.Enum]) -> Callable[[Any], Any]:
    """``cls(value)`` by a dict lookup first (the call itself costs ten times more)."""
    members = _members(cls)

    def convert(value: Any) -> Any:
        try:
            return members[value]
        except (KeyError, TypeError):
            return cls(value)

    return convert


# Resolving type hints is slow; one entity class's fields never change.
_FIELDS: dict[type, Fields] = {}
_BUILDERS: dict[type, Callable[[Any], Any]] = {}


def _builder(cls: type, fields: Fields) -> Callable[[Any], Any]:
    """A function ``build(m)`` that makes a ``cls`` from a mapping, one keyword per field.

    Generated once per entity class, the way ``dataclasses`` writes
    ``__init__``: a page of 50 rows is mostly this, and spelled out it costs
    half what a loop over the fields does. Only the class's own field names
    (identifiers) reach the source; no value ever does.
    """
    found = _BUILDERS.get(cls)
    if found is not None:
        return found
    namespace: dict[str, Any] = {"cls": cls}
    hints = typing.get_type_hints(cls)
    arguments = []
    for i, (name, convert) in enumerate(fields):
        if not name.isidentifier():  # a dataclass field always is; never build from anything else
            raise ValueError(f"not a field name: {name!r}")
        template = _CONVERTED
        if convert is None:
            template = _AS_IS
        elif convert is aware:
            template = _DATETIME
        else:
            enum_cls = _enum_of(hints[name])
            if enum_cls is not None:
                namespace[f"members{i}"] = _members(enum_cls)
                template = _ENUM
        if convert is not None:
            namespace[f"convert{i}"] = convert
        arguments.append(template.format(name=name, key=repr(name), i=i))
    if getattr(cls, "__new__", None) is object.__new__ and "__init__" in vars(cls):
        # What ``cls(...)`` does, without calling the class: a call of a class with
        # keywords packs them into a dict for ``__init__`` to unpack again (callgrind,
        # a page of 50 ads: 2.30M -> 2.03M instructions per list call without it).
        namespace.update(new=object.__new__, init=vars(cls)["__init__"])
        source = (
            "def build(m):\n    e = new(cls)\n    init(e, " + ", ".join(arguments) + ")\n"
            "    return e\n"
        )
    else:
        source = "def build(m):\n    return cls(" + ", ".join(arguments) + ")\n"
    exec(source, namespace)  # noqa: S102 - built from field names only, see above
    built: Callable[[Any], Any] = namespace["build"]
    _BUILDERS[cls] = built
    return built


def _entity_fields(cls: type) -> Fields:
    found = _FIELDS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls)
        fields = dataclasses.fields(cls)
        found = _FIELDS[cls] = tuple((f.name, _converter(hints[f.name])) for f in fields)
    return found


class EntityMapper(Generic[E]):
    """Converts between one table's rows and one entity dataclass (and its cached JSON form)."""

    def __init__(self, entity_cls: type[E], table: Table) -> None:
        # Typed loosely: the constructor and from_json_dict take any of the entity classes.
        self.entity_cls: type[Any] = entity_cls
        self.fields = _entity_fields(entity_cls)
        # What an INSERT or UPDATE writes: every field with a column, but the generated id.
        self.columns = [name for name, _ in self.fields if name in table.c and name != "id"]
        #: An entity from anything indexable by column name (a Row mapping, an asyncpg
        #: Record): the generated function itself, since a method around it is one more
        #: call per row of a page.
        self.from_mapping: Callable[[Any], E] = _builder(entity_cls, self.fields)

    def from_row(self, row: Row[Any]) -> E:
        return self.from_mapping(row._mapping)

    def to_values(self, entity: E) -> dict[str, Any]:
        """The column values of ``entity`` (enums as their stored values)."""
        values: dict[str, Any] = {}
        for name in self.columns:
            value = getattr(entity, name)
            values[name] = value.value if isinstance(value, enum.Enum) else value
        return values

    def from_json(self, data: Any) -> E:
        """An entity from the JSON-safe form the cache stores (``to_json_dict``)."""
        return cast(E, from_json_dict(self.entity_cls, data))


def to_performance_record(m: Mapping[Any, Any]) -> PerformanceRecord:
    """A PerformanceRecord from a ``performance_daily`` row (anything indexable by column
    name: a Row's mapping, an asyncpg Record)."""
    conversions = m["conversions"]
    if not isinstance(conversions, Decimal):
        # SQLite keeps NUMERIC as a float.
        conversions = Decimal(str(conversions))
    return PerformanceRecord(
        ad_id=m["ad_id"],
        date=m["date"],
        user_id=m["user_id"],
        campaign_id=m["campaign_id"],
        group_id=m["group_id"],
        impressions=m["impressions"],
        clicks=m["clicks"],
        conversions=conversions.quantize(Decimal("0.0001")),
        cost_micros=m["cost_micros"],
        conversion_value_micros=m["conversion_value_micros"],
    )
