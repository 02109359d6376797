"""Request bodies -> Arrow tables, validated against the input model's contract.

msgspec decodes and validates in one pass in C, strictly: an integer column takes
only JSON integers (not 1.5, 2.0, 1e3, "7", true or null) within its SQL type's
range, and every error carries the JSON path, which becomes "row N, field F".
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import pyarrow as pa

from duckapi.pipeline import Column


class InputError(Exception):
    """A client error: `status` is the HTTP status, `detail` a short message."""

    def __init__(self, status: int, detail: str, row: int | None = None, field: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.row = row
        self.field = field

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"detail": self.detail}
        if self.row is not None:
            body["row"] = self.row
        if self.field is not None:
            body["field"] = self.field
        return body


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


def column_type(data_type: str) -> ColumnType:
    """The contract's SQL type name -> validation, Arrow and JSON-schema types."""
    name = re.sub(r"\(.*\)$", "", data_type.strip().lower()).strip()
    name = _ALIASES.get(name, name)
    try:
        return COLUMN_TYPES[name]
    except KeyError:
        raise ValueError(
            f"contract data_type {data_type!r} is not supported; use one of {', '.join(COLUMN_TYPES)}"
        ) from None


_PATH = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?:\[(?P<row>\d+)\])?(?:\.(?P<field>[^`\[]+))?[^`]*`)?$", re.S)
_MISSING = re.compile(r"missing required field `(?P<field>[^`]+)`")


class JsonRowsDecoder:
    """Decodes a JSON array of row objects into an Arrow table with the contract's schema."""

    def __init__(self, columns: tuple[Column, ...]) -> None:
        self.columns = columns
        fields = []
        for col in columns:
            typ = column_type(col.data_type).python
            if col.not_null:
                fields.append((col.name, typ))
            else:
                fields.append((col.name, typ | None, None))
        row_type = msgspec.defstruct("Row", fields, gc=False, forbid_unknown_fields=False)
        self._names = [c.name for c in columns]
        self._decoder = msgspec.json.Decoder(list[row_type])
        self.schema = pa.schema(
            [pa.field(c.name, column_type(c.data_type).arrow, nullable=not c.not_null) for c in columns]
        )

    def decode(self, body: bytes) -> pa.Table:
        try:
            rows = self._decoder.decode(body)
        except msgspec.ValidationError as exc:
            _raise_if_malformed(body)
            raise _validation_error(str(exc)) from None
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise _malformed(exc) from None
        arrays = [
            pa.array([getattr(row, name) for row in rows], type=field.type)
            for name, field in zip(self._names, self.schema)
        ]
        return pa.Table.from_arrays(arrays, schema=self.schema)


def _raise_if_malformed(body: bytes) -> None:
    """msgspec validates while parsing, so a type error can hide later broken JSON."""
    try:
        msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise _malformed(exc) from None


def _malformed(exc: Exception) -> InputError:
    if isinstance(exc, UnicodeDecodeError):
        return InputError(400, "body is not valid UTF-8")
    return InputError(400, f"malformed JSON: {str(exc)[:200]}")


def _validation_error(message: str) -> InputError:
    match = _PATH.match(message)
    assert match is not None  # the pattern accepts any message
    msg, row, field = match["msg"], match["row"], match["field"]
    missing = _MISSING.search(msg)
    if missing and field is None:
        field = missing["field"]
    if row is None:
        return InputError(422, f"body must be a JSON array of row objects: {msg}")
    where = f"row {row}" + (f", field '{field}'" if field else "")
    return InputError(422, f"{where}: {msg}", row=int(row), field=field)
