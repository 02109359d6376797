"""How a served model's compiled SQL finds its relations: inputs, pipeline models, reference data.

One place for what the API, `duckapi run` and Spark all need:

* **Inputs**: the relations each request's rows replace: a model with an enforced
  contract, a seed (typed by its column_types) or a source table (its YAML columns'
  data_type), named in `meta.duckapi.inputs`.
* **Pipeline models**: every model on a path from an input to the served model. The
  engine computes them per request, as one statement of CTEs.
* **Reference relations**: everything else the pipeline reads (seeds, tables, views,
  incremental models, snapshots, sources): read from the dbt-built warehouse as it is.

dbt compiles every ref() to its full relation name ("dev"."main"."orders"). To run a
pipeline model as a CTE, the engine must point exactly those references at the CTE
and nothing else. For DuckDB that is done on DuckDB's own parse tree
(`json_serialize_sql`), which gives each table reference's byte offset: the name there
becomes the CTE's name *aliased to the relation's own name* ("duckapi__orders" as
"orders"), so `orders.order_id`, `list(orders)` and `select orders from ...` keep
their meaning; a reference the user aliased keeps the user's alias; a column
qualified by the full relation name gets the bare name as qualifier. Inner CTEs,
string literals and comments are untouched. The rewritten statement is parsed again
to check that no reference to a pipeline relation is left.
"""

from __future__ import annotations

import csv
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import duckdb

from duckapi.pipeline.contract import column_type, duckdb_name
from duckapi.errors import PipelineError


@dataclass(frozen=True)
class Column:
    """A column of an input's contract (or of an answer: then not_null is False)."""

    name: str
    data_type: str
    not_null: bool


@dataclass(frozen=True)
class Reference:
    """A relation a pipeline reads from the warehouse: dbt's name for it and what it is."""

    name: str  # model/seed/snapshot name, or source_name.table_name
    kind: str  # model (with its materialization), seed, snapshot, source
    relation_name: str

    @property
    def parts(self) -> tuple[str, ...]:
        return split_relation_name(self.relation_name)


# -- the manifest ----------------------------------------------------------------------

def lookup(manifest: dict[str, Any], unique_id: str) -> dict[str, Any] | None:
    return manifest["nodes"].get(unique_id) or manifest.get("sources", {}).get(unique_id)


def display_name(raw: dict[str, Any]) -> str:
    if raw.get("resource_type") == "source":
        return f"{raw['source_name']}.{raw['name']}"
    return raw["name"]


def find_relation(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    """A model, seed or snapshot by name, or a source table as `source_name.table_name`
    (or its bare table name when no model, seed or other source has it)."""
    nodes = [n for n in manifest["nodes"].values() if n.get("resource_type") in ("model", "seed", "snapshot")]
    for raw in nodes:
        if raw["name"] == name:
            return raw
    sources = list(manifest.get("sources", {}).values())
    for raw in sources:
        if display_name(raw) == name:
            return raw
    bare = [raw for raw in sources if raw["name"] == name]
    if len(bare) == 1:
        return bare[0]
    if bare:
        choices = ", ".join(sorted(display_name(r) for r in bare))
        raise PipelineError(f"input {name!r} is ambiguous: name one of the sources {choices}")
    raise PipelineError(f"no model, seed or source named {name!r} in the project")


#: A relation's columns as the warehouse holds them, by dbt's relation name: [(name, DuckDB
#: type)], or None when the warehouse has no such relation.
WarehouseSchema = Callable[[str], "list[tuple[str, str]] | None"]


def not_null_tested(manifest: dict[str, Any], unique_id: str) -> set[str]:
    """The columns (lowercased) of a node that a `not_null` data test checks: dbt keeps
    data tests as nodes of their own, not on the columns they test."""
    tested = set()
    for node in manifest["nodes"].values():
        meta = node.get("test_metadata") or {}
        if node.get("resource_type") == "test" and meta.get("name") == "not_null" \
                and unique_id in (node.get("depends_on") or {}).get("nodes", ()):
            column = node.get("column_name") or (meta.get("kwargs") or {}).get("column_name")
            if column:
                tested.add(str(column).strip('"').lower())
    return tested


def input_columns(
    raw: dict[str, Any], project_dir: Path | None = None, warehouse: WarehouseSchema | None = None,
    not_null: set[str] = frozenset(),  # type: ignore[assignment]
) -> tuple[Column, ...]:
    """The schema of an input: a model's contract, a seed's column_types, a source's YAML
    columns' data_type; where those give no type, the relation's columns and types as the
    warehouse holds them (`warehouse`), exactly what `dbt build` made. A declared type the
    warehouse disagrees with is an error naming both."""
    kind = raw.get("resource_type")
    path = raw.get("original_file_path", raw["unique_id"])
    name = display_name(raw)
    if kind not in ("model", "seed", "source"):
        raise PipelineError(f"{path}: {raw['name']} is a {kind}; an input is a model, a seed or a source")
    yaml = {k.lower(): v for k, v in (raw.get("columns") or {}).items()}
    if kind == "model" and raw.get("config", {}).get("contract", {}).get("enforced"):
        declared = [(col["name"], col.get("data_type")) for col in yaml.values()]
        for column, data_type in declared:
            if not data_type:
                raise PipelineError(f"{path}: contract column {column} has no data_type")
    elif kind == "seed":
        declared = _seed_declared(raw, project_dir)
    else:
        declared = [(col["name"], col.get("data_type")) for col in yaml.values()]
    held = warehouse(raw["relation_name"]) if warehouse is not None and raw.get("relation_name") else None
    if declared and all(data_type for _, data_type in declared):
        _agree(name, path, declared, held)
        columns = declared
    elif held is not None:
        types = {column.lower(): data_type for column, data_type in declared if data_type}
        _agree(name, path, [(c, types[c.lower()]) for c, _ in held if c.lower() in types], held)
        columns = [(column, types.get(column.lower()) or data_type) for column, data_type in held]
    else:
        untyped = ", ".join(column for column, data_type in declared if not data_type) or "any column"
        raise PipelineError(
            f"{path}: input {name} declares no type for {untyped} and the warehouse has no relation "
            f"{raw.get('relation_name')} to read its types from: build it (`duckapi build` or `dbt build`), "
            "or give its columns a data_type"
        )
    if not columns:
        raise PipelineError(f"{path}: input {name} declares no columns")
    return tuple(
        Column(column, data_type, column.lower() in not_null or _not_null(yaml.get(column.lower(), {})))
        for column, data_type in columns
    )


def check_input_types(inputs: Sequence[Any]) -> None:
    """Requests decode rows only into the contract types (contract.py): another type in a
    served input stops start-up naming input, column and type. (A unit test's given rows
    are cast by DuckDB itself, so `duckapi test` takes any type.)"""
    for item in inputs:
        for column in item.columns:
            try:
                column_type(column.data_type)
            except ValueError as exc:
                raise PipelineError(f"{item.node.path}: input {item.name} column {column.name}: {exc}") from None


def _agree(name: str, path: str, declared: Sequence[tuple[str, str]], held: "list[tuple[str, str]] | None") -> None:
    """Declared types the warehouse holds differently (as DuckDB names both) stop start-up."""
    if held is None:
        return
    types = {column.lower(): data_type for column, data_type in held}
    for column, data_type in declared:
        warehouse_type = types.get(column.lower())
        if warehouse_type is not None and _same_type(data_type) != _same_type(warehouse_type):
            raise PipelineError(
                f"{path}: input {name} column {column} is declared {data_type} but the warehouse holds it as "
                f"{warehouse_type}: make them agree (or leave the data_type out to take the warehouse's)"
            )


def _same_type(data_type: str) -> str:
    """A type as DuckDB names it once parsed (VARCHAR(10) is VARCHAR); else the text, lowercased."""
    try:
        return duckdb_name(data_type)
    except ValueError:
        return data_type.strip().lower()


def _not_null(col: dict[str, Any]) -> bool:
    """A not_null constraint, or for seeds and sources a not_null data test."""
    if any(c.get("type") == "not_null" for c in col.get("constraints") or []):
        return True
    tests = col.get("data_tests") or col.get("tests") or []
    return any(t == "not_null" or (isinstance(t, dict) and "not_null" in t) for t in tests)


def _seed_declared(raw: dict[str, Any], project_dir: Path | None) -> list[tuple[str, str | None]]:
    """A seed's header (its CSV file), each column typed by column_types or its YAML data_type."""
    path = raw.get("original_file_path", raw["name"])
    root = Path(raw.get("root_path") or project_dir or ".")
    try:
        with (root / path).open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), [])
    except OSError as exc:
        raise PipelineError(f"{path}: cannot read the seed's header ({exc})") from exc
    types = {k.lower(): v for k, v in (raw.get("config", {}).get("column_types") or {}).items()}
    declared = {k.lower(): v for k, v in raw.get("columns", {}).items()}
    return [(name, types.get(name.lower()) or declared.get(name.lower(), {}).get("data_type")) for name in header]


def depends_on(raw: dict[str, Any]) -> tuple[str, ...]:
    return tuple(raw.get("depends_on", {}).get("nodes", ()))


def is_ephemeral(raw: dict[str, Any]) -> bool:
    return raw.get("resource_type") == "model" and raw.get("config", {}).get("materialized") == "ephemeral"


def references(manifest: dict[str, Any], readers: Sequence[str], inside: set[str]) -> tuple[Reference, ...]:
    """The relations `readers` read that are outside the pipeline (`inside`: pipeline
    models, ephemerals on a path from an input, and the inputs). dbt inlines ephemeral
    models, so what an outside ephemeral reads is read by its reader."""
    found: dict[str, Reference] = {}
    seen: set[str] = set()

    def visit(uid: str) -> None:
        if uid in inside or uid in seen:
            return
        seen.add(uid)
        raw = lookup(manifest, uid)
        if raw is None:
            return
        if is_ephemeral(raw):
            for dep in depends_on(raw):
                visit(dep)
            return
        if raw.get("relation_name"):
            kind = raw.get("resource_type", "model")
            if kind == "model":
                kind = f"model ({raw.get('config', {}).get('materialized', 'view')})"
            found[raw["relation_name"]] = Reference(display_name(raw), kind, raw["relation_name"])

    for uid in readers:
        raw = lookup(manifest, uid)
        for dep in depends_on(raw) if raw else ():
            visit(dep)
    return tuple(sorted(found.values(), key=lambda r: r.relation_name))


# -- relation names in SQL -------------------------------------------------------------

_IDENT = re.compile(rb'\s*(?:"((?:[^"]|"")*)"|`((?:[^`]|``)*)`|([A-Za-z_\x80-\xff][A-Za-z0-9_$\x80-\xff]*))')
_DOT = re.compile(rb"\s*\.")


def _scan_name(text: bytes, pos: int, parts: int) -> tuple[list[str], int]:
    """Up to `parts` dot-separated identifiers at byte `pos`: their values and the end."""
    names: list[str] = []
    for i in range(parts):
        if i:
            dot = _DOT.match(text, pos)
            if not dot:
                break
            pos = dot.end()
        match = _IDENT.match(text, pos)
        if not match:
            break
        quoted, ticked, bare = match.groups()
        if quoted is not None:
            names.append(quoted.decode().replace('""', '"'))
        elif ticked is not None:
            names.append(ticked.decode().replace("``", "`"))
        else:
            names.append(bare.decode())
        pos = match.end()
    return names, pos


def split_relation_name(relation_name: str) -> tuple[str, ...]:
    """`"dev"."main"."orders"` -> ("dev", "main", "orders"); also `schema.table` (Spark)."""
    names, _ = _scan_name(relation_name.encode(), 0, 3)
    return tuple(names)


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_parser_lock = threading.Lock()
_parser: duckdb.DuckDBPyConnection | None = None


def parse(sql: str) -> dict[str, Any]:
    """DuckDB's parse tree of a statement (parsing only: nothing is bound or run)."""
    global _parser
    with _parser_lock:
        if _parser is None:
            _parser = duckdb.connect(":memory:", config={"enable_external_access": False})
        (tree,) = _parser.execute("select json_serialize_sql($1)", [sql]).fetchone()  # type: ignore[misc]
    parsed = json.loads(tree)
    if parsed.get("error"):
        raise PipelineError(parsed.get("error_message") or "DuckDB cannot parse the SQL")
    return parsed


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _key(parts: Sequence[str]) -> tuple[str, ...]:
    return tuple(p.lower() for p in parts)


def _table_key(node: dict[str, Any]) -> tuple[str, ...]:
    return _key((node.get("catalog_name") or "", node.get("schema_name") or "", node.get("table_name") or ""))


def duckdb_rewrite(sql: str, relations: Sequence[tuple[str, str]]) -> str:
    """Point every reference to these relations (dbt name, CTE name) at its CTE (see the
    module docstring); raise PipelineError if a reference cannot be placed exactly."""
    targets = {_key(split_relation_name(name)): cte for name, cte in relations}
    if not targets:
        return sql
    text = sql.encode()
    edits: list[tuple[int, int, str]] = []
    for node in _nodes(parse(sql)):
        kind = node.get("type")
        if kind == "BASE_TABLE" and _table_key(node) in targets:
            start = node.get("query_location")
            names, end = _scan_name(text, start, 3) if isinstance(start, int) else ([], 0)
            if _key(names) != _table_key(node):
                raise PipelineError(f"cannot place the reference to {'.'.join(names) or node.get('table_name')}")
            alias = "" if node.get("alias") else f" as {quote_identifier(node['table_name'])}"
            edits.append((start + len(text[start:end]) - len(text[start:end].lstrip()), end, targets[_table_key(node)] + alias))
        elif kind == "COLUMN_REF" and len(node.get("column_names") or ()) >= 3:
            parts = node["column_names"]
            if _key(parts[:3]) in targets:
                start = node.get("query_location")
                names, end = _scan_name(text, start, 3) if isinstance(start, int) else ([], 0)
                if _key(names) != _key(parts[:3]):
                    raise PipelineError(f"cannot place the column reference {'.'.join(parts)}")
                edits.append((start, end, quote_identifier(parts[2])))
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement.encode() + text[end:]
    rewritten = text.decode()
    for node in _nodes(parse(rewritten)):
        if node.get("type") == "BASE_TABLE" and _table_key(node) in targets:
            raise PipelineError(f"a reference to {node.get('table_name')} is left after rewriting")
    return rewritten


#: Words that may follow a table reference in Spark SQL when it has no alias.
_SPARK_NOT_ALIAS = frozenset("""
    where join inner left right full cross outer natural semi anti on using group order having limit
    union intersect except minus window qualify lateral tablesample pivot unpivot sort cluster distribute
    offset select from when then else end and or not is in like between
""".split())
_SPARK_WORD = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*|`)")


def spark_rewrite(sql: str, relations: Sequence[tuple[str, str]]) -> str:
    """dbt-spark's relation names (`schema.model`, maybe backticked) -> CTE names, whole
    names only, aliased to the relation's own name unless the SQL gives an alias.

    Spark has no parser here, so the alias test is lexical: a following word that is
    not a keyword (or a backticked name, or AS) is the user's alias.
    """
    for relation, cte in sorted(relations, key=lambda r: -len(r[0])):
        table = split_relation_name(relation)[-1]
        pattern = re.compile(r"(?<![\w.`])" + re.escape(relation) + r"(?![\w`])")
        out, pos = [], 0
        for match in pattern.finditer(sql):
            follow = _SPARK_WORD.match(sql, match.end())
            aliased = bool(follow) and (follow[1] == "`" or follow[1].lower() not in _SPARK_NOT_ALIAS)
            out.append(sql[pos:match.start()] + cte + ("" if aliased else f" AS `{table}`"))
            pos = match.end()
        sql = "".join(out) + sql[pos:]
    return sql

