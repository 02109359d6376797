"""The DAG between a served model and its request inputs, as one SQL statement.

Built once from a compiled dbt manifest. Every model on a path from an input to the
served model becomes a CTE, each input is replaced by the request's rows, and every
other relation the models read (seeds, tables, sources: reference data) is read from
the warehouse under the name dbt gave it. How references are pointed at the CTEs
without changing what the SQL means is relations.py's job.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Callable, Iterable, Literal, Mapping, Sequence, TypeVar

from duckapi.pipeline import relations
from duckapi.pipeline.introspection import Introspection, Probe, classify
from duckapi.dbt.project import QUERIES_KEY
from duckapi.pipeline.relations import Column, PipelineError, Reference, quote_identifier
from duckapi.dbt.warehouse import Warehouse, data_version

__all__ = [
    "Column", "Dialect", "Endpoint", "Input", "Introspection", "Node", "Pipeline", "PipelineError", "Probe", "Reference",
    "quote_identifier",
]

#: The names under which an engine exposes the request's rows to the statement:
#: input i is INPUT_RELATION + "_" + i (see `input_relation`).
INPUT_RELATION = "__duckapi_input"
CTE_PREFIX = "duckapi__"
#: Names in a batched statement: the relation of requests and its index column.
BATCH_ALIAS = "__duckapi_requests"
BATCH_KEY = "__duckapi_request"
#: Where a statement's input rows come from: a registered relation, bound lists, or
#: the current request of a batch.
Rows = Literal["table", "bound", "batch"]
#: A relation's columns as (name, SQL type) pairs.
Schema = Sequence[tuple[str, str]]


def input_relation(index: int) -> str:
    return f"{INPUT_RELATION}_{index}"


@dataclass(frozen=True)
class Dialect:
    """How an engine spells the pipeline's statement: one CTE chain, engine words."""

    quote: Callable[[str], str] = quote_identifier
    #: A contract data_type in this engine's SQL.
    type_name: Callable[[str], str] = field(default=lambda data_type: data_type)
    #: Supports `with x as materialized (...)` (compute once, share between dependents).
    materialized_ctes: bool = True
    #: Compiled SQL with dbt's relation names -> CTE names, given (relation, CTE) pairs.
    rewrite: Callable[[str, Sequence[tuple[str, str]]], str] = relations.duckdb_rewrite

    def cte(self, model: str) -> str:
        return self.quote(CTE_PREFIX + model)


DUCKDB = Dialect()


@dataclass(frozen=True)
class Node:
    unique_id: str
    name: str
    relation_name: str | None
    compiled_sql: str
    depends_on: tuple[str, ...]
    materialized: str
    path: str

    @property
    def cte_name(self) -> str:
        return cte_name(self.name)


@dataclass(frozen=True)
class Endpoint:
    """A served model: where it is mounted and which relations its requests replace."""

    path: str
    output: str
    inputs: tuple[str, ...]
    #: The dbt vars a request may set (`?vars=`): `meta.duckapi.vars`; none by default.
    vars: tuple[str, ...] = ()
    #: Declared JSON schemas of some of them (`vars: {name: schema}`), as JSON text by name.
    var_schemas: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Input:
    """One relation a request's rows replace: its name in the endpoint, dbt node and schema."""

    index: int
    name: str  # as `meta.duckapi` names it: a model, a seed, or source_name.table_name
    node: Node
    columns: tuple[Column, ...]

    @property
    def relation(self) -> str:
        """The name an engine registers this input's rows under."""
        return input_relation(self.index)


#: dbt materializations computed once per request and shared by their dependents;
#: views are inlined where used (DuckDB may still share them), ephemerals are
#: already inlined by dbt into their dependents' compiled SQL.
MATERIALIZED = frozenset({"table", "incremental", "materialized_view"})


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: cheap cache keys
class Pipeline:
    endpoint: Endpoint
    inputs: tuple[Input, ...]
    output_node: Node
    nodes: tuple[Node, ...]  # topological order, inputs excluded, output last
    #: Relations read from the warehouse (not on a path from an input).
    references: tuple[Reference, ...] = ()
    #: The snapshot of the warehouse the references are read from (None: no file yet).
    warehouse: Warehouse | None = None
    #: The served model's columns to answer with; all of them when empty.
    columns: tuple[str, ...] = ()
    #: The served model can return at most one row, so its answer needs no sort.
    single_row: bool = False
    #: DuckDB can plan `batch_sql`: small requests may be answered several at once.
    batchable: bool = False
    #: What the models' renderings read: data-dependent models and their probes.
    introspection: Introspection = Introspection()

    @property
    def parents(self) -> tuple[str, ...]:
        """The served model's direct parents inside the pipeline: candidate parts."""
        inside = {n.unique_id: n.name for n in self.nodes}
        return tuple(inside[d] for d in self.output_node.depends_on if d in inside)

    def parts(self, schemas: Mapping[str, Schema]) -> tuple[str, ...]:
        """Selectable parts: parents that are also columns of the served model."""
        columns = {name for name, _ in schemas[self.output_node.name]}
        return tuple(p for p in self.parents if p in columns)

    def select(self, parts: Iterable[str], schemas: Mapping[str, Schema]) -> "Pipeline":
        """The pipeline for a subset of parts: nothing the other parts alone need remains.

        Each unselected part becomes a typed empty relation of its shape (from
        `schemas`, node name -> columns), so the served model still compiles over it;
        the answer keeps only the served model's columns named after selected parts.
        """
        chosen = set(parts)
        selectable = self.parts(schemas)
        unknown = chosen - set(selectable)
        if unknown:
            raise KeyError(sorted(unknown))
        by_id = {n.unique_id: n for n in self.nodes}

        def closure(roots: Iterable[str], nodes: Mapping[str, Node]) -> set[str]:
            seen: set[str] = set()
            stack = [r for r in roots if r in nodes]
            while stack:
                uid = stack.pop()
                if uid not in seen:
                    seen.add(uid)
                    stack.extend(d for d in nodes[uid].depends_on if d in nodes)
            return seen

        # Parts a selected part builds on stay real; every other part is emptied.
        kept = closure((n.unique_id for n in self.nodes if n.name in chosen), by_id)
        for node in self.nodes:
            if node.name in selectable and node.unique_id not in kept:
                by_id[node.unique_id] = replace(
                    node, compiled_sql=empty_relation_sql(schemas[node.name]), depends_on=()
                )
        needed = closure([self.output_node.unique_id], by_id)
        nodes = tuple(by_id[n.unique_id] for n in self.nodes if n.unique_id in needed)
        columns = tuple(c for c in selectable if c in chosen)
        return replace(self, nodes=nodes, columns=columns)

    def cte_relations(self, dialect: Dialect = DUCKDB) -> list[tuple[str, str]]:
        """(dbt relation name, CTE name) for every relation the statement computes."""
        pairs = [(i.node.relation_name, dialect.cte(i.name)) for i in self.inputs if i.node.relation_name]
        return pairs + [(n.relation_name, dialect.cte(n.name)) for n in self.nodes if n.relation_name]

    def body_sql(self, rows: Sequence[Rows] | Rows = "table", dialect: Dialect = DUCKDB) -> str:
        """WITH ... over the request's rows; select from the output's CTE to finish it.

        `rows` says, per input (or one value for all), where its rows come from (see
        `input_sql`). Bound parameters are numbered across inputs in their order.
        """
        modes = [rows] * len(self.inputs) if isinstance(rows, str) else list(rows)
        relations = self.cte_relations(dialect)
        ctes, first = [], 1
        for item, mode in zip(self.inputs, modes):
            ctes.append(f"{dialect.cte(item.name)} as (\n{self.input_sql(item, mode, dialect, first)}\n)")
            first += len(item.columns) if mode == "bound" else 0
        for node in self.nodes:
            shared = dialect.materialized_ctes and node.materialized in MATERIALIZED
            how = "as materialized" if shared else "as"
            ctes.append(f"{dialect.cte(node.name)} {how} (\n{_rewritten(dialect.rewrite, node.compiled_sql, tuple(relations))}\n)")
        return "with " + ",\n".join(ctes)

    def rendered(self, compiled: Mapping[str, str]) -> "Pipeline":
        """This pipeline with its models' SQL as rendered over other data (by unique_id)."""
        nodes = tuple(replace(n, compiled_sql=compiled.get(n.unique_id, n.compiled_sql)) for n in self.nodes)
        output = next(n for n in nodes if n.unique_id == self.output_node.unique_id)
        return replace(self, nodes=nodes, output_node=output, single_row=False, batchable=False)

    def introspect(self, queries: Mapping[str, Sequence[str]]) -> Introspection:
        """What its models' renderings read, from a record of the queries they ran."""
        return introspect(queries, self.inputs, self.nodes)

    def probe_sql(self, probe: Probe, rows: Sequence[Rows] | Rows = "table") -> str:
        """A query a model's rendering ran, over the request's rows: its references to
        pipeline relations pointed at CTEs of only the models it needs."""
        wanted = {n.unique_id for n in self.nodes if n.relation_name in probe.reads}
        by_id = {n.unique_id: n for n in self.nodes}
        stack = list(wanted)
        while stack:
            for dep in by_id[stack.pop()].depends_on:
                if dep in by_id and dep not in wanted:
                    wanted.add(dep)
                    stack.append(dep)
        needed = replace(self, nodes=tuple(n for n in self.nodes if n.unique_id in wanted))
        pairs = tuple(needed.cte_relations())
        return f"{needed.body_sql(rows)}\nselect * from (\n{_rewritten(DUCKDB.rewrite, probe.sql, pairs)}\n) as __duckapi_probe"

    @property
    def output_cte(self) -> str:
        return self.output_node.cte_name

    @staticmethod
    def input_sql(item: Input, rows: Rows = "table", dialect: Dialect = DUCKDB, first: int = 1) -> str:
        """An input's replacement. "table": the registered relation `item.relation`;
        "bound": one bound list parameter per column ($first, ... unnested in step);
        "batch": the lists of the current row of BATCH_ALIAS (see `batch_sql`)."""
        names = [dialect.quote(c.name) for c in item.columns]
        if rows == "bound":
            columns = [f"unnest(${i}::{c.data_type}[]) as {name}"
                       for i, (c, name) in enumerate(zip(item.columns, names), start=first)]
            return "select\n    " + ",\n    ".join(columns)
        if rows == "batch":
            return "select\n    " + ",\n    ".join(f"unnest({BATCH_ALIAS}.{name}) as {name}" for name in names)
        columns = [f"cast({name} as {dialect.type_name(c.data_type)}) as {name}" for c, name in zip(item.columns, names)]
        return "select\n    " + ",\n    ".join(columns) + f"\nfrom {dialect.quote(item.relation)}"

    def select_sql(self, projection: str = "*", rows: Sequence[Rows] | Rows = "table") -> str:
        """The whole statement: the DAG, then `select <projection> from <output> as o`.

        Rows come back in ascending order of their columns, left to right (`order by o`
        compares the row as a struct), so a multi-row model answers deterministically.
        """
        source = self.output_cte
        if self.columns:
            source = f"(select {', '.join(map(quote_identifier, self.columns))} from {source})"
        order = "" if self.single_row else " order by o"  # sorting one row still costs planning
        return f"{self.body_sql(rows)}\nselect {projection} from {source} as o{order}"

    def batch_sql(self, projection: str) -> str:
        """One statement that answers many requests of a single-row, single-input model at once.

        Bound parameters: $1 the requests' indexes, then one list of lists per input
        column (request i's column values at position i). Each request becomes one row of
        BATCH_ALIAS, and the whole DAG runs as a scalar subquery correlated to that row:
        SQL's scoping, not duckapi's code, keeps each answer to its own request's rows.
        Yields (index, `projection` of the served row) in index order; the projection
        is null where the model returned no row.
        """
        if not self.single_row or len(self.inputs) != 1:
            raise ValueError("batch_sql needs a single-input model that returns at most one row")
        lists = [f"unnest(${i}::{c.data_type}[][]) as {quote_identifier(c.name)}"
                 for i, c in enumerate(self.inputs[0].columns, start=2)]
        requests = f"select unnest($1::bigint[]) as {BATCH_KEY}, " + ", ".join(lists)
        answer = self.select_sql(projection, rows="batch")
        return (f"select {BATCH_ALIAS}.{BATCH_KEY}, (\n{answer}\n)\n"
                f"from ({requests}) as {BATCH_ALIAS}\norder by {BATCH_ALIAS}.{BATCH_KEY}")


@lru_cache(maxsize=4096)
def digest(pipeline: Pipeline) -> str:
    """A digest of the compiled SQL a pipeline runs (its inputs' schemas, every model's SQL,
    the reference relations, the columns answered): a vars, parts or rendered variant has
    its own. Answers carry it (Duckapi-Project); with the data version and the request it is
    enough to reproduce an answer."""
    content = {
        "output": pipeline.output_node.unique_id,
        "inputs": [[i.name, [[c.name, c.data_type, c.not_null] for c in i.columns]] for i in pipeline.inputs],
        "nodes": [[n.unique_id, n.compiled_sql] for n in pipeline.nodes],
        "references": [r.name for r in pipeline.references],
        "columns": list(pipeline.columns),
    }
    return hashlib.blake2b(json.dumps(content, sort_keys=True).encode(), digest_size=8).hexdigest()


def provenance(pipeline: Pipeline) -> dict[str, str]:
    """Where an answer of this pipeline comes from, as HTTP headers: the digest of the
    compiled SQL that answers (`digest`) and the warehouse snapshot's data version.
    With the request they are enough to reproduce the answer offline."""
    return {"Duckapi-Project": digest(pipeline), "Duckapi-Data-Version": data_version(pipeline.warehouse)}


@lru_cache(maxsize=4096)
def _rewritten(rewrite: Callable[[str, Sequence[tuple[str, str]]], str], sql: str,
               pairs: tuple[tuple[str, str], ...]) -> str:
    """dialect.rewrite, remembered: the same model SQL recurs in every selection and batch."""
    return rewrite(sql, pairs)


def cte_name(model: str) -> str:
    return DUCKDB.cte(model)


def empty_relation_sql(schema: Schema) -> str:
    """A relation with these columns and types and no rows."""
    columns = ", ".join(f"cast(null as {data_type}) as {quote_identifier(name)}" for name, data_type in schema)
    return f"select {columns} where false"


def _node(raw: dict[str, Any]) -> Node:
    return Node(
        unique_id=raw["unique_id"],
        name=relations.display_name(raw),
        relation_name=raw.get("relation_name"),
        compiled_sql=(raw.get("compiled_code") or "").strip().rstrip(";"),
        depends_on=relations.depends_on(raw),
        materialized=raw.get("config", {}).get("materialized", "view"),
        path=raw.get("original_file_path", raw["unique_id"]),
    )


def endpoint_path(name: str) -> str:
    """`analyse_data`, `/analyse_data` and `/analyse_data/` all name the path `/analyse_data/`."""
    return "/" + name.strip("/") + "/"


T = TypeVar("T")


def find_endpoint(name: str, served: Mapping[str, T], output: Callable[[T], str]) -> str | None:
    """The served path `name` names: a path (slashes optional) or the name of the model
    served there (`output` of each value of `served`, which is keyed by path); else None."""
    path = endpoint_path(name)
    if path in served:
        return path
    return next((path for path, value in served.items() if output(value) == name), None)


def discover_endpoints(manifest: dict[str, Any]) -> list[Endpoint]:
    """Models whose YAML has `meta: {duckapi: {path: ..., input(s): ..., vars: [...]}}` are served."""
    endpoints = []
    for raw in manifest["nodes"].values():
        if raw.get("resource_type") != "model":
            continue
        meta = (raw.get("config", {}).get("meta") or raw.get("meta") or {}).get("duckapi")
        if not meta:
            continue
        where = f"{raw['original_file_path']}: meta.duckapi of model {raw['name']}"
        named = meta.get("inputs", meta.get("input"))
        if isinstance(named, str):
            named = [named]
        if "path" not in meta or not named or not isinstance(named, list) or not all(isinstance(n, str) for n in named):
            raise PipelineError(f"{where} needs `path` and `input: <name>` (or `inputs: [<name>, ...]`)")
        if "input" in meta and "inputs" in meta:
            raise PipelineError(f"{where}: give `input` or `inputs`, not both")
        if len(set(named)) != len(named):
            raise PipelineError(f"{where}: an input is named twice in {named}")
        settable = meta.get("vars") or []
        schemas = {}
        if isinstance(settable, dict):  # {name: JSON schema of its values, or null}
            schemas = {str(k): v for k, v in settable.items() if v is not None}
            if not all(isinstance(v, dict) for v in schemas.values()):
                raise PipelineError(f"{where}: each var in `vars` maps to a JSON schema (a mapping) or null")
            settable = list(settable)
        if not isinstance(settable, list) or not all(isinstance(n, str) for n in settable):
            raise PipelineError(f"{where}: `vars` must be a list of var names, e.g. vars: [session_gap_minutes], "
                                "or a mapping of names to JSON schemas")
        path = endpoint_path(str(meta["path"]))
        endpoints.append(Endpoint(
            path=path, output=raw["name"], inputs=tuple(named), vars=tuple(dict.fromkeys(settable)),
            var_schemas=tuple((k, json.dumps(v, sort_keys=True)) for k, v in schemas.items()),
        ))
    if not endpoints:
        raise PipelineError(
            "no served model: add `meta: {duckapi: {path: /name/, input: <input model>}}` "
            "to a model in a schema.yml of the project"
        )
    return sorted(endpoints, key=lambda e: e.path)


def build_pipeline(
    manifest: dict[str, Any], endpoint: Endpoint, project_dir: Any = None, compiled: bool = True,
    warehouse: relations.WarehouseSchema | None = None,
) -> Pipeline:
    """Walk the DAG from the output back to its inputs, order it, find the reference data.

    `compiled=False` takes a parsed manifest (no SQL yet): the shape of the pipeline only.
    `warehouse` types the inputs that declare no types (relations.input_columns)."""
    output_raw = relations.find_relation(manifest, endpoint.output)
    input_raws = [relations.find_relation(manifest, name) for name in endpoint.inputs]
    input_ids = {raw["unique_id"] for raw in input_raws}

    order: list[str] = []
    state: dict[str, str] = {}
    reaches_input: dict[str, bool] = {uid: True for uid in input_ids}

    def visit(uid: str, trail: tuple[str, ...]) -> bool:
        if uid in reaches_input:
            return reaches_input[uid]
        if state.get(uid) == "visiting":
            cycle = " -> ".join(relations.lookup(manifest, u)["original_file_path"] for u in (*trail, uid))  # type: ignore[index]
            raise PipelineError(f"cycle in the DAG: {cycle}")
        state[uid] = "visiting"
        raw = relations.lookup(manifest, uid)
        reaches = False
        for dep in relations.depends_on(raw) if raw else ():
            if relations.lookup(manifest, dep) is not None:
                reaches = visit(dep, (*trail, uid)) or reaches
        state[uid] = "done"
        reaches_input[uid] = reaches
        if reaches:
            order.append(uid)
        return reaches

    output_id = output_raw["unique_id"]
    if output_id in input_ids:
        raise PipelineError(f"{output_raw['original_file_path']}: model {endpoint.output} cannot be its own input")
    visit(output_id, ())
    for raw in input_raws:
        if not _upstream(manifest, output_id, raw["unique_id"]):
            raise PipelineError(
                f"{output_raw['original_file_path']}: model {endpoint.output} does not depend on its input "
                f"{relations.display_name(raw)}"
            )
    nodes = manifest["nodes"]
    pipeline_nodes = tuple(_node(nodes[uid]) for uid in order if nodes[uid].get("relation_name"))
    for node in pipeline_nodes if compiled else ():
        if not node.compiled_sql:
            raise PipelineError(f"{node.path}: model {node.name} has no compiled SQL; run `duckapi build`")
    inside = set(order) | input_ids
    inputs = tuple(
        Input(i, name, _node(raw), relations.input_columns(
            raw, project_dir, warehouse, relations.not_null_tested(manifest, raw["unique_id"])))
        for i, (name, raw) in enumerate(zip(endpoint.inputs, input_raws))
    )
    return Pipeline(
        endpoint=endpoint,
        inputs=inputs,
        output_node=_node(output_raw),
        nodes=pipeline_nodes,
        references=relations.references(manifest, order, inside),
        introspection=introspect(manifest.get(QUERIES_KEY) or {}, inputs, pipeline_nodes),
    )


def introspect(queries: Mapping[str, Sequence[str]], inputs: Sequence[Input], nodes: Sequence[Node]) -> Introspection:
    """What these models' renderings read (introspection.classify), over the relations the
    request's rows feed: the inputs' and the pipeline models'."""
    fed = {i.node.relation_name: i.node.unique_id for i in inputs if i.node.relation_name}
    fed.update({n.relation_name: n.unique_id for n in nodes if n.relation_name})
    return classify(queries, nodes, fed, [i.node.relation_name or "" for i in inputs])


def _upstream(manifest: dict[str, Any], start: str, wanted: str) -> bool:
    stack, seen = [start], set()
    while stack:
        uid = stack.pop()
        if uid == wanted:
            return True
        if uid in seen:
            continue
        seen.add(uid)
        raw = relations.lookup(manifest, uid)
        stack.extend(relations.depends_on(raw) if raw else ())
    return False


def build_pipelines(
    manifest: dict[str, Any], project_dir: Any = None, warehouse: relations.WarehouseSchema | None = None,
) -> dict[str, Pipeline]:
    """Every served endpoint's pipeline, keyed by URL path."""
    return {e.path: build_pipeline(manifest, e, project_dir, warehouse=warehouse) for e in discover_endpoints(manifest)}
