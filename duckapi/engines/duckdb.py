"""The pipeline in an in-process DuckDB, one cursor per execution.

Each executor thread owns a private in-memory DuckDB database (a "lane"); every
execution opens a fresh cursor on its thread's lane, registers the request's Arrow
table on that cursor under the pipeline's input name, runs the one statement and
closes the cursor. Registration is per cursor, so concurrent requests never see
each other's rows and nothing is ever created in a catalog. Private lanes rather
than one shared database because small queries on a shared instance contend
inside DuckDB and stop scaling with threads. Python replacement scans are off:
a statement can only read what was registered, never a variable in scope. The
dbt-built database file is never opened here.
"""

from __future__ import annotations

import io
import json
import math
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from duckapi.contract import canonical_type
from duckapi.engines import ExecutionError, ResourceError, error_message
from duckapi.pipeline import INPUT_RELATION, Column, Pipeline, Rows, Schema, cte_name, quote_identifier
from duckapi.settings import Settings


#: Below this many input rows a query is "small": it runs on one DuckDB thread
#: (spreading a tiny query over threads costs more in scheduling than it gains, and
#: concurrent small requests already keep every core busy) and without the join-order
#: optimizer, which alone costs about a third of a 9-row request on the bundled
#: project (its answer collates seven subqueries) and cannot pay off on so few rows;
#: nor projection pull-up, about a tenth of a batched statement (api/batcher.py) and
#: neutral alone. Optimizers never change results, only plans.
PARALLEL_ROWS = 100_000
SMALL_MODE = ("set threads = 1", "set disabled_optimizers = 'join_order,projection_pullup'")
#: How a contract column's untyped value (JSON, or CSV text) is accepted and converted:
#: (acceptance test over the raw value {c} and converted value {v}, conversion).
#: JSON values are checked on their text (cheaper than json_type): a string starts
#: with a quote, an integer is digits with an optional minus, and so on.
_JSON_INT = ("regexp_full_match({c}::varchar, '-?[0-9]+') and {v} is not null", "try_cast({c} as {t})")
_CSV_INT = ("regexp_full_match({c}, '[-+]?[0-9]+') and {v} is not null", "try_cast({c} as {t})")
_JSON_STRING = "starts_with({c}::varchar, '\"')"
_TYPED = "{v} is not null"
JSON_RULES: dict[str, tuple[str, str]] = {
    "varchar": (_JSON_STRING, "json_extract_string({c}, '$')"),
    "bigint": _JSON_INT, "integer": _JSON_INT, "smallint": _JSON_INT,
    "double": ("regexp_full_match({c}::varchar, '-?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?') and " + _TYPED,
               "try_cast({c} as double)"),
    "boolean": ("{c}::varchar in ('true', 'false')", "try_cast({c} as boolean)"),
    "date": (_JSON_STRING + " and " + _TYPED, "try_cast(json_extract_string({c}, '$') as date)"),
    "timestamp": (_JSON_STRING + " and " + _TYPED, "try_cast(json_extract_string({c}, '$') as timestamp)"),
}
CSV_RULES: dict[str, tuple[str, str]] = {
    "varchar": ("true", "{c}"),
    "bigint": _CSV_INT, "integer": _CSV_INT, "smallint": _CSV_INT,
    "double": (_TYPED, "try_cast({c} as double)"),
    "boolean": ("lower({c}) in ('true', 'false')", "try_cast({c} as boolean)"),
    "date": (_TYPED, "try_cast({c} as date)"),
    "timestamp": (_TYPED, "try_cast({c} as timestamp)"),
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


#: Up to this many rows the columns go in as bound list parameters rather than a
#: registered Arrow table: registering and binding a Python-held table costs more
#: than the whole conversion on tiny inputs (about a tenth of a 9-row request).
BOUND_ROWS = 256


class DuckDBEngine:
    def __init__(self, settings: Settings) -> None:
        self._threads = settings.duckdb_threads or os.cpu_count() or 1
        self._adaptive = not settings.duckdb_threads
        self._config: dict[str, str | int | bool] = {"python_enable_replacements": False, "threads": self._threads}
        if settings.duckdb_memory_limit:
            self._config["memory_limit"] = settings.duckdb_memory_limit
        self._local = threading.local()
        self._lanes: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()

    def _lane(self, loader: bool = False) -> duckdb.DuckDBPyConnection:
        """This thread's database: pipelines run where files are out of reach.

        The project's SQL (which per-request vars can shape) runs with DuckDB's
        external access off, so it reaches nothing but the request's own rows. Parsing
        bodies needs DuckDB's file layer (it reads Python file objects through it), so
        that runs in a second private database that only ever runs duckapi's own SQL.
        """
        attribute = "loader" if loader else "lane"
        lane = getattr(self._local, attribute, None)
        if lane is None:
            config = dict(self._config) if loader else {**self._config, "enable_external_access": False}
            lane = duckdb.connect(":memory:", config=config)
            setattr(self._local, attribute, lane)
            with self._lock:
                self._lanes.append(lane)
        return lane

    def _tune(self, lane: duckdb.DuckDBPyConnection, rows: int) -> None:
        """Switch the lane between small-query and large-query settings when needed."""
        small = self._adaptive and rows < PARALLEL_ROWS
        if getattr(self._local, "small", None) is small:
            return
        statements = SMALL_MODE if small else (f"set threads = {int(self._threads)}", "reset disabled_optimizers")
        for statement in statements:
            lane.execute(statement)
        self._local.small = small

    @contextmanager
    def _cursor(self, table: pa.Table, loader: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        lane = self._lane(loader)
        if not loader:
            self._tune(lane, table.num_rows)
        cursor = lane.cursor()
        try:
            if table.num_rows > BOUND_ROWS:
                cursor.register(INPUT_RELATION, table)
            yield cursor
        except duckdb.OutOfMemoryException as exc:
            raise ResourceError(error_message(exc)) from exc
        except duckdb.Error as exc:
            raise ExecutionError(error_message(exc)) from exc
        finally:
            cursor.close()

    def _query(self, pipeline: Pipeline, table: pa.Table, kind: str) -> tuple[str, list[list[object]] | None]:
        """The statement for this input size, and its parameters if rows go in bound."""
        if table.num_rows > BOUND_ROWS:
            return _statement(pipeline, kind, "table"), None
        return _statement(pipeline, kind, "bound"), [column.to_pylist() for column in table.columns]

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
            accepts, convert = rules[canonical_type(column.data_type)]
            value = convert.format(c=name, t=column.data_type)
            ok = accepts.format(c=name, v=value)
            null = f"({name} is null" + (f" or {name}::varchar = 'null')" if fmt != "csv" else ")")
            accepted = f"not {null} and ({ok})" if column.not_null else f"{null} or ({ok})"
            flags.append(f"coalesce({accepted}, false) as __ok{i}")
            values.append(f"{value} as {name}")
        with self._cursor(pa.table({}), loader=True) as cursor:
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

    def at_most_one_row(self, pipeline: Pipeline) -> bool:
        """True when the served model is one SELECT with no FROM and no row-multiplying
        function (a collation like the bundled `analysis`): by DuckDB's own parse tree."""
        with self._cursor(pa.table({})) as cursor:
            try:
                (tree,) = cursor.execute("select json_serialize_sql($1)", [pipeline.output_node.compiled_sql]).fetchall()[0]
            except duckdb.Error:
                return False
        statements = json.loads(tree).get("statements") or []
        if len(statements) != 1:
            return False
        node = statements[0].get("node", {})
        select_list = json.dumps(node.get("select_list", [])).lower()
        return (
            node.get("type") == "SELECT_NODE"
            and node.get("from_table", {}).get("type") == "EMPTY"
            and "unnest" not in select_list
            and "generate_subscripts" not in select_list
        )

    def describe(self, pipeline: Pipeline) -> dict[str, Schema]:
        """Column names and DuckDB types of the served model and of each part."""
        params = [[] for _ in pipeline.input_columns]
        schemas = {}
        with self._cursor(pa.table({})) as cursor:
            for name in (pipeline.output_node.name, *pipeline.parents):
                sql = f"{pipeline.body_sql('bound')}\nselect * from {cte_name(name)} limit 0"
                description = cursor.execute(sql, params).description or []
                schemas[name] = [(column[0], str(column[1])) for column in description]
        return schemas

    def execute_json(self, pipeline: Pipeline, table: pa.Table) -> bytes:
        """The output rows as a JSON array, serialised by DuckDB itself (exact integers)."""
        sql, params = self._query(pipeline, table, "json")
        with self._cursor(table) as cursor:
            rows = cursor.execute(sql, params).fetchall()
        return _json_array([row[0] for row in rows])

    def execute_json_batch(self, pipeline: Pipeline, tables: list[pa.Table]) -> list[bytes]:
        """The JSON answers of several small requests (<= BOUND_ROWS rows each) of a
        single-row model, from one statement (Pipeline.batch_sql): the same bytes as
        `execute_json` gives each, for about the per-statement cost of three requests.
        A failure fails them all; the caller then answers each on its own."""
        params: list[list[object]] = [list(range(len(tables)))]
        params += [[t.column(i).to_pylist() for t in tables] for i in range(len(pipeline.input_columns))]
        with self._cursor(pa.table({})) as cursor:
            rows = cursor.execute(_statement(pipeline, "json", "batch"), params).fetchall()
        return [_json_array([] if row is None else [row]) for _, row in rows]

    def batchable(self, pipeline: Pipeline) -> bool:
        """Whether DuckDB can plan the pipeline as a batch (a correlated subquery)."""
        if not pipeline.single_row:
            return False
        try:
            self.execute_json_batch(pipeline, [])
        except ExecutionError:
            return False
        return True

    def execute_arrow(self, pipeline: Pipeline, table: pa.Table) -> pa.Table:
        sql, params = self._query(pipeline, table, "arrow")
        with self._cursor(table) as cursor:
            # The relation API hands Arrow over without the copy a DB-API result makes.
            return cursor.sql(sql, params=params).to_arrow_table()

    def close(self) -> None:
        with self._lock:
            for lane in self._lanes:
                lane.close()
            self._lanes.clear()


def _json_array(rows: list[str]) -> bytes:
    """Rows DuckDB serialised as JSON -> the answer: a JSON array of them."""
    answer = b"[" + b",".join(row.encode() for row in rows) + b"]"
    if b"Infinity" in answer or b"NaN" in answer:  # rare: usually inside a string
        answer = _finite_json(answer)
    return answer


def _finite_json(answer: bytes) -> bytes:
    """DuckDB writes non-finite doubles as bare Infinity/NaN, which is not JSON: use null."""

    def finite(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, list):
            return [finite(v) for v in value]
        if isinstance(value, dict):
            return {k: finite(v) for k, v in value.items()}
        return value

    parsed = json.loads(answer)
    return json.dumps(finite(parsed), ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


@lru_cache(maxsize=512)
def _statement(pipeline: Pipeline, kind: str, rows: Rows) -> str:
    """Statements by pipeline identity: a reload or a new selection is a new pipeline."""
    projection = "to_json(o)::varchar" if kind == "json" else "*"
    if rows == "batch":
        return pipeline.batch_sql(projection)
    return pipeline.select_sql(projection, rows)
