"""The DAG between a served model and its request input, as one SQL statement.

Built once from a compiled dbt manifest. Every model downstream of the input becomes
a CTE; the input model itself is replaced by the request's table, so the statement
reads nothing but the request. dbt compiles fully qualified relation names, which
are rewritten to the CTE names here (a registered table would not shadow them).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Literal, Mapping, Sequence

#: The name under which an engine exposes the request's rows to the statement.
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


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _replace_relations(sql: str, relations: Sequence[tuple[str, str]]) -> str:
    """dbt-duckdb's relation names are fully quoted ("db"."main"."model"): plain text."""
    for relation, name in relations:
        sql = sql.replace(relation, name)
    return sql


@dataclass(frozen=True)
class Dialect:
    """How an engine spells the pipeline's statement: one CTE chain, engine words."""

    quote: Callable[[str], str] = quote_identifier
    #: A contract data_type in this engine's SQL.
    type_name: Callable[[str], str] = field(default=lambda data_type: data_type)
    #: Supports `with x as materialized (...)` (compute once, share between dependents).
    materialized_ctes: bool = True
    #: Compiled SQL with dbt's relation names -> CTE names, given (relation, CTE) pairs.
    rewrite: Callable[[str, Sequence[tuple[str, str]]], str] = _replace_relations

    def cte(self, model: str) -> str:
        return self.quote(CTE_PREFIX + model)


DUCKDB = Dialect()


class PipelineError(ValueError):
    """The project does not describe a servable pipeline; the message names the file."""


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str
    not_null: bool


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
    """A served model: where it is mounted and which model its requests replace."""

    path: str
    output: str
    input: str


#: dbt materializations computed once per request and shared by their dependents;
#: views are inlined where used (DuckDB may still share them), ephemerals are
#: already inlined by dbt into their dependents' compiled SQL.
MATERIALIZED = frozenset({"table", "incremental", "materialized_view"})


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: cheap cache keys
class Pipeline:
    endpoint: Endpoint
    input_node: Node
    output_node: Node
    nodes: tuple[Node, ...]  # topological order, input excluded, output last
    input_columns: tuple[Column, ...]
    #: The served model's columns to answer with; all of them when empty.
    columns: tuple[str, ...] = ()
    #: The served model can return at most one row, so its answer needs no sort.
    single_row: bool = False
    #: DuckDB can plan `batch_sql`: small requests may be answered several at once.
    batchable: bool = False

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

    def body_sql(self, rows: Rows = "table", dialect: Dialect = DUCKDB) -> str:
        """WITH ... over the request's rows; select from the output's CTE to finish it.

        `rows` says where the input comes from (see `input_sql`).
        """
        relations = [(n.relation_name, dialect.cte(n.name)) for n in (self.input_node, *self.nodes) if n.relation_name]
        ctes = [f"{dialect.cte(self.input_node.name)} as (\n{self.input_sql(rows, dialect)}\n)"]
        for node in self.nodes:
            shared = dialect.materialized_ctes and node.materialized in MATERIALIZED
            how = "as materialized" if shared else "as"
            ctes.append(f"{dialect.cte(node.name)} {how} (\n{dialect.rewrite(node.compiled_sql, relations)}\n)")
        return "with " + ",\n".join(ctes)

    @property
    def output_cte(self) -> str:
        return self.output_node.cte_name

    def input_sql(self, rows: Rows = "table", dialect: Dialect = DUCKDB) -> str:
        """The input model's replacement. "table": the relation INPUT_RELATION; "bound":
        one bound list parameter per contract column ($1, $2, ... unnested in step);
        "batch": the lists of the current row of BATCH_ALIAS (see `batch_sql`)."""
        names = [dialect.quote(c.name) for c in self.input_columns]
        if rows == "bound":
            columns = [f"unnest(${i}::{c.data_type}[]) as {name}"
                       for i, (c, name) in enumerate(zip(self.input_columns, names), start=1)]
            return "select\n    " + ",\n    ".join(columns)
        if rows == "batch":
            return "select\n    " + ",\n    ".join(f"unnest({BATCH_ALIAS}.{name}) as {name}" for name in names)
        columns = [f"cast({name} as {dialect.type_name(c.data_type)}) as {name}"
                   for c, name in zip(self.input_columns, names)]
        return "select\n    " + ",\n    ".join(columns) + f"\nfrom {INPUT_RELATION}"

    def select_sql(self, projection: str = "*", rows: Rows = "table") -> str:
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
        """One statement that answers many requests of a single-row model at once.

        Bound parameters: $1 the requests' indexes, then one list of lists per contract
        column (request i's column values at position i). Each request becomes one row of
        BATCH_ALIAS, and the whole DAG runs as a scalar subquery correlated to that row:
        SQL's scoping, not duckapi's code, keeps each answer to its own request's rows.
        Yields (index, `projection` of the served row) in index order; the projection
        is null where the model returned no row.
        """
        if not self.single_row:
            raise ValueError("batch_sql needs a model that returns at most one row")
        lists = [f"unnest(${i}::{c.data_type}[][]) as {quote_identifier(c.name)}"
                 for i, c in enumerate(self.input_columns, start=2)]
        requests = f"select unnest($1::bigint[]) as {BATCH_KEY}, " + ", ".join(lists)
        answer = self.select_sql(projection, rows="batch")
        return (f"select {BATCH_ALIAS}.{BATCH_KEY}, (\n{answer}\n)\n"
                f"from ({requests}) as {BATCH_ALIAS}\norder by {BATCH_ALIAS}.{BATCH_KEY}")


def cte_name(model: str) -> str:
    return DUCKDB.cte(model)


def empty_relation_sql(schema: Schema) -> str:
    """A relation with these columns and types and no rows."""
    columns = ", ".join(f"cast(null as {data_type}) as {quote_identifier(name)}" for name, data_type in schema)
    return f"select {columns} where false"


def _node(raw: dict[str, Any]) -> Node:
    return Node(
        unique_id=raw["unique_id"],
        name=raw["name"],
        relation_name=raw.get("relation_name"),
        compiled_sql=(raw.get("compiled_code") or "").strip().rstrip(";"),
        depends_on=tuple(raw.get("depends_on", {}).get("nodes", ())),
        materialized=raw.get("config", {}).get("materialized", "view"),
        path=raw.get("original_file_path", raw["unique_id"]),
    )


def discover_endpoints(manifest: dict[str, Any]) -> list[Endpoint]:
    """Models whose YAML has `meta: {duckapi: {path: ..., input: ...}}` are served."""
    endpoints = []
    for raw in manifest["nodes"].values():
        if raw.get("resource_type") != "model":
            continue
        meta = (raw.get("config", {}).get("meta") or raw.get("meta") or {}).get("duckapi")
        if not meta:
            continue
        if "path" not in meta or "input" not in meta:
            raise PipelineError(
                f"{raw['original_file_path']}: meta.duckapi of model {raw['name']} needs `path` and `input`"
            )
        path = "/" + str(meta["path"]).strip("/") + "/"
        endpoints.append(Endpoint(path=path, output=raw["name"], input=str(meta["input"])))
    if not endpoints:
        raise PipelineError(
            "no served model: add `meta: {duckapi: {path: /name/, input: <input model>}}` "
            "to a model in a schema.yml of the project"
        )
    return sorted(endpoints, key=lambda e: e.path)


def _by_name(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    for raw in manifest["nodes"].values():
        if raw.get("resource_type") == "model" and raw["name"] == name:
            return raw
    raise PipelineError(f"no model named {name!r} in the project")


def _contract_columns(raw: dict[str, Any]) -> tuple[Column, ...]:
    path = raw["original_file_path"]
    if not raw.get("config", {}).get("contract", {}).get("enforced"):
        raise PipelineError(
            f"input model {raw['name']} ({path}) needs `contract: {{enforced: true}}` "
            "in its YAML: its contract is the API's input schema"
        )
    columns = []
    for col in raw.get("columns", {}).values():
        if not col.get("data_type"):
            raise PipelineError(f"{path}: contract column {col['name']} has no data_type")
        constraints = col.get("constraints") or []
        not_null = any(c.get("type") == "not_null" for c in constraints)
        columns.append(Column(col["name"], col["data_type"], not_null))
    if not columns:
        raise PipelineError(f"{path}: the contract of {raw['name']} declares no columns")
    return tuple(columns)


def build_pipeline(manifest: dict[str, Any], endpoint: Endpoint) -> Pipeline:
    """Walk the DAG from the output back to the input model and order it."""
    nodes = manifest["nodes"]
    input_raw = _by_name(manifest, endpoint.input)
    output_raw = _by_name(manifest, endpoint.output)
    input_id = input_raw["unique_id"]

    order: list[str] = []
    state: dict[str, str] = {}
    reaches_input: dict[str, bool] = {input_id: True}

    def visit(uid: str, trail: tuple[str, ...]) -> bool:
        if uid == input_id:
            return True
        if state.get(uid) == "visiting":
            cycle = " -> ".join(nodes[u]["original_file_path"] for u in (*trail, uid) if u in nodes)
            raise PipelineError(f"cycle in the DAG: {cycle}")
        if uid in reaches_input:
            return reaches_input[uid]
        state[uid] = "visiting"
        raw = nodes.get(uid)
        deps = raw.get("depends_on", {}).get("nodes", ()) if raw else ()
        reaches = False
        for dep in deps:
            if dep in nodes:
                reaches = visit(dep, (*trail, uid)) or reaches
        state[uid] = "done"
        reaches_input[uid] = reaches
        if reaches:
            order.append(uid)
        return reaches

    if not visit(output_raw["unique_id"], ()):
        raise PipelineError(
            f"{output_raw['original_file_path']}: model {endpoint.output} does not depend on its input "
            f"model {endpoint.input}"
        )
    pipeline_nodes = tuple(_node(nodes[uid]) for uid in order if nodes[uid].get("relation_name"))
    for node in pipeline_nodes:
        if not node.compiled_sql:
            raise PipelineError(f"{node.path}: model {node.name} has no compiled SQL; run `duckapi build`")
    return Pipeline(
        endpoint=endpoint,
        input_node=_node(input_raw),
        output_node=_node(output_raw),
        nodes=pipeline_nodes,
        input_columns=_contract_columns(input_raw),
    )


def build_pipelines(manifest: dict[str, Any]) -> dict[str, Pipeline]:
    """Every served endpoint's pipeline, keyed by URL path."""
    return {e.path: build_pipeline(manifest, e) for e in discover_endpoints(manifest)}
