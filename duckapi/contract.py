"""The SQL types an input contract may use, and what each means to every format."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import pyarrow as pa


def _int(bits: int) -> Any:
    return Annotated[int, msgspec.Meta(ge=-(2 ** (bits - 1)), le=2 ** (bits - 1) - 1)]


@dataclass(frozen=True)
class ColumnType:
    python: Any
    arrow: pa.DataType
    json_schema: dict[str, Any]


_INT64 = {"type": "integer", "format": "int64"}
COLUMN_TYPES: dict[str, ColumnType] = {
    "varchar": ColumnType(str, pa.string(), {"type": "string"}),
    "bigint": ColumnType(_int(64), pa.int64(), _INT64),
    "integer": ColumnType(_int(32), pa.int32(), {"type": "integer", "format": "int32"}),
    "smallint": ColumnType(_int(16), pa.int16(), {"type": "integer", "format": "int16"}),
    "double": ColumnType(float, pa.float64(), {"type": "number", "format": "double"}),
    "boolean": ColumnType(bool, pa.bool_(), {"type": "boolean"}),
    "date": ColumnType(dt.date, pa.date32(), {"type": "string", "format": "date"}),
    "timestamp": ColumnType(dt.datetime, pa.timestamp("us"), {"type": "string", "format": "date-time"}),
}
_ALIASES = {
    "text": "varchar", "string": "varchar", "char": "varchar", "bpchar": "varchar",
    "int8": "bigint", "long": "bigint", "int64": "bigint",
    "int": "integer", "int4": "integer", "int32": "integer", "signed": "integer",
    "int2": "smallint", "short": "smallint",
    "float8": "double", "float64": "double", "double precision": "double", "real": "double", "float": "double",
    "bool": "boolean", "logical": "boolean",
    "datetime": "timestamp", "timestamp without time zone": "timestamp",
}


def canonical_type(data_type: str) -> str:
    """The contract's SQL type name as one of COLUMN_TYPES' keys (aliases resolved)."""
    name = re.sub(r"\(.*\)$", "", data_type.strip().lower()).strip()
    name = _ALIASES.get(name, name)
    if name not in COLUMN_TYPES:
        raise ValueError(f"contract data_type {data_type!r} is not supported; use one of {', '.join(COLUMN_TYPES)}")
    return name


def column_type(data_type: str) -> ColumnType:
    """The contract's SQL type name -> validation, Arrow and JSON-schema types."""
    return COLUMN_TYPES[canonical_type(data_type)]
