"""JSON, NDJSON and CSV bodies parsed by DuckDB, checked against the contract by strict rules.

Large bodies are parsed by DuckDB (much faster than building Python objects): every contract
column read untyped (JSON values, CSV text) and converted by the rules below. The parsing runs
in a DuckDB database this module owns, one per thread, which only ever runs duckapi's own SQL
(it needs DuckDB's file layer to read Python file objects, so it is not a pipeline lane, whose
external access is off). The rows never reach the execution engine's databases from here.
"""

from __future__ import annotations

import io
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from duckapi.pipeline.contract import column_type
from duckapi.errors import error_message, from_duckdb
from duckapi.pipeline.relations import Column, quote_identifier


#: How a contract column's untyped value (JSON, or CSV text) is accepted and converted:
#: (acceptance test over the raw value {c} and converted value {v}, conversion).
#: JSON values are checked on their text (cheaper than json_type): a string starts
#: with a quote, an integer is digits with an optional minus, and so on.
#: A JSON integer, or a JSON number with an integral value (5.0, 1e3: JSON Schema's
#: integers, as the msgspec path takes them too), in the column type's range.
_JSON_NUMBER = "'-?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?'"
_JSON_INT = (
    f"regexp_full_match({{c}}::varchar, {_JSON_NUMBER}) and {{v}} is not null"
    " and try_cast({c}::varchar as double) = trunc(try_cast({c}::varchar as double))",
    "case when regexp_full_match({c}::varchar, '-?[0-9]+') then try_cast({c} as {t})"
    " else try_cast(try_cast({c}::varchar as double) as {t}) end",
)
_CSV_INT = ("regexp_full_match({c}, '[-+]?[0-9]+') and {v} is not null", "try_cast({c} as {t})")
_JSON_STRING = "starts_with({c}::varchar, '\"')"
_TYPED = "{v} is not null"
_JSON_TEXT = "json_extract_string({c}, '$')"
#: A decimal's text: at most {s} digits after the point but trailing zeros (exact, not rounded).
_DECIMAL = "regexp_full_match({x}, '[-+]?[0-9]+([.][0-9]{{0,{s}}}0*)?') and {v} is not null"
#: Per kind of type (pipeline/contract.py): (accepts the raw value, converts it). {c} the raw JSON
#: value or CSV text, {t} the column's type, {v} the converted value.
JSON_RULES: dict[str, tuple[str, str]] = {
    "varchar": (_JSON_STRING, _JSON_TEXT),
    "integer": _JSON_INT,
    "decimal": (_DECIMAL.replace("{x}", "coalesce(" + _JSON_TEXT + ", {c}::varchar)"),
                "try_cast(coalesce(" + _JSON_TEXT + ", {c}::varchar) as {t})"),
    "float": (f"regexp_full_match({{c}}::varchar, {_JSON_NUMBER}) and " + _TYPED, "try_cast({c} as {t})"),
    "boolean": ("{c}::varchar in ('true', 'false')", "try_cast({c} as boolean)"),
    **{kind: (_JSON_STRING + " and " + _TYPED, f"try_cast({_JSON_TEXT} as {{t}})")
       for kind in ("date", "time", "timestamp", "timestamptz", "uuid")},
    "blob": (_JSON_STRING + " and " + _TYPED, f"try(from_base64({_JSON_TEXT}))"),
    "nested": ("{c}::varchar in ('[]', '{{}}') or " + _TYPED, "try_cast({c} as {t})"),
}
CSV_RULES: dict[str, tuple[str, str]] = {
    "varchar": ("true", "{c}"),
    "integer": _CSV_INT,
    "decimal": (_DECIMAL.replace("{x}", "{c}"), "try_cast({c} as {t})"),
    "float": (_TYPED, "try_cast({c} as {t})"),
    "boolean": ("lower({c}) in ('true', 'false')", "try_cast({c} as boolean)"),
    **{kind: (_TYPED, "try_cast({c} as {t})") for kind in ("date", "time", "timestamp", "timestamptz", "uuid", "nested")},
    "blob": (_TYPED, "try(from_base64({c}))"),
}


@dataclass(frozen=True)
class Rejected:
    """The first value that breaks the contract: 0-based data row, column, raw text."""

    row: int
    column: str
    value: str | None


class UnreadableInput(ValueError):
    """DuckDB could not parse the body as the declared format."""


class MissingColumn(ValueError):
    """A contract column is absent from the body's header."""


class BodyParser:
    """Parses bodies with DuckDB in a database per thread, made with `config` (threads,
    memory limit: the settings' lane configuration)."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self._config = dict(config or {})
        self._local = threading.local()
        self._connections: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()

    def _connection(self) -> duckdb.DuckDBPyConnection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = duckdb.connect(":memory:", config={**self._config, "python_enable_replacements": False})
            with self._lock:
                self._connections.append(con)
        return con

    def close(self) -> None:
        with self._lock:
            for con in self._connections:
                con.close()
            self._connections.clear()

    def load_rows(self, body: bytes, columns: tuple[Column, ...], fmt: str) -> pa.Table | Rejected:
        """JSON array, NDJSON or CSV rows -> Arrow in the contract's types, DuckDB parsing.

        Every contract column is read untyped (JSON values, CSV text) and converted by
        strict rules: an integer column takes JSON integers / integer text in range,
        never 2.0, 1e3 or "7" (JSON) or 1.5 (CSV); a not-null column takes no nulls. The
        first row that breaks a rule comes back as `Rejected`. A body DuckDB cannot
        parse raises UnreadableInput; a missing CSV column, MissingColumn.
        """
        rules = CSV_RULES if fmt == "csv" else JSON_RULES
        values, flags = [], []
        for i, column in enumerate(columns):
            name = quote_identifier(column.name)
            kind = column_type(column.data_type)
            accepts, convert = rules[kind.kind]
            value = convert.format(c=name, t=kind.name)
            ok = accepts.format(c=name, v=value, s=getattr(kind.arrow, "scale", 0))
            null = f"({name} is null" + (f" or {name}::varchar = 'null')" if fmt != "csv" else ")")
            accepted = f"not {null} and ({ok})" if column.not_null else f"{null} or ({ok})"
            flags.append(f"coalesce({accepted}, false) as __ok{i}")
            values.append(f"{value} as {name}")
        # Parsing a body is bounded by its size: no deadline, on the loader's own database.
        cursor = self._connection()
        with _duckdb_errors(), _unregistering(cursor, "__duckapi_raw"):
            try:  # reading is lazy: parse errors surface when the select runs
                cursor.register("__duckapi_raw", self._read(cursor, body, columns, fmt))
                table = cursor.sql(f"select {', '.join(values + flags)} from __duckapi_raw").to_arrow_table()
            except duckdb.Error as exc:
                raise UnreadableInput(error_message(exc)) from exc
            first = [(pc.index(table[f"__ok{i}"], False).as_py(), i) for i in range(len(columns))]
            failures = [(row, i) for row, i in first if row >= 0]
            if failures:
                row, i = min(failures)
                name = quote_identifier(columns[i].name)
                cursor.register("__duckapi_raw", self._read(cursor, body, columns, fmt))  # a fresh read
                sql = f"select {name}::varchar from __duckapi_raw limit 1 offset {int(row)}"
                (text,) = cursor.execute(sql).fetchall()[0]
                return Rejected(row=row, column=columns[i].name, value=text)
        return table.select([c.name for c in columns])

    def _read(self, cursor: duckdb.DuckDBPyConnection, body: bytes, columns: tuple[Column, ...], fmt: str) -> duckdb.DuckDBPyRelation:
        source = io.BytesIO(body)
        if fmt == "csv":
            raw = cursor.read_csv(source, header=True, all_varchar=True, allow_quoted_nulls=False)
            missing = [c.name for c in columns if c.name not in raw.columns]
            if missing:
                raise MissingColumn(missing[0])
            return raw
        return cursor.read_json(
            source,
            format="newline_delimited" if fmt == "ndjson" else "array",
            records="true",
            columns={c.name: "JSON" for c in columns},
        )


@contextmanager
def _duckdb_errors() -> Iterator[None]:
    try:
        yield
    except duckdb.Error as exc:
        raise from_duckdb(exc) from exc


@contextmanager
def _unregistering(con: duckdb.DuckDBPyConnection, name: str) -> Iterator[None]:
    try:
        yield
    finally:
        con.unregister(name)
