"""Data-dependent pipelines: each request answered with the SQL dbt renders over its rows.

A model whose rendering queries the data (introspection.py) has SQL that depends on
the rows: `dbt build` over other rows renders other SQL. For such a pipeline each
request runs the recorded queries (probes) over its own rows on its lane, and their
results key the rendered SQL:

* A key seen before: its variant (the pipeline with every model's SQL as dbt rendered
  it for those results) runs at once, with no dbt call.
* A new key: the variant is rendered by dbt itself (`render` below, on the service's
  compile worker behind its short queue: CompileBusy, 503, beyond it). A scratch copy
  of the warehouse snapshot gets the request's rows as its input relations, and
  `dbt run` over the pipeline's models renders (and builds) each one exactly as
  `dbt build` would over those rows; stacked data-dependent models see the models
  before them built from the request.

The keys form a tree: a probe's own text can depend on what earlier probes returned
(a model rendered from a data-dependent model), so each branch holds the next probe to
run, and the variant whose SQL it runs that probe over (any variant below the branch
has the same SQL for what the probe reads: dbt's rendering is a function of the probe
results before it). A rendering is data turned into SQL text, so it is checked: each
model must still parse as one SELECT reading the relations its first compile read, and
all of them together stay under `max_rendered_sql_bytes`; a rendering dbt cannot do
(its own error) is a RequestError naming the model, kept for the key it failed on.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from duckapi.dbt import project
from duckapi.pipeline import introspection, relations
from duckapi.errors import PipelineError, RequestError
from duckapi.pipeline.introspection import Probe
from duckapi.pipeline import Pipeline, quote_identifier
from duckapi.rows.columns import Columns, InputRows, as_arrow
from duckapi.settings import Settings
from duckapi.dbt.warehouse import Snapshots

Tables = Sequence[InputRows]


@dataclass
class _Branch:
    """A point in the key tree: the probe to run next, over `pipeline`'s SQL."""

    pipeline: Pipeline
    probe: Probe
    next: dict[str, "_Branch | Pipeline | RequestError"] = field(default_factory=dict)


@dataclass(frozen=True)
class Rendered:
    """What one dbt rendering over a request's rows gave: each model's SQL by unique_id,
    the queries each rendering ran, and dbt's error (with whether it came while rendering)."""

    compiled: Mapping[str, str]
    queries: Mapping[str, Sequence[str]]
    error: str | None = None
    in_rendering: bool = False


#: Renders a pipeline's models over a request's rows (the service's queued `render`).
Renderer = Callable[[Pipeline, Tables], Rendered]


class Renderings:
    """The rendered variants of one data-dependent pipeline of one project state."""

    def __init__(
        self, pipeline: Pipeline, probe: Callable[[Pipeline, Probe, Tables], list[tuple[Any, ...]]],
        render: Callable[[Pipeline, Tables], Rendered], prepare: Callable[[Pipeline], Pipeline],
        settings: Settings,
    ) -> None:
        self.base = pipeline
        self._probe = probe
        self._render = render
        self._prepare = prepare
        self._settings = settings
        self._lock = threading.Lock()
        probes = pipeline.introspection.probes
        self._root = _Branch(pipeline, probes[0]) if probes else None
        self._kept = 0
        #: dbt renderings done (new keys), and requests answered by a known key.
        self.renders = 0
        self.hits = 0

    def resolve(self, tables: Tables) -> Pipeline:
        """The variant for these rows: a known key's at once, a new key's rendered now."""
        refusal = self.base.introspection.refusal
        if refusal is not None:
            raise RequestError(refusal)
        branch = self._root
        assert branch is not None
        while True:
            found = branch.next.get(self._result(branch.pipeline, branch.probe, tables))
            if found is None:
                break
            if not isinstance(found, _Branch):
                self.hits += 1
                if isinstance(found, RequestError):
                    raise found
                return found
            branch = found
        return self._new(tables)

    def _new(self, tables: Tables) -> Pipeline:
        rendered = self._render(self.base, tables)
        with self._lock:
            self.renders += 1
        if rendered.error is not None:
            failure = RequestError(f"dbt cannot render {self.base.endpoint.output} over these rows: {rendered.error}")
            if rendered.in_rendering:  # a function of the probes' results so far: keep it
                self._keep(rendered, self.base.rendered(rendered.compiled), tables, failure)
            raise failure
        try:
            variant = self._prepare(self._checked(rendered.compiled))
        except RequestError as failure:
            self._keep(rendered, self.base.rendered(rendered.compiled), tables, failure)
            raise
        self._keep(rendered, variant, tables, variant)
        return variant

    def _keep(self, rendered: Rendered, over: Pipeline, tables: Tables, leaf: "Pipeline | RequestError") -> None:
        """File `leaf` under the results its rendering's probes give over these rows."""
        chain = over.introspect(rendered.queries).probes
        if self._root is None or not chain or chain[0] != self._root.probe:
            return  # nothing to key it by (or not the queries of the first compile): not kept
        results = [self._result(over, probe, tables) for probe in chain]
        with self._lock:
            if self._kept >= self._settings.rendered_variants:  # all dropped, rendered again as needed
                self._root = _Branch(self.base, self._root.probe)
                self._kept = 0
            branch = self._root
            for i, (probe, result) in enumerate(zip(chain, results)):
                if branch.probe != probe:
                    return  # another rendering ran other queries after the same results
                if i == len(chain) - 1:
                    branch.next[result] = leaf
                    self._kept += 1
                    return
                found = branch.next.get(result)
                if not isinstance(found, _Branch):
                    found = branch.next[result] = _Branch(over, chain[i + 1])
                branch = found

    def _result(self, pipeline: Pipeline, probe: Probe, tables: Tables) -> str:
        """A probe's rows over these inputs as a key: their Python repr (types and order).
        A `select distinct` of an input's column is keyed by the column's set of values
        instead, without a statement: equal sets give equal rows."""
        if probe.distinct is not None:
            key = _distinct_key(tables[probe.distinct[0]], probe.distinct[1])
            if key is not None:
                return key
        try:
            return repr(self._probe(pipeline, probe, tables))
        except PipelineError as exc:  # its references cannot be pointed at the CTEs exactly
            raise RequestError(f"model {probe.model} renders from a query duckapi cannot run over the request ({exc}): "
                               f"{probe.sql[:300]}") from exc

    def _checked(self, compiled: Mapping[str, str]) -> Pipeline:
        """The variant, if every model is one SELECT reading what its first compile read."""
        size = sum(len(compiled.get(n.unique_id, "")) for n in self.base.nodes)
        limit = self._settings.max_rendered_sql_bytes
        if size > limit:
            raise RequestError(
                f"the SQL dbt renders for {self.base.endpoint.output} over these rows is {size:,} bytes, over the "
                f"limit of {limit:,} (DUCKAPI_MAX_RENDERED_SQL_BYTES): too many distinct values?"
            )
        for node in self.base.nodes:
            sql = compiled.get(node.unique_id)
            if not sql:
                raise RequestError(f"dbt rendered no SQL for model {node.name} over these rows")
            if sql != node.compiled_sql and _tables(sql) != _tables(node.compiled_sql):
                raise RequestError(
                    f"model {node.name} ({node.path}) rendered over these rows is not one SELECT over the "
                    "relations its compile read: not answered"
                )
        return self.base.rendered(compiled)


def _tables(sql: str) -> frozenset[tuple[str, ...]] | None:
    """The relations one SELECT references; None if `sql` is not exactly one SELECT."""
    found = introspection.tables(sql)
    return None if found is None else frozenset(found[0] + found[1])


def _distinct_key(rows: InputRows, column: str) -> str | None:
    """The set of a column's values as a key, for types whose equality in Python is
    DuckDB's (text, integers, booleans, dates); None for the others (floats: NaN, -0.0)."""
    names = [name.lower() for name in rows.schema.names]
    if column.lower() not in names:
        return None
    index = names.index(column.lower())
    kind = rows.schema.field(index).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_integer(kind)
            or pa.types.is_boolean(kind) or pa.types.is_date(kind)):
        return None
    if isinstance(rows, Columns):
        values = set(rows.values[index])
    else:
        values = set(pc.unique(rows.column(index)).to_pylist())
    return "distinct " + repr(sorted(values, key=lambda v: (v is None, v if v is not None else 0)))


def render_on_snapshot(settings: Settings, snapshots: Snapshots, pipeline: Pipeline, tables: Tables,
                       dbt_vars: dict[str, Any] | None) -> Rendered:
    """`render` on a scratch copy of the pipeline's warehouse snapshot, in a folder of its own."""
    scratch = Path(tempfile.mkdtemp(prefix="duckapi-render-"))
    return render(settings, pipeline, tables, snapshots.scratch_copy(pipeline.warehouse, scratch), dbt_vars)


def render(settings: Settings, pipeline: Pipeline, tables: Tables, copy: Path, dbt_vars: dict[str, Any] | None) -> Rendered:
    """dbt's rendering of the pipeline's models over these rows: `copy` (a scratch copy of
    the warehouse snapshot, deleted after) gets them as its input relations, then
    `dbt run` builds the pipeline's models there (project.render)."""
    scratch = copy.parent
    try:
        with duckdb.connect(str(copy)) as con:
            for item, rows in zip(pipeline.inputs, tables):
                _replace_relation(con, item.node.relation_name or item.name, item.columns, rows)
        compiled, queries, error = project.render(replace(settings, target_path=scratch / "target"), copy,
                                                  [n.name for n in pipeline.nodes], dbt_vars)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    # A failure while rendering (no SQL, or SQL DuckDB cannot parse), not over the rows at
    # run time, is a function of the probes' results: it can be kept for their key.
    in_rendering = error is not None and any(_tables(compiled.get(n.unique_id) or "") is None for n in pipeline.nodes)
    return Rendered(compiled, queries, error, in_rendering)


def _replace_relation(con: duckdb.DuckDBPyConnection, relation_name: str, columns: Sequence[Any], rows: InputRows) -> None:
    """The relation becomes a table of these rows, in the input's types (a scratch file)."""
    parts = relations.split_relation_name(relation_name)
    table = ".".join(quote_identifier(p) for p in parts)
    if len(parts) >= 2:
        con.execute(f"create schema if not exists {'.'.join(quote_identifier(p) for p in parts[:-1])}")
    kinds = con.execute(
        "select 'view' from duckdb_views() where view_name = $1 and schema_name = $2 "
        "union all select 'table' from duckdb_tables() where table_name = $1 and schema_name = $2",
        [parts[-1], parts[-2] if len(parts) >= 2 else "main"],
    ).fetchall()
    for (kind,) in kinds:
        con.execute(f"drop {kind} if exists {table}")
    con.register("__duckapi_rows", as_arrow(rows))
    try:
        typed = ", ".join(f"cast({quote_identifier(c.name)} as {c.data_type}) as {quote_identifier(c.name)}" for c in columns)
        con.execute(f"create table {table} as select {typed} from __duckapi_rows")
    finally:
        con.unregister("__duckapi_rows")


