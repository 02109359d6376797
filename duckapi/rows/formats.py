"""Request bodies in every accepted format -> Arrow tables in the contract's schema.

The rules are the same for every format: every contract column present, values of
the contract's type (an integer column takes integers in range: not 1.5, "7" or
true; in JSON a number with an integral value, 2.0 or 1e3, is an integer, as JSON
Schema counts it, at every body size; in CSV an integer is digits), no null where the
contract says not null. A violation is a 422 naming
the column and, where the format has rows, the first bad row (0-based data row).
A body that does not parse as its declared format is a 400.

Small JSON bodies go through msgspec, which decodes and validates in one pass and
whose errors carry the JSON path ("row N, field F"). Large JSON, NDJSON and CSV
bodies are parsed by DuckDB (much faster than building Python objects); if DuckDB
rejects a JSON body, msgspec re-reads it to say precisely why. Parquet and Arrow
IPC arrive typed and are only checked and cast (safely) to the contract.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import typing
from operator import attrgetter
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc
import pyarrow.parquet as pq

from duckapi.pipeline.contract import canonical_type, column_type, exact_decimal
from duckapi.rows.columns import BOUND_ROWS
from duckapi.rows.parsing import BodyParser, MissingColumn, Rejected, UnreadableInput
from duckapi.errors import InputError
from duckapi.pipeline import Column
from duckapi.rows.columns import Columns, InputRows


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
        row_type = msgspec.defstruct("Row", fields, gc=False, forbid_unknown_fields=False, kw_only=True)
        self._getters = [attrgetter(c.name) for c in columns]
        self._decoder = msgspec.json.Decoder(list[row_type])
        self._row_decoder = msgspec.json.Decoder(row_type)
        # JSON (and JSON Schema) treat 5.0 as the integer 5: such rows are decoded again
        # with floats allowed in integer columns, which must then be integral.
        self._int_columns = [c.name for c in columns if _is_int(column_type(c.data_type).python)]
        lenient = [(f[0], _int_or_float(f[1]), *f[2:]) for f in fields]
        lenient_row = msgspec.defstruct("LenientRow", lenient, gc=False, forbid_unknown_fields=False, kw_only=True)
        self._lenient = msgspec.json.Decoder(list[lenient_row])
        self._lenient_row = msgspec.json.Decoder(lenient_row)
        self.schema = pa.schema(
            [pa.field(c.name, column_type(c.data_type).arrow, nullable=not c.not_null) for c in columns]
        )
        kinds = [column_type(c.data_type).kind for c in columns]
        self._timestamps = [i for i, kind in enumerate(kinds) if kind == "timestamp"]
        self._decimals = [i for i, kind in enumerate(kinds) if kind == "decimal"]
        self._uuids = [i for i, kind in enumerate(kinds) if kind == "uuid"]
        self._wide = [(i, bounds) for i, c in enumerate(columns) if (bounds := column_type(c.data_type).bounds)]

    def decode(self, body: bytes) -> InputRows:
        try:
            rows = self._decoder.decode(body)
        except msgspec.ValidationError as exc:
            _raise_if_malformed(body)
            rows = self._integral(self._lenient, body, exc)
            if rows is None:
                raise _validation_error(str(exc)) from None
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise _malformed(exc) from None
        return self._table(rows)

    def decode_lines(self, body: bytes) -> InputRows:
        """NDJSON: one row object per line; blank lines are skipped."""
        rows = []
        for line in body.splitlines():
            if not line.strip():
                continue
            try:
                rows.append(self._row_decoder.decode(line))
            except msgspec.ValidationError as exc:
                try:
                    msgspec.json.decode(line)
                except (msgspec.DecodeError, UnicodeDecodeError) as bad:
                    raise _malformed(bad, f"line {len(rows)}") from None
                row = self._integral(self._lenient_row, line, exc)
                if row is None:
                    raise _validation_error(str(exc), row=len(rows)) from None
                rows.append(row)
            except (msgspec.DecodeError, UnicodeDecodeError) as exc:
                raise _malformed(exc, f"line {len(rows)}") from None
        return self._table(rows)

    def _integral(self, decoder: msgspec.json.Decoder, body: bytes, exc: msgspec.ValidationError) -> Any:
        """The rows again if the only trouble was integral floats (5.0) in integer columns."""
        if "got `float`" not in str(exc) or not self._int_columns:
            return None
        try:
            decoded = decoder.decode(body)
        except msgspec.ValidationError:
            return None
        for row in decoded if isinstance(decoded, list) else [decoded]:
            for name in self._int_columns:
                value = getattr(row, name)
                if isinstance(value, float):
                    if not value.is_integer():
                        return None
                    setattr(row, name, int(value))
        return decoded

    def _table(self, rows: list[Any]) -> InputRows:
        """Python column lists when DuckDB will bind them (rows/columns.py), else Arrow."""
        values = [list(map(get, rows)) for get in self._getters]
        for i in self._decimals:  # exactly DECIMAL(p,s): no rounding, no overflow
            for row, value in enumerate(values[i]):
                if value is not None and not exact_decimal(value, self.schema.field(i).type):
                    column = self.columns[i]
                    raise InputError(422, f"row {row}, field '{column.name}': {value} is not a valid "
                                          f"{canonical_type(column.data_type)} (it would be rounded or overflow)",
                                     row=row, field=column.name)
        for i, (low, high) in self._wide:  # beyond 64 bits, where msgspec checks no bounds
            for row, value in enumerate(values[i]):
                if value is not None and not low <= value <= high:
                    column = self.columns[i]
                    raise InputError(422, f"row {row}, field '{column.name}': expected a value between {low} and {high} "
                                          f"(a {canonical_type(column.data_type)})", row=row, field=column.name)
        for i in self._uuids:  # Arrow (and DuckDB's cast) take a UUID as its text
            values[i] = [None if v is None else str(v) for v in values[i]]
        columns = Columns(self.schema, values, len(rows))
        if len(rows) > BOUND_ROWS:
            return columns.to_arrow()
        for i in self._timestamps:  # as Arrow takes them: an offset makes it UTC, then naive
            values[i] = [_naive_utc(v) for v in values[i]]
        return columns


def _naive_utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _is_int(typ: Any) -> bool:
    return typ is int or (typing.get_origin(typ) is typing.Annotated and typing.get_args(typ)[0] is int)


def _int_or_float(typ: Any) -> Any:
    """An integer field type that also takes floats (within the same bounds), nullable kept."""
    nullable = type(None) in typing.get_args(typ) and typing.get_origin(typ) is not typing.Annotated
    base = next(t for t in typing.get_args(typ) if t is not type(None)) if nullable else typ
    if not _is_int(base):
        return typ
    meta = typing.get_args(base)[1:] if typing.get_origin(base) is typing.Annotated else ()
    widened = base | (typing.Annotated[float, *meta] if meta else float)
    return widened | None if nullable else widened


def _raise_if_malformed(body: bytes) -> None:
    """msgspec validates while parsing, so a type error can hide later broken JSON."""
    try:
        msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise _malformed(exc) from None


def _malformed(exc: Exception, where: str = "") -> InputError:
    prefix = f"{where}: " if where else ""
    if isinstance(exc, UnicodeDecodeError):
        return InputError(400, f"{prefix}body is not valid UTF-8")
    return InputError(400, f"{prefix}malformed JSON: {str(exc)[:200]}")


def _validation_error(message: str, row: int | None = None) -> InputError:
    """msgspec's message and JSON path -> "row N, field 'F': what is wrong"."""
    match = _PATH.match(message)
    assert match is not None  # the pattern accepts any message
    msg, field = match["msg"], match["field"]
    row = match["row"] if row is None else row
    missing = _MISSING.search(msg)
    if missing and field is None:
        field = missing["field"]
    if row is None:
        return InputError(422, f"body must be a JSON array of row objects: {msg}")
    where = f"row {row}" + (f", field '{field}'" if field else "")
    return InputError(422, f"{where}: {msg}", row=int(row), field=field)


#: Content-Type -> format name. Order is the order 415 answers list them in.
FORMATS = {
    "application/json": "json",
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "text/csv": "csv",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
    "application/vnd.apache.arrow.stream": "arrow",
}
#: JSON bodies up to this size are decoded by msgspec: below it, DuckDB's fixed cost
#: per read is more than msgspec's whole decode.
FAST_JSON_BYTES = 512 * 1024


class RowsReader:
    """Reads a body of any accepted format into an Arrow table in the contract's schema."""

    def __init__(self, columns: tuple[Column, ...], parser: BodyParser) -> None:
        self.columns = columns
        self.parser = parser
        self.json = JsonRowsDecoder(columns)
        #: DuckDB may parse large JSON bodies: not when it would round a number.
        self._duckdb_json = all(column_type(c.data_type).double_safe for c in columns)

    def read(self, body: bytes, fmt: str) -> InputRows:
        if fmt in ("json", "ndjson"):
            return self._json(body, fmt)
        if fmt == "csv":
            return self._csv(body)
        return conform(_read_arrow(body, fmt), self.columns)

    def _json(self, body: bytes, fmt: str) -> InputRows:
        precise = self.json.decode if fmt == "json" else self.json.decode_lines
        if len(body) <= FAST_JSON_BYTES or not self._duckdb_json:
            return precise(body)
        try:
            loaded = self.parser.load_rows(body, self.columns, fmt)
        except UnreadableInput:
            loaded = None
        if isinstance(loaded, pa.Table):
            return loaded
        precise(body)  # raises the precise 400/422
        # msgspec accepted what DuckDB did not: still refuse, naming what DuckDB saw.
        if isinstance(loaded, Rejected):
            raise _rejected(loaded, self.columns)
        raise InputError(400, f"malformed {fmt.upper()}")

    def _csv(self, body: bytes) -> pa.Table:
        try:
            loaded = self.parser.load_rows(body, self.columns, "csv")
        except UnreadableInput as exc:
            raise InputError(400, f"malformed CSV: {str(exc)[:200]}") from None
        except MissingColumn as exc:
            raise InputError(422, f"missing column '{exc}' in the CSV header", field=str(exc)) from None
        if isinstance(loaded, Rejected):
            raise _rejected(loaded, self.columns)
        return loaded


def _rejected(rejected: Rejected, columns: tuple[Column, ...]) -> InputError:
    column = next(c for c in columns if c.name == rejected.column)
    where = f"row {rejected.row}, field '{rejected.column}'"
    if rejected.value is None or rejected.value == "":
        what = "null where the contract says not null"
    else:
        shown = rejected.value if len(rejected.value) <= 40 else rejected.value[:40] + "..."
        what = f"{shown!r} is not a valid {canonical_type(column.data_type)}"
    return InputError(422, f"{where}: {what}", row=rejected.row, field=rejected.column)


def _read_arrow(body: bytes, fmt: str) -> pa.Table:
    try:
        if fmt == "parquet":
            return pq.read_table(io.BytesIO(body))
        with pyarrow.ipc.open_stream(body) as stream:
            return stream.read_all()
    except (pa.ArrowException, OSError, ValueError) as exc:
        kind = "Parquet" if fmt == "parquet" else "Arrow IPC stream"
        raise InputError(400, f"body is not a valid {kind}: {str(exc)[:200]}") from None


_STRINGS = (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view)
#: The Arrow types each kind of column (pipeline/contract.py) takes, before a safe cast to its own.
_KINDS = {
    "varchar": _STRINGS,
    "integer": (pa.types.is_integer, lambda t: pa.types.is_decimal(t) and t.scale == 0),
    "decimal": (pa.types.is_decimal, pa.types.is_integer),
    "float": (pa.types.is_floating, pa.types.is_integer),
    "boolean": (pa.types.is_boolean,),
    "date": (pa.types.is_date,),
    "time": (pa.types.is_time,),
    "timestamp": (pa.types.is_timestamp, pa.types.is_date),
    "timestamptz": (pa.types.is_timestamp,),
    "uuid": _STRINGS,
    "blob": (pa.types.is_binary, pa.types.is_large_binary, pa.types.is_fixed_size_binary),
    "nested": (pa.types.is_list, pa.types.is_large_list, pa.types.is_struct),
}
_UUID = "^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"


def conform(table: pa.Table, columns: tuple[Column, ...]) -> pa.Table:
    """A typed table -> the contract's columns and types, refusing lossy conversions."""
    arrays = []
    for column in columns:
        if column.name not in table.column_names:
            raise InputError(422, f"missing column '{column.name}'", field=column.name)
        values = table[column.name]
        kind = column_type(column.data_type)
        key, target = kind.label, kind.arrow
        if not any(check(values.type) for check in _KINDS[kind.kind]):
            raise InputError(422, f"column '{column.name}': {values.type} values are not {key}", field=column.name)
        if kind.kind == "uuid":
            valid = pc.match_substring_regex(values, _UUID)
            if pc.any(pc.invert(valid)).as_py():
                row = pc.index(valid, False).as_py()
                raise InputError(422, f"row {row}, field '{column.name}': {values[row].as_py()!r} is not a valid uuid",
                                 row=row, field=column.name)
        if values.type != target:
            try:
                values = values.cast(target, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                row = _first_uncastable(values, target)
                raise InputError(
                    422, f"row {row}, field '{column.name}': value out of range for {key}", row=row, field=column.name
                ) from None
        if column.not_null and values.null_count:
            row = pc.index(pc.is_null(values), True).as_py()
            raise InputError(
                422, f"row {row}, field '{column.name}': null where the contract says not null", row=row, field=column.name
            )
        arrays.append(values)
    return pa.Table.from_arrays(arrays, names=[c.name for c in columns])


def _first_uncastable(values: pa.ChunkedArray, target: pa.DataType) -> int:
    offset = 0
    for chunk in values.chunks:
        for i in range(len(chunk)):
            try:
                chunk.slice(i, 1).cast(target, safe=True)
            except pa.ArrowInvalid:
                return offset + i
        offset += len(chunk)
    return 0
