"""Which pipeline models dbt rendered from the data: the queries their rendering ran.

dbt renders a model like `{{ dbt_utils.pivot('g', get_column_values(ref('x'), 'g')) }}`
by running a query against the database while it compiles, so its SQL depends on the
rows that query read. The compile records every query a node's rendering ran
(dbt/project.py, dbt's SQLQuery events while the node is compiling). Here each query of a
pipeline model is classified by what it reads, on DuckDB's parse tree:

* it reads an input or a pipeline model (a relation the request's rows replace or feed):
  a **probe**. The model is data-dependent: its SQL is rendered per request, keyed by
  what the probes give over the request's rows (serving/rendering.py);
* it reads only reference data (the warehouse): the same answer for every request of a
  snapshot, so the compiled SQL stands;
* it only introspects a relation's columns (`describe`, information_schema: as
  `get_columns_in_relation` and `dbt_utils.star` do): the same for every request unless
  the relation's columns themselves depend on the data (a data-dependent model or one
  downstream of it); then the model is data-dependent too, rendered with the variant of
  the models it introspects (no probe of its own: their columns follow from their SQL);
* it cannot be parsed and names a pipeline relation: duckapi cannot tell what it reads,
  so the endpoint refuses (never an answer rendered from other data).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from duckapi.pipeline import relations
from duckapi.errors import PipelineError

#: The leading `/* {"app": "dbt", ...} */` comment dbt puts on every query.
_QUERY_COMMENT = re.compile(r"^\s*/\*.*?\*/\s*", re.S)
_CATALOG_WORDS = ("information_schema", "duckdb_columns", "duckdb_tables", "duckdb_views", "pragma_table_info")


@dataclass(frozen=True)
class Probe:
    """A query a model's rendering ran over pipeline relations: rendering depends on its rows."""

    model: str  # the pipeline model whose rendering ran it
    sql: str  # as dbt ran it, its comment and final semicolon removed
    reads: tuple[str, ...]  # dbt's names of the pipeline relations it reads
    #: (input index, column) when the query is `select distinct <column> from <input>`,
    #: maybe ordered by that column: its rows are a function of the column's set of
    #: values, which can key it without a statement (serving/rendering.py).
    distinct: tuple[int, str] | None = None


@dataclass(frozen=True)
class Introspection:
    """What a pipeline's models' renderings read: its probes, the data-dependent models."""

    probes: tuple[Probe, ...] = ()
    #: Models whose SQL depends on the request's rows (probes, or columns of such a model).
    dependent: tuple[str, ...] = ()
    #: Why the pipeline cannot be answered exactly (a query duckapi cannot place), if so.
    refusal: str | None = None

    def queries(self, model: str) -> list[str]:
        """The queries over the request's data that `model`'s rendering runs."""
        return [probe.sql for probe in self.probes if probe.model == model]


def clean(sql: str) -> str:
    return _QUERY_COMMENT.sub("", sql, count=1).strip().rstrip(";").strip()


def _matches(key: tuple[str, ...], relation: tuple[str, ...]) -> bool:
    """A table reference as written (maybe without catalog or schema) names the relation."""
    written = [part for part in key if part]
    return bool(written) and tuple(written) == relation[len(relation) - len(written):]


def tables(sql: str) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]] | None:
    """The table references in `sql` (lowercased parts): those it reads rows of, and those
    it only describes (`describe x`, as dbt-duckdb's get_columns_in_relation runs);
    None unless DuckDB parses it as exactly one SELECT."""
    try:
        tree = relations.parse(sql)
    except PipelineError:
        return None
    if len(tree.get("statements") or []) != 1:
        return None
    reads: list[tuple[str, ...]] = []
    described: list[tuple[str, ...]] = []
    stack: list[tuple[Any, bool]] = [(tree, False)]
    while stack:
        item, describing = stack.pop()
        if isinstance(item, dict):
            if item.get("type") == "SHOW_REF" and item.get("show_type") == "DESCRIBE":
                describing = True
            if item.get("type") == "BASE_TABLE":
                (described if describing else reads).append(relations._table_key(item))
            stack.extend((value, describing) for value in item.values())
        elif isinstance(item, list):
            stack.extend((value, describing) for value in item)
    return reads, described


def classify(
    queries: Mapping[str, Sequence[str]], nodes: Sequence[Any], inside: Mapping[str, str],
    inputs: Sequence[str] = (),
) -> Introspection:
    """`queries` by unique_id (the compile's record); `nodes` the pipeline models in
    topological order (pipeline.Node); `inside` every pipeline relation (inputs and
    models) as dbt's relation name -> the unique_id of its node; `inputs` the inputs'
    relation names in the pipeline's order."""
    keyed = {relations._key(relations.split_relation_name(name)): name for name in inside}
    probes: list[Probe] = []
    introspected: dict[str, set[str]] = {}  # model -> relation names whose columns it read
    refusal = None
    for node in nodes:
        for raw in queries.get(node.unique_id, ()):
            sql = clean(raw)
            found = tables(sql)
            if found is None:
                if any(_mentions(sql, name) for name in inside):
                    refusal = refusal or (
                        f"model {node.name} ({node.path}) renders from a query duckapi cannot parse, which "
                        f"names a relation the request's rows feed, so it cannot be answered exactly: {sql[:300]}"
                    )
                continue
            read, described = found
            reads = sorted({name for key in read for k, name in keyed.items() if _matches(key, k)})
            if reads:
                column = _distinct_column(sql)
                distinct = (inputs.index(reads[0]), column) if column and len(reads) == 1 and reads[0] in inputs else None
                probes.append(Probe(node.name, sql, tuple(reads), distinct))
                continue
            columns_of = {name for key in described for k, name in keyed.items() if _matches(key, k)}
            if any(word in sql.lower() for word in _CATALOG_WORDS):
                columns_of.update(n for n in inside if _literal(sql, n))
            if columns_of:
                introspected.setdefault(node.name, set()).update(columns_of)
    dependent = {p.model for p in probes}
    by_relation = {node.relation_name: node for node in nodes if node.relation_name}
    changed = True
    while changed:  # varying columns: a dependent model and what reads one; star() over them
        changed = False
        varying = _downstream(nodes, dependent)
        for model, read in introspected.items():
            if model not in dependent and any(by_relation.get(r) is not None and by_relation[r].name in varying for r in read):
                dependent.add(model)
                changed = True
    return Introspection(tuple(probes), tuple(n.name for n in nodes if n.name in dependent), refusal)


def _distinct_column(sql: str) -> str | None:
    """The column of `select distinct <column> from <one table> [order by it]` (nothing
    else: no filter, grouping, limit, join or CTE), else None."""
    node = relations.parse(sql)["statements"][0]["node"]
    if node.get("type") != "SELECT_NODE" or node.get("where_clause") or node.get("group_expressions") \
            or node.get("having") or node.get("qualify") or node.get("sample") or (node.get("cte_map") or {}).get("map"):
        return None
    if (node.get("from_table") or {}).get("type") != "BASE_TABLE" or len(node.get("select_list") or []) != 1:
        return None
    [item] = node["select_list"]
    if item.get("type") != "COLUMN_REF" or len(item.get("column_names") or []) != 1:
        return None
    column = item["column_names"][0]
    modifiers = node.get("modifiers") or []
    if not any(m.get("type") == "DISTINCT_MODIFIER" and not m.get("distinct_on_targets") for m in modifiers):
        return None
    for modifier in modifiers:
        if modifier.get("type") == "ORDER_MODIFIER":
            for order in modifier.get("orders") or []:
                by = order.get("expression") or {}
                named = by.get("type") == "COLUMN_REF" and [n.lower() for n in by.get("column_names") or []] in (
                    [column.lower()], [(item.get("alias") or column).lower()])
                first = by.get("type") == "VALUE_CONSTANT" and (by.get("literal") or {}).get("text") == "1"
                if not (named or first):
                    return None
        elif modifier.get("type") != "DISTINCT_MODIFIER":
            return None
    return column


def _downstream(nodes: Sequence[Any], roots: Iterable[str]) -> set[str]:
    """Models in `roots` and every pipeline model that reads one (topological `nodes`)."""
    found = set(roots)
    ids = {n.unique_id for n in nodes if n.name in found}
    for node in nodes:
        if node.unique_id not in ids and any(d in ids for d in node.depends_on):
            ids.add(node.unique_id)
            found.add(node.name)
    return found


def _mentions(sql: str, relation_name: str) -> bool:
    table = relations.split_relation_name(relation_name)[-1]
    return re.search(r"(?<![\w])" + re.escape(table) + r"(?![\w])", sql, re.I) is not None


def _literal(sql: str, relation_name: str) -> bool:
    """The relation's table name as a string literal (how catalog queries name it)."""
    table = relations.split_relation_name(relation_name)[-1]
    return re.search("'" + re.escape(table.replace("'", "''")) + "'", sql, re.I) is not None
