"""The pipeline in an in-process DuckDB, one statement per execution.

Each executor thread owns a private in-memory DuckDB database (a "lane"); an execution
binds each small request input as list parameters (rows/columns.py) or registers a
large one's Arrow table on the lane, runs the one statement, and unregisters what it
registered. A lane runs one statement at a time, so concurrent requests never see
each other's rows, and nothing is ever created in a catalog. Private lanes
rather than one shared database because small queries on a shared instance contend
inside DuckDB and stop scaling with threads. Python replacement scans are off:
a statement can only read what was registered, never a variable in scope.

Reference data: a lane attaches the pipeline's warehouse snapshot (dbt/warehouse.py)
read-only under the catalog name dbt compiled into the SQL ("dev"), so seeds, tables
and sources resolve exactly as in `dbt build`. The dbt-built file itself is never
opened here, and project SQL can read no other file (external access is off; only
the snapshot folder is allowed).
"""

from __future__ import annotations

import json
import math
import os
import threading
from functools import lru_cache
from pathlib import Path
from operator import itemgetter
from typing import Any, Callable, Iterable, Sequence, TypeVar

import duckdb
import pyarrow as pa

from duckapi.engines import ExecutionError, deadline
from duckapi.errors import from_duckdb
from duckapi.pipeline import Pipeline, Probe, Reference, Rows, Schema, cte_name, quote_identifier
from duckapi.rows.columns import BOUND_ROWS, InputRows, as_arrow, column_values
from duckapi.settings import Settings
from duckapi.dbt.warehouse import Warehouse


#: Below this many input rows a query is "small": it runs on one DuckDB thread
#: (spreading a tiny query over threads costs more in scheduling than it gains, and
#: concurrent small requests already keep every core busy) and without the join-order
#: optimizer, which alone costs about a third of a 9-row request on the bundled
#: project (its answer collates seven subqueries) and cannot pay off on so few rows;
#: nor projection pull-up, about a tenth of a batched statement (api/batcher.py) and
#: neutral alone. Optimizers never change results, only plans.
PARALLEL_ROWS = 100_000
SMALL_MODE = ("set threads = 1", "set disabled_optimizers = 'join_order,projection_pullup'")
Tables = Sequence[InputRows]  # one per pipeline input, in the pipeline's order
T = TypeVar("T")
#: A statement and how its inputs go in (DuckDBEngine._query).
Query = tuple[str, "list[list[object]] | None", "list[tuple[str, InputRows]]", int]
_first = itemgetter(0)  # a DB-API row's one column


class DuckDBEngine:
    def __init__(self, settings: Settings, warehouse_dir: Path | None = None) -> None:
        #: Lanes may attach warehouse snapshots from this folder, and read no other file.
        self._warehouse_dir = warehouse_dir
        self._threads = settings.duckdb_threads or os.cpu_count() or 1
        self._adaptive = not settings.duckdb_threads
        self._config: dict[str, str | int | bool] = {"python_enable_replacements": False, "threads": self._threads}
        if settings.lane_memory_limit:  # per database: each lane has its own
            self._config["memory_limit"] = settings.lane_memory_limit
        self._local = threading.local()
        self._lanes: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()

    @property
    def config(self) -> dict[str, str | int | bool]:
        """Each database's settings (threads, memory limit): body parsing (rows/parsing.py)
        makes its own databases with the same."""
        return dict(self._config)

    def _lane(self) -> "_Lane":
        """This thread's database: pipelines run where files are out of reach.

        The project's SQL (which per-request vars can shape) runs with DuckDB's
        external access off, so it reaches nothing but the request's own rows. (Parsing
        bodies needs DuckDB's file layer: rows/parsing.py does it in databases of its own.)
        """
        lane = getattr(self._local, "lane", None)
        if lane is None:
            con = duckdb.connect(":memory:", config=dict(self._config))
            if self._warehouse_dir is not None:  # before external access goes: it cannot come back
                con.execute("set allowed_directories = $1", [[str(self._warehouse_dir) + os.sep]])
            con.execute("set enable_external_access = false")
            lane = _Lane(con)
            self._local.lane = lane
            with self._lock:
                self._lanes.append(con)
        return lane

    def _tune(self, lane: "_Lane", small: bool) -> None:
        """Switch the lane between small-query and large-query settings."""
        statements = SMALL_MODE if small else (f"set threads = {int(self._threads)}", "reset disabled_optimizers")
        for statement in statements:
            lane.con.execute(statement)
        lane.small = small

    def _attach(self, lane: "_Lane", warehouse: Warehouse | None) -> None:
        """Make the lane read this snapshot under dbt's catalog name (one version at a time).

        A lane runs one request at a time, so switching versions between requests is
        safe; requests of an older state switch it back while that copy is kept.
        """
        attached = lane.warehouse
        if attached == warehouse:
            return
        if attached is not None:
            lane.con.execute(f"detach database if exists {quote_identifier(attached.database)}")
            lane.warehouse = None
        if warehouse is not None:
            lane.con.execute(f"attach $1 as {quote_identifier(warehouse.database)} (read_only)", [str(warehouse.path)])
            lane.warehouse = warehouse

    def _on_lane(
        self, pipeline: Pipeline | None, run: Callable[[duckdb.DuckDBPyConnection], T],
        registered: Sequence[tuple[str, InputRows]] = (), most_rows: int = 0,
    ) -> T:
        """run(connection) on this thread's lane, with `registered` (relation name, rows)
        registered for the call, set for inputs of up to `most_rows` rows and for the
        pipeline's snapshot, interrupted at the thread's deadline; DuckDB's errors as
        the engine's.

        The lane's own connection, not a new cursor: a lane runs one statement at a time
        (its thread's), and a fresh cursor per request cost 0.5-2 ms more in-process
        (docs/benchmarks.md, the Python API). Written flat, without context managers or
        helpers on the way: on a 9-row call each Python step shows, as it runs from
        caches the statement before it has evicted (docs/benchmarks.md).
        """
        lane = self._lane()
        con = lane.con
        done: list[str] = []
        try:
            for name, rows in registered:
                con.register(name, as_arrow(rows))
                done.append(name)
            small = self._adaptive and most_rows < PARALLEL_ROWS
            if lane.small is not small:
                self._tune(lane, small)
            warehouse = pipeline.warehouse if pipeline is not None else None
            if lane.warehouse is not warehouse:
                self._attach(lane, warehouse)
            if deadline.current() is None:
                return run(con)
            with deadline.armed(con):
                return run(con)
        except duckdb.Error as exc:
            raise from_duckdb(exc) from exc
        finally:
            for name in done:
                con.unregister(name)

    def _query(self, pipeline: Pipeline, tables: Tables, kind: str) -> Query:
        """How these inputs go in: the statement for their sizes, the parameters of those
        that go in bound, the (relation, rows) of those that go in registered, and the
        most rows of any."""
        modes, params, registered, most = self._inputs(pipeline, tables)
        return _statement(pipeline, kind, modes), params, registered, most

    def probe(self, pipeline: Pipeline, probe: Probe, tables: Tables) -> list[tuple[Any, ...]]:
        """The rows a query a model's rendering ran (a Probe's SQL) gives over these
        inputs, its relations pointed at the pipeline's CTEs (data-dependent models)."""
        modes, params, registered, most = self._inputs(pipeline, tables)
        sql = _probe_statement(pipeline, probe, modes)
        return self._on_lane(pipeline, lambda con: con.execute(sql, params).fetchall(), registered, most)

    def _inputs(self, pipeline: Pipeline, tables: Tables) -> tuple[tuple[Rows, ...], "list[list[object]] | None", "list[tuple[str, InputRows]]", int]:
        """Each input's mode (bound or registered), the bound parameters, the registered
        (relation, rows), and the most rows of any input."""
        if len(tables) != len(pipeline.inputs):
            raise ValueError(f"{pipeline.endpoint.path} takes {len(pipeline.inputs)} input(s), got {len(tables)}")
        modes: list[Rows] = []
        params: list[list[object]] = []
        registered: list[tuple[str, InputRows]] = []
        most = 0
        for item, table in zip(pipeline.inputs, tables):
            rows = table.num_rows
            most = max(most, rows)
            if rows > BOUND_ROWS:
                modes.append("table")
                registered.append((item.relation, table))
            else:
                modes.append("bound")
                params += column_values(table)
        return tuple(modes), params or None, registered, most

    def at_most_one_row(self, pipeline: Pipeline) -> bool:
        """True when the served model is one SELECT with no FROM and no row-multiplying
        function (a collation like the bundled `analysis`): by DuckDB's own parse tree."""
        try:
            (tree,) = self._on_lane(None, lambda con: con.execute(
                "select json_serialize_sql($1)", [pipeline.output_node.compiled_sql]).fetchall()[0])
        except ExecutionError:
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

    def warehouse_schema(self, warehouse: Warehouse | None, relation_name: str) -> list[tuple[str, str]] | None:
        """A relation's columns and DuckDB types in this warehouse snapshot; None if it has none."""
        if warehouse is None:
            return None
        lane = self._lane()
        if lane.warehouse is not warehouse:
            self._attach(lane, warehouse)
        return relation_columns(lane.con, relation_name)

    def missing_references(self, pipeline: Pipeline) -> list[Reference]:
        """The reference relations the pipeline's warehouse snapshot does not have."""
        return self._on_lane(pipeline, lambda con: missing_relations(con, pipeline.references))

    def describe(self, pipeline: Pipeline) -> dict[str, Schema]:
        """Column names and DuckDB types of the served model and of each part."""
        params = [[] for item in pipeline.inputs for _ in item.columns]

        def shapes(con: duckdb.DuckDBPyConnection) -> dict[str, Schema]:
            schemas = {}
            for name in (pipeline.output_node.name, *pipeline.parents):
                sql = f"{pipeline.body_sql('bound')}\nselect * from {cte_name(name)} limit 0"
                description = con.execute(sql, params).description or []
                schemas[name] = [(column[0], str(column[1])) for column in description]
            return schemas

        return self._on_lane(pipeline, shapes)

    def execute_json(self, pipeline: Pipeline, tables: Tables) -> bytes:
        """The output rows as a JSON array, serialised by DuckDB itself (exact integers)."""
        sql, params, registered, most = self._query(pipeline, tables, "json")
        rows = self._on_lane(pipeline, lambda con: con.execute(sql, params).fetchall(), registered, most)
        return _json_array(map(_first, rows))

    def execute_json_batch(self, pipeline: Pipeline, tables: Sequence[InputRows]) -> list[bytes]:
        """The JSON answers of several small requests (<= BOUND_ROWS rows each) of a
        single-row model, from one statement (Pipeline.batch_sql): the same bytes as
        `execute_json` gives each, for about the per-statement cost of three requests.
        A failure fails them all; the caller then answers each on its own. `tables`
        holds each request's rows of the pipeline's one input."""
        params: list[list[object]] = [list(range(len(tables)))]
        values = [column_values(t) for t in tables]
        params += [[columns[i] for columns in values] for i in range(len(pipeline.inputs[0].columns))]
        sql = _statement(pipeline, "json", "batch")
        rows = self._on_lane(pipeline, lambda con: con.execute(sql, params).fetchall())
        return [_json_array([] if row is None else [row]) for _, row in rows]

    def batchable(self, pipeline: Pipeline) -> bool:
        """Whether DuckDB can plan the pipeline as a batch (a correlated subquery)."""
        if not pipeline.single_row or len(pipeline.inputs) != 1:
            return False
        try:
            self.execute_json_batch(pipeline, [])
        except ExecutionError:
            return False
        return True

    def execute_arrow(self, pipeline: Pipeline, tables: Tables) -> pa.Table:
        sql, params, registered, most = self._query(pipeline, tables, "arrow")
        # The relation API hands Arrow over without the copy a DB-API result makes.
        return self._on_lane(pipeline, lambda con: con.sql(sql, params=params).to_arrow_table(), registered, most)

    def warm(self, pipelines: Sequence[Pipeline], tables: Sequence[Tables]) -> None:
        """Prepare this thread's lane for these pipelines: its databases opened, each
        pipeline's snapshot attached and its statement planned and run once over each of
        `tables`, as the first requests would; then back to the first pipeline's snapshot."""
        for pipeline, inputs in zip(pipelines, tables):
            try:
                self.execute_json(pipeline, inputs)
                self.execute_arrow(pipeline, inputs)
            except ExecutionError:  # a model that fails on a made-up row: planned all the same
                pass
        if pipelines:
            self._on_lane(pipelines[0], lambda con: None)

    def close(self) -> None:
        with self._lock:
            for lane in self._lanes:
                lane.close()
            self._lanes.clear()


class _Lane:
    """A thread's database and what is set on it now (small-query mode, attached snapshot)."""

    __slots__ = ("con", "small", "warehouse")

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.small: bool | None = None
        self.warehouse: Warehouse | None = None


def relation_columns(con: duckdb.DuckDBPyConnection, relation_name: str) -> list[tuple[str, str]] | None:
    """A relation's columns and DuckDB types as this connection sees it; None if it cannot."""
    try:
        return [(row[0], row[1]) for row in con.execute(f"describe select * from {relation_name}").fetchall()]
    except duckdb.Error:
        return None


def missing_relations(con: duckdb.DuckDBPyConnection, references: Sequence[Reference]) -> list[Reference]:
    """The relations this connection cannot read (binding a query on each tells)."""
    missing = []
    for reference in references:
        try:
            con.execute(f"describe select * from {reference.relation_name}")
        except duckdb.Error:
            missing.append(reference)
    return missing


def _json_array(rows: Iterable[str]) -> bytes:
    """Rows DuckDB serialised as JSON -> the answer: a JSON array of them."""
    answer = ("[" + ",".join(rows) + "]").encode()
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
def _probe_statement(pipeline: Pipeline, probe: Probe, rows: tuple[Rows, ...]) -> str:
    return pipeline.probe_sql(probe, rows)


@lru_cache(maxsize=512)
def _statement(pipeline: Pipeline, kind: str, rows: Rows | tuple[Rows, ...]) -> str:
    """Statements by pipeline identity: a reload or a new selection is a new pipeline."""
    projection = "to_json(o)::varchar" if kind == "json" else "*"
    if rows == "batch":
        return pipeline.batch_sql(projection)
    return pipeline.select_sql(projection, rows)
