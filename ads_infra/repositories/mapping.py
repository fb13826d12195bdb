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
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import Table
from sqlalchemy.engine import Row

from ads_infra.domain.entities import PerformanceRecord, from_json_dict

__all__ = ["EntityMapper", "aware", "to_performance_record"]

E = TypeVar("E")

Fields = tuple[tuple[str, Callable[[Any], Any] | None], ...]

# The value ``_builder`` writes for a field, by how it is converted (``{v}`` reads the
# column): the common case (a value already aware, a stored enum value) is spelled out
# inline and the converter is called only for what it has to change (a call per field
# and row is a tenth of building an entity).
_AS_IS = "{v}"
_CONVERTED = "(None if (v{i} := {v}) is None else convert{i}(v{i}))"
_DATETIME = "(v{i} if (v{i} := {v}) is None or v{i}.tzinfo is not None else convert{i}(v{i}))"
# A member found by its value is the answer; a miss (or a member that is falsy) goes to
# the converter, which raises for a value that is no member.
_ENUM = "(None if (v{i} := {v}) is None else members{i}.get(v{i}) or convert{i}(v{i}))"


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
_BUILDERS: dict[tuple[type, tuple[str, ...] | None], Callable[[Any], Any]] = {}


def _assigns_only(cls: type) -> bool:
    """Whether ``cls(**fields)`` does nothing but set each field: a plain, mutable
    dataclass whose ``__init__`` is the generated one."""
    params = getattr(cls, "__dataclass_params__", None)
    return bool(
        params is not None
        and not params.frozen
        and not hasattr(cls, "__post_init__")
        and getattr(cls, "__new__", None) is object.__new__
        and getattr(cls, "__setattr__", None) is object.__setattr__
        and "__slots__" not in vars(cls)
    )


def _builder(
    cls: type, fields: Fields, columns: tuple[str, ...] | None = None
) -> Callable[[Any], Any]:
    """A function ``build(m)`` that makes a ``cls`` from a row, the way ``dataclasses``
    writes ``__init__``: generated once, one line per field.

    ``m`` is read by column name, or by position when ``columns`` gives the row's
    column order (an asyncpg Record reads by position in half the time). For a
    class whose ``__init__`` only assigns its fields, the object is made and
    its fields set directly: calling ``__init__`` with a keyword per field
    costs as much again as reading the row. Only the class's own field names
    (identifiers) and integer positions reach the source; no value ever does.
    """
    found = _BUILDERS.get((cls, columns))
    if found is not None:
        return found
    namespace: dict[str, Any] = {"cls": cls}
    hints = typing.get_type_hints(cls)
    values = []
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
        key = repr(name) if columns is None else str(columns.index(name))
        values.append((name, template.format(v=f"m[{key}]", i=i)))
    if _assigns_only(cls):
        namespace["new"] = object.__new__
        body = "".join(f"    e.{name} = {value}\n" for name, value in values)
        source = f"def build(m):\n    e = new(cls)\n{body}    return e\n"
    else:
        arguments = ", ".join(f"{name}={value}" for name, value in values)
        source = f"def build(m):\n    return cls({arguments})\n"
    exec(source, namespace)  # noqa: S102 - built from field names only, see above
    built: Callable[[Any], Any] = namespace["build"]
    _BUILDERS[(cls, columns)] = built
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
        # The table's columns in order: the row of ``select(table)`` or ``RETURNING *``.
        self._order = tuple(c.name for c in table.c)
        self._from_record: Callable[[Any], E] | None = None
        if all(name in self._order for name, _ in self.fields):
            self._from_record = _builder(entity_cls, self.fields, self._order)

    def from_rows(self, rows: Sequence[Any]) -> list[E]:
        """Entities from rows as :attr:`from_mapping` takes them; a page of asyncpg Records
        with the table's columns in order is read by position."""
        build = self.from_mapping
        if rows and self._from_record is not None:
            first = rows[0]
            # Not a Mapping (a Row's mapping, a dict): a Record, whose keys say its order.
            if not isinstance(first, Mapping) and tuple(first.keys()) == self._order:
                build = self._from_record
        return [build(r) for r in rows]

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
