"""Python objects as rows: what the Python API takes, read with the HTTP API's rules.

A list of dicts is encoded as the JSON body the API would get and decoded by the same
decoder, so it is accepted or refused exactly as over HTTP, with the same messages.
Arrow data (pyarrow Tables and RecordBatchReaders, pandas and Polars DataFrames, via
Arrow) is checked and cast like a Parquet body. A path or list of paths is read like
`duckapi run` reads files: the format from the name, .gz and .zst looked through.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import msgspec
import pyarrow as pa

from duckapi.errors import InputError
from duckapi.rows.bodies import RequestReader
from duckapi.rows.columns import InputRows, as_arrow
from duckapi.rows.files import SUFFIXES, compression_of, format_of, inflate, json_kind
from duckapi.rows.formats import RowsReader, conform

#: What `rows` may be, for one input; several inputs take a dict of these by input name.
ROWS_KINDS = ("a list of dicts", "a pyarrow Table or RecordBatchReader", "a pandas or Polars DataFrame",
              "a path or a list of paths")
_encode = msgspec.json.Encoder(decimal_format="number").encode


def tables(reader: RequestReader, rows: Any, max_bytes: int) -> tuple[InputRows, ...]:
    """One table per input of the endpoint, in the endpoint's input order."""
    if type(rows) is not list and isinstance(rows, Mapping):  # a list skips the slow ABC check
        return reader.assemble(rows, lambda rows_reader, value: table(rows_reader, value, max_bytes))
    if reader.single is None:
        names = ", ".join(item.name for item in reader.inputs)
        raise InputError(422, f"this endpoint takes several inputs ({names}): pass a dict of rows keyed by input name")
    return (table(reader.single, rows, max_bytes),)


def table(reader: RowsReader, rows: Any, max_bytes: int) -> InputRows:
    """One input's rows in its contract's schema (rows/columns.py), or InputError."""
    if type(rows) is list and rows and type(rows[0]) is dict:  # a list of dicts, checked first
        return reader.read(_json_body(rows), "json")
    if isinstance(rows, pa.Table):
        return conform(rows, reader.columns)
    if isinstance(rows, pa.RecordBatch):
        return conform(pa.Table.from_batches([rows]), reader.columns)
    if isinstance(rows, pa.RecordBatchReader):
        return conform(rows.read_all(), reader.columns)
    if _is_path(rows):
        return _files(reader, [rows], max_bytes)
    if isinstance(rows, Sequence) and not isinstance(rows, (str, bytes)):
        if rows and all(_is_path(item) for item in rows):
            return _files(reader, list(rows), max_bytes)
        return reader.read(_json_body(rows), "json")
    arrow = _dataframe(rows)
    if arrow is not None:
        return conform(arrow, reader.columns)
    raise InputError(422, f"cannot read rows from a {type(rows).__name__}: pass {', '.join(ROWS_KINDS)}")


def _json_body(rows: Any) -> bytes:
    """The JSON body the API would get for these rows (so they are read by its rules)."""
    try:
        return _encode(rows)
    except (TypeError, msgspec.EncodeError) as exc:
        raise InputError(422, f"rows are not JSON-like values: {exc}") from None


def _is_path(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike))


def _dataframe(value: Any) -> pa.Table | None:
    """A pandas or Polars DataFrame as Arrow (no index), else None; neither is imported
    unless the value comes from it."""
    module = type(value).__module__.split(".", 1)[0]
    if module == "pandas" and hasattr(value, "columns"):
        return pa.Table.from_pandas(value, preserve_index=False)
    if module == "polars" and hasattr(value, "to_arrow"):
        return value.to_arrow()
    return None


def _files(reader: RowsReader, paths: list[Any], max_bytes: int) -> InputRows:
    """Every file read like a request body of its format; their rows in order."""
    read = []
    for raw in paths:
        path = str(Path(raw))
        fmt = format_of(path)
        if fmt is None:
            raise InputError(415, f"{path}: cannot tell the format from the name ({', '.join(SUFFIXES)})")
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise InputError(400, f"{path}: cannot be read ({exc.strerror or exc})") from None
        encoding = compression_of(path)
        if encoding is not None:
            data = inflate(data, encoding, max_bytes)
        if fmt == "json":
            fmt = json_kind(path)
        try:
            read.append(reader.read(data, fmt))
        except InputError as exc:
            raise InputError(exc.status, f"{path}: {exc.detail}", exc.row, exc.field, exc.input) from None
    if len(read) == 1:
        return read[0]
    # Readers of different formats mark not-null columns differently: rebuild the fields.
    return pa.concat_tables([pa.Table.from_arrays(t.columns, names=t.column_names) for t in map(as_arrow, read)])
