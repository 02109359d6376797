"""A small input's rows as Python column lists, the form DuckDB binds them in.

A JSON body or list of dicts of at most BOUND_ROWS rows is decoded into Python values
anyway (msgspec), and DuckDB takes inputs that small as bound list parameters
(engines/duckdb.py). Building Arrow arrays from those values only to turn them back into
Python lists cost most of duckapi's own time on a 9-row request, so such rows stay as
lists; `to_arrow` builds the table in the contract's schema for whoever needs one.
"""

from __future__ import annotations

from typing import Any, Union

import pyarrow as pa


#: Up to this many rows the columns go in as bound list parameters rather than a
#: registered Arrow table: registering and binding a Python-held table costs more
#: than the whole conversion on tiny inputs (about a tenth of a 9-row request).
BOUND_ROWS = 256


class Columns:
    """Rows of one input as one Python list per contract column, already checked."""

    __slots__ = ("schema", "values", "num_rows")

    def __init__(self, schema: pa.Schema, values: list[list[Any]], num_rows: int) -> None:
        self.schema = schema
        self.values = values
        self.num_rows = num_rows

    def to_arrow(self) -> pa.Table:
        arrays = [pa.array(values, type=field.type) for values, field in zip(self.values, self.schema)]
        return pa.Table.from_arrays(arrays, schema=self.schema)


#: One input's rows: Arrow, or (small JSON inputs) Python column lists.
InputRows = Union[pa.Table, Columns]


def as_arrow(rows: InputRows) -> pa.Table:
    return rows.to_arrow() if isinstance(rows, Columns) else rows


def column_values(rows: InputRows) -> list[list[Any]]:
    """Each column's values as a Python list: what DuckDB binds as a list parameter."""
    if isinstance(rows, Columns):
        return rows.values
    return [column.to_pylist() for column in rows.columns]

