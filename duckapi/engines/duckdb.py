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

import json
import math
import os
import threading
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Iterator

import duckdb
import pyarrow as pa

from duckapi.engines import ExecutionError, ResourceError
from duckapi.pipeline import INPUT_RELATION, Pipeline, Schema, cte_name
from duckapi.settings import Settings


#: Below this many input rows a query is "small": it runs on one DuckDB thread
#: (spreading a tiny query over threads costs more in scheduling than it gains, and
#: concurrent small requests already keep every core busy) and without the join-order
#: optimizer, which alone costs about a third of a 9-row request on the bundled
#: project (its answer collates seven subqueries) and cannot pay off on so few rows.
#: Optimizers never change results, only plans.
PARALLEL_ROWS = 100_000
SMALL_MODE = ("set threads = 1", "set disabled_optimizers = 'join_order'")
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

    def _lane(self) -> duckdb.DuckDBPyConnection:
        lane = getattr(self._local, "lane", None)
        if lane is None:
            lane = self._local.lane = duckdb.connect(":memory:", config=self._config)
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
    def _cursor(self, table: pa.Table) -> Iterator[duckdb.DuckDBPyConnection]:
        lane = self._lane()
        self._tune(lane, table.num_rows)
        cursor = lane.cursor()
        try:
            if table.num_rows > BOUND_ROWS:
                cursor.register(INPUT_RELATION, table)
            yield cursor
        except duckdb.OutOfMemoryException as exc:
            raise ResourceError(_first_line(exc)) from exc
        except duckdb.Error as exc:
            raise ExecutionError(_first_line(exc)) from exc
        finally:
            cursor.close()

    def _query(self, pipeline: Pipeline, table: pa.Table, kind: str) -> tuple[str, list[list[object]] | None]:
        """The statement for this input size, and its parameters if rows go in bound."""
        if table.num_rows > BOUND_ROWS:
            return _statement(pipeline, kind, bound=False), None
        return _statement(pipeline, kind, bound=True), [column.to_pylist() for column in table.columns]

    def describe(self, pipeline: Pipeline) -> dict[str, Schema]:
        """Column names and DuckDB types of the served model and of each part."""
        params = [[] for _ in pipeline.input_columns]
        schemas = {}
        with self._cursor(pa.table({})) as cursor:
            for name in (pipeline.output_node.name, *pipeline.parts):
                sql = f"{pipeline.body_sql(bound=True)}\nselect * from {cte_name(name)} limit 0"
                description = cursor.execute(sql, params).description or []
                schemas[name] = [(column[0], str(column[1])) for column in description]
        return schemas

    def execute_json(self, pipeline: Pipeline, table: pa.Table) -> bytes:
        """The output rows as a JSON array, serialised by DuckDB itself (exact integers)."""
        sql, params = self._query(pipeline, table, "json")
        with self._cursor(table) as cursor:
            rows = cursor.execute(sql, params).fetchall()
        answer = b"[" + b",".join(row[0].encode() for row in rows) + b"]"
        if b"Infinity" in answer or b"NaN" in answer:  # rare: usually inside a string
            answer = _finite_json(answer)
        return answer

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


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:500] if str(exc).strip() else type(exc).__name__


@lru_cache(maxsize=512)
def _statement(pipeline: Pipeline, kind: str, bound: bool) -> str:
    """Statements by pipeline identity: a reload or a new selection is a new pipeline."""
    projection = "to_json(o)::varchar" if kind == "json" else "*"
    return pipeline.select_sql(projection, bound)
