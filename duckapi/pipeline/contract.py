"""The SQL types an input may have, and what each means to every format.

DuckDB itself reads a type however it is spelled (INT4, NUMERIC(10,2), STRUCT(a INT)[],
a warehouse column's type) and says its name and its Arrow type: those decide the rest.
Each kind of type has one Python type msgspec validates JSON rows with, one JSON schema
(OpenAPI), and one family of DuckDB parsing rules (engines/duckdb.py). A type none of
these fit (INTERVAL, MAP, UNION, ENUM, UHUGEINT, ...) is refused, naming it.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import threading
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, TypedDict

import duckdb
import msgspec
import pyarrow as pa


@dataclass(frozen=True)
class ColumnType:
    #: As DuckDB names it: INTEGER, DECIMAL(10,2), STRUCT(a INTEGER)[].
    name: str
    #: The family of parsing rules: varchar, integer, decimal, float, boolean, date, time,
    #: timestamp, timestamptz, uuid, blob, nested.
    kind: str
    python: Any
    arrow: pa.DataType
    json_schema: dict[str, Any]
    #: An integer's range where msgspec cannot check it (beyond 64 bits): checked after decoding.
    bounds: tuple[int, int] | None = None

    @property
    def double_safe(self) -> bool:
        """Whether DuckDB's JSON reader keeps it exactly: it reads every number beyond 64-bit
        integers as a double, which rounds a long decimal or a HUGEINT."""
        return self.bounds is None and "DECIMAL" not in self.name

    @property
    def label(self) -> str:
        """How messages name it: `integer`, `decimal(10,2)`."""
        return self.name.lower()


def _int(low: int, high: int) -> Any:
    return Annotated[int, msgspec.Meta(ge=low, le=high)]


def _bounds(bits: int, signed: bool) -> tuple[int, int]:
    if bits == 128:  # HUGEINT travels in Arrow as decimal(38,0): at most 38 digits
        return -(10 ** 38 - 1), 10 ** 38 - 1
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)


#: Integer types by DuckDB name: (bits, signed).
_INTEGERS = {
    "TINYINT": (8, True), "SMALLINT": (16, True), "INTEGER": (32, True), "BIGINT": (64, True), "HUGEINT": (128, True),
    "UTINYINT": (8, False), "USMALLINT": (16, False), "UINTEGER": (32, False), "UBIGINT": (64, False),
}
_INT_FORMATS = {"SMALLINT": "int16", "INTEGER": "int32", "BIGINT": "int64"}
_SCALARS: dict[str, tuple[str, Any, dict[str, Any]]] = {
    "VARCHAR": ("varchar", str, {"type": "string"}),
    "FLOAT": ("float", float, {"type": "number", "format": "float"}),
    "DOUBLE": ("float", float, {"type": "number", "format": "double"}),
    "BOOLEAN": ("boolean", bool, {"type": "boolean"}),
    "DATE": ("date", dt.date, {"type": "string", "format": "date"}),
    "TIME": ("time", dt.time, {"type": "string", "format": "time"}),
    "TIMESTAMP": ("timestamp", dt.datetime, {"type": "string", "format": "date-time"}),
    "TIMESTAMP WITH TIME ZONE": ("timestamptz", dt.datetime, {"type": "string", "format": "date-time"}),
    "UUID": ("uuid", uuid.UUID, {"type": "string", "format": "uuid"}),
    "BLOB": ("blob", bytes, {"type": "string", "contentEncoding": "base64"}),
}
_DECIMAL = re.compile(r"^DECIMAL\((\d+),(\d+)\)$")
#: Type names that must not hide inside a LIST or STRUCT (their Arrow type is a string or
#: binary, so the element could not be checked).
_NOT_NESTED = re.compile(r"\b(UUID|JSON|BLOB|BIT|MAP|UNION|ENUM|INTERVAL|UHUGEINT|HUGEINT|BIGNUM|VARINT|TIME WITH TIME ZONE"
                         r"|TIMESTAMP_(S|MS|NS)|UBIGINT)\b|\[\d+\]")

#: Names other systems use that DuckDB does not know.
_ALIASES = {"float64": "double", "float32": "float"}
_lock = threading.Lock()
_con: duckdb.DuckDBPyConnection | None = None


@lru_cache(maxsize=1024)
def _describe(data_type: str) -> tuple[str, pa.DataType]:
    """DuckDB's name and Arrow type for a type, however spelled (raises ValueError)."""
    global _con
    if not data_type.strip() or ";" in data_type or "--" in data_type:
        raise ValueError(f"{data_type!r} is not a type")
    with _lock:
        if _con is None:
            _con = duckdb.connect(":memory:")
        try:
            spelled = _ALIASES.get(data_type.strip().lower(), data_type)
            relation = _con.sql(f"select cast(null as {spelled}) as v")
            return str(relation.types[0]), relation.to_arrow_table().schema.field(0).type
        except duckdb.Error as exc:
            raise ValueError(f"{data_type!r} is not a type DuckDB knows: {str(exc).splitlines()[0]}") from None


def duckdb_name(data_type: str) -> str:
    """A type as DuckDB names it once parsed (int4 and INTEGER are INTEGER); ValueError if
    DuckDB knows no such type."""
    return _describe(data_type)[0]


@lru_cache(maxsize=1024)
def column_type(data_type: str) -> ColumnType:
    """An input column's type -> its name, rules, validation, Arrow and JSON-schema types.
    Raises ValueError, naming it, for a type requests cannot carry."""
    name, arrow = _describe(data_type)
    if name in _INTEGERS:
        low, high = _bounds(*_INTEGERS[name])
        schema: dict[str, Any] = {"type": "integer"}
        if name in _INT_FORMATS:
            schema["format"] = _INT_FORMATS[name]
        else:
            schema.update(minimum=low, maximum=high)
        if high > 2 ** 63:  # msgspec checks bounds within 64 bits only
            return ColumnType(name, "integer", int, arrow, schema, (low, high))
        return ColumnType(name, "integer", _int(low, high), arrow, schema)
    if _DECIMAL.match(name):
        precision, scale = map(int, _DECIMAL.match(name).groups())  # type: ignore[union-attr]
        schema = {"type": "number", "description": f"exact: at most {precision - scale} digits before the point, "
                                                   f"{scale} after (a JSON number or a numeric string)"}
        return ColumnType(name, "decimal", decimal.Decimal, arrow, schema)
    if name in _SCALARS:
        kind, python, schema = _SCALARS[name]
        return ColumnType(name, kind, python, arrow, schema)
    if (name.endswith("[]") or name.startswith("STRUCT(")) and not _NOT_NESTED.search(name):
        python, schema = _nested(arrow)
        return ColumnType(name, "nested", python, arrow, schema)
    raise ValueError(
        f"type {data_type} ({name}) is not one duckapi takes as request input: it takes the integers (TINYINT to "
        "HUGEINT, unsigned to UBIGINT), DECIMAL(p,s), FLOAT, DOUBLE, BOOLEAN, VARCHAR, DATE, TIME, TIMESTAMP, "
        "TIMESTAMP WITH TIME ZONE, UUID, BLOB, and lists and structs of the numbers, strings, dates and times"
    )


def _nested(arrow: pa.DataType) -> tuple[Any, dict[str, Any]]:
    """Python type (for msgspec) and JSON schema of a LIST or STRUCT element, from Arrow."""
    if pa.types.is_list(arrow) or pa.types.is_large_list(arrow):
        python, schema = _nested(arrow.value_type)
        return list[python | None], {"type": "array", "items": {"anyOf": [schema, {"type": "null"}]}}  # type: ignore[valid-type]
    if pa.types.is_struct(arrow):
        fields = {arrow.field(i).name: _nested(arrow.field(i).type) for i in range(arrow.num_fields)}
        python = TypedDict("Struct", {n: t | None for n, (t, _) in fields.items()}, total=False)  # type: ignore[misc]
        properties = {n: {"anyOf": [s, {"type": "null"}]} for n, (_, s) in fields.items()}
        return python, {"type": "object", "properties": properties}
    if pa.types.is_integer(arrow):
        low, high = _bounds(arrow.bit_width, pa.types.is_signed_integer(arrow))
        return _int(low, high), {"type": "integer", "minimum": low, "maximum": high}
    if pa.types.is_decimal(arrow):
        return decimal.Decimal, {"type": "number"}
    if pa.types.is_floating(arrow):
        return float, {"type": "number"}
    if pa.types.is_boolean(arrow):
        return bool, {"type": "boolean"}
    if pa.types.is_string(arrow):
        return str, {"type": "string"}
    if pa.types.is_date(arrow):
        return dt.date, {"type": "string", "format": "date"}
    if pa.types.is_time(arrow):
        return dt.time, {"type": "string", "format": "time"}
    if pa.types.is_timestamp(arrow):
        return dt.datetime, {"type": "string", "format": "date-time"}
    raise ValueError(f"{arrow} inside a list or struct")


def canonical_type(data_type: str) -> str:
    """The type as messages name it (DuckDB's name, lowercased: `integer`, `decimal(10,2)`)."""
    return column_type(data_type).label


def exact_decimal(value: decimal.Decimal, arrow: pa.Decimal128Type) -> bool:
    """Whether the value fits DECIMAL(p,s) with no rounding."""
    if not value.is_finite():
        return False
    with decimal.localcontext(prec=120):
        if value != value.quantize(decimal.Decimal(1).scaleb(-arrow.scale)):
            return False
        return abs(value) < decimal.Decimal(10) ** (arrow.precision - arrow.scale)
