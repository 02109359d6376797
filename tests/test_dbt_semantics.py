"""duckapi answers what dbt computes: dbt's own build is the oracle.

Each project under tests/projects/semantics/ exercises one dbt construct (a relation's
name used as its row, columns qualified by relation name, inner CTEs named like other
models, ephemeral models, custom schemas and aliases, Jinja loops, reference data of
every kind, a seed or source tables as inputs); examples/shop combines them the way a
real project does. `dbt build` computes every served model over the example rows its
inputs read. Posting exactly those input rows (as dbt built them) to the served path
must answer exactly the served model's rows as dbt built them.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import duckdb
import pytest
from fastapi.testclient import TestClient

from duckapi.dbt import project
from duckapi.api.app import create_app
from duckapi.settings import Settings
from tests.conftest import settings_in

ROOT = Path(__file__).resolve().parent.parent
SEMANTICS = ROOT / "tests" / "projects" / "semantics"
PROJECTS: dict[str, Path] = {
    name: SEMANTICS / name
    for name in (
        "row_reference", "qualified_columns", "inner_cte_names", "ephemeral", "custom_schema_alias",
        "jinja_loop", "reference_data", "seed_input", "source_input", "inferred_inputs",
    )
} | {"shop": ROOT / "examples" / "shop"}

#: Every served path of every project (the test checks the list against the manifest).
ENDPOINTS: dict[str, list[str]] = {
    "row_reference": ["/item_list/", "/item_rows/"],
    "qualified_columns": ["/order_payments/", "/order_summary/"],
    "inner_cte_names": ["/big_orders/", "/customer_totals/"],
    "ephemeral": ["/labelled_totals/"],
    "custom_schema_alias": ["/event_report/"],
    "jinja_loop": ["/sensor_pivot/"],
    "reference_data": ["/order_lines/"],
    "seed_input": ["/key_totals/"],
    "source_input": ["/customer_orders/", "/order_status/"],
    "inferred_inputs": ["/customer_orders/", "/order_status/"],
    "shop": ["/customers/", "/orders/"],
}
CASES = [(name, path) for name, paths in ENDPOINTS.items() for path in paths]
JSON = {"content-type": "application/json"}

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Served:
    """A served model as its YAML declares it: `inputs` as named there, in that order."""

    path: str
    model: str
    unique_id: str
    inputs: tuple[str, ...]


@dataclass(frozen=True)
class Relation:
    """A relation as dbt built it: its columns and its rows as JSON text (to_json)."""

    columns: tuple[str, ...]
    rows: tuple[str, ...]


@dataclass(frozen=True)
class BuiltProject:
    settings: Settings
    manifest: Manifest
    served: dict[str, Served]  # by path
    relations: dict[str, Relation]  # by relation_name: every input and served model


# --- the manifest ------------------------------------------------------------------


def served_models(manifest: Manifest) -> dict[str, Served]:
    """Models with `meta.duckapi`: `inputs: [a, b]`, or `input: a` for one."""
    served = {}
    for node in manifest["nodes"].values():
        meta = (node.get("config", {}).get("meta") or {}).get("duckapi")
        if node["resource_type"] != "model" or not meta:
            continue
        inputs = meta.get("inputs") or [meta["input"]]
        path = "/" + str(meta["path"]).strip("/") + "/"
        served[path] = Served(path, node["name"], node["unique_id"], tuple(str(i) for i in inputs))
    return served


def input_id(manifest: Manifest, name: str) -> str:
    """An input's unique_id: `source_name.table_name` is a source, else a model or seed."""
    if "." in name:
        source_name, table = name.split(".", 1)
        [uid] = [u for u, s in manifest["sources"].items() if (s["source_name"], s["name"]) == (source_name, table)]
        return uid
    [uid] = [u for u, n in manifest["nodes"].items() if n["resource_type"] in ("model", "seed") and n["name"] == name]
    return uid


def node(manifest: Manifest, uid: str) -> dict[str, Any]:
    return manifest["nodes"].get(uid) or manifest["sources"][uid]


def parents(manifest: Manifest, uid: str) -> list[str]:
    return list(node(manifest, uid).get("depends_on", {}).get("nodes", []))


def is_ephemeral(manifest: Manifest, uid: str) -> bool:
    return node(manifest, uid).get("config", {}).get("materialized") == "ephemeral"


def depends_on(manifest: Manifest, uid: str, inputs: frozenset[str]) -> bool:
    return uid in inputs or any(depends_on(manifest, p, inputs) for p in parents(manifest, uid))


def reference_relations(manifest: Manifest, served: Served) -> tuple[set[str], set[str]]:
    """(read, upstream): the relations the served pipeline reads that do not depend on an
    input (through ephemeral models, which have no relation), and every relation upstream
    of the served model that does not depend on an input (what a listing may add)."""
    inputs = frozenset(input_id(manifest, name) for name in served.inputs)
    read: set[str] = set()
    upstream: set[str] = set()

    def reference(uid: str, direct: bool) -> None:
        ephemeral = is_ephemeral(manifest, uid)
        if not ephemeral:
            upstream.add(node(manifest, uid)["relation_name"])
            if direct:
                read.add(node(manifest, uid)["relation_name"])
        for parent in parents(manifest, uid):  # an ephemeral model's parents are read where it is inlined
            reference(parent, direct and ephemeral)

    def walk(uid: str) -> None:
        for parent in parents(manifest, uid):
            if parent in inputs:
                continue
            if depends_on(manifest, parent, inputs):
                walk(parent)
            else:
                reference(parent, True)

    walk(served.unique_id)
    return read, upstream


# --- the build: dbt's answer ----------------------------------------------------------


def read_relation(con: duckdb.DuckDBPyConnection, relation: str) -> Relation:
    columns = tuple(con.sql(f"select * from {relation} limit 0").columns)
    rows = tuple(r[0] for r in con.sql(f"select to_json(t)::varchar from {relation} t").fetchall())
    return Relation(columns, rows)


def relations_to_read(manifest: Manifest, served: dict[str, Served]) -> set[str]:
    names = set()
    for model in served.values():
        names.add(node(manifest, model.unique_id)["relation_name"])
        names.update(node(manifest, input_id(manifest, i))["relation_name"] for i in model.inputs)
    return names


def build_project(name: str, folder: Path) -> BuiltProject:
    """`dbt build` into `folder`, then every input's and served model's rows, read only."""
    settings = settings_in(folder, project_dir=PROJECTS[name])
    manifest = project.build(settings)
    served = served_models(manifest)
    with duckdb.connect(str(settings.db_path), read_only=True) as con:
        relations = {r: read_relation(con, r) for r in relations_to_read(manifest, served)}
    return BuiltProject(settings, manifest, served, relations)


@pytest.fixture(scope="module")
def built_project(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], BuiltProject]:
    """Each project built once for the module, on first use."""
    cache: dict[str, BuiltProject] = {}

    def get(name: str) -> BuiltProject:
        if name not in cache:
            cache[name] = build_project(name, tmp_path_factory.mktemp(name))
        return cache[name]

    return get


@pytest.fixture
def app() -> Iterator[Callable[[BuiltProject], TestClient]]:
    """Starts an in-process app over a built project (after its read-only reads closed)."""
    with contextlib.ExitStack() as started:
        yield lambda built: started.enter_context(TestClient(create_app(built.settings, built.manifest)))


# --- comparing ---------------------------------------------------------------------


def canonical(row: Any) -> str:
    return json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_rows(rows: list[Any]) -> list[str]:
    return sorted(canonical(r) for r in rows)


def input_relation(built: BuiltProject, name: str) -> str:
    return str(node(built.manifest, input_id(built.manifest, name))["relation_name"])


def request_body(built: BuiltProject, served: Served) -> Any:
    """The inputs' rows as dbt built them: an array for one input, else keyed by input name."""
    rows = {name: [json.loads(r) for r in built.relations[input_relation(built, name)].rows] for name in served.inputs}
    return next(iter(rows.values())) if len(rows) == 1 else rows


# --- the tests -----------------------------------------------------------------------


@pytest.mark.parametrize("name, path", CASES, ids=[f"{n}{p}" for n, p in CASES])
def test_the_api_answers_what_dbt_built(
    name: str, path: str, built_project: Callable[[str], BuiltProject], app: Callable[[BuiltProject], TestClient]
) -> None:
    built = built_project(name)
    assert sorted(built.served) == sorted(ENDPOINTS[name])
    served = built.served[path]
    expected = built.relations[node(built.manifest, served.unique_id)["relation_name"]]
    assert expected.rows, f"{served.model} has no rows over the example data: nothing is compared"
    client = app(built)
    response = client.post(path, content=json.dumps(request_body(built, served)), headers=JSON)
    assert response.status_code == 200, response.text
    assert canonical_rows(response.json()) == canonical_rows([json.loads(r) for r in expected.rows])


def column_names(columns: list[Any]) -> list[str]:
    return [c["name"] if isinstance(c, dict) else c for c in columns]


@pytest.mark.parametrize("name", list(PROJECTS))
def test_models_lists_each_endpoints_inputs_and_reference_relations(
    name: str, built_project: Callable[[str], BuiltProject], app: Callable[[BuiltProject], TestClient]
) -> None:
    built = built_project(name)
    response = app(built).get("/models")
    assert response.status_code == 200, response.text
    listing = {entry["path"]: entry for entry in response.json()}
    assert sorted(listing) == sorted(built.served)
    for path, served in built.served.items():
        entry = listing[path]
        assert entry["model"] == served.model
        assert [i["name"] for i in entry["inputs"]] == list(served.inputs)
        for listed in entry["inputs"]:
            relation = built.relations[input_relation(built, listed["name"])]
            assert column_names(listed["columns"]) == list(relation.columns), listed["name"]
        read, upstream = reference_relations(built.manifest, served)
        listed = entry["references"]
        assert all(set(r) == {"name", "kind", "relation"} for r in listed), f"{path}: {listed[:1]}"
        references = {r["relation"] for r in listed}
        assert read <= references, f"{path}: relations read but not listed: {sorted(read - references)}"
        assert references <= upstream, f"{path}: listed but not reference data: {sorted(references - upstream)}"


def test_inputs_without_declared_types_take_the_warehouses(
    built_project: Callable[[str], BuiltProject], app: Callable[[BuiltProject], TestClient]
) -> None:
    """inferred_inputs declares no column types (sources, seeds) and serves a staging view
    without a contract: each input has the columns and types the built warehouse holds
    (DuckDB's `describe`, read here independently), and a not_null data test on a source
    column makes it not-null (a null there is refused naming input, row and field)."""
    built = built_project("inferred_inputs")
    client = app(built)
    listing = {entry["path"]: entry for entry in client.get("/models").json()}
    with duckdb.connect(str(built.settings.db_path), read_only=True) as con:
        for entry in listing.values():
            for listed in entry["inputs"]:
                held = con.execute(f"describe select * from {listed['relation']}").fetchall()
                assert [(c["name"], c["data_type"]) for c in listed["columns"]] == [(r[0], r[1]) for r in held]
    orders = {c["name"]: c for c in listing["/customer_orders/"]["inputs"][0]["columns"]}
    assert orders["id"]["not_null"] is True and orders["status"]["not_null"] is False
    response = client.post("/customer_orders/", json={
        "raw.orders": [{"id": None, "customer_id": 1, "amount_cents": 5, "status": "paid"}],
        "raw.customers": [{"id": 1, "full_name": "Ada"}],
    })
    assert response.status_code == 422, response.text
    assert "raw.orders" in response.text and "id" in response.text


def test_untyped_inputs_on_spark_take_the_duckdb_warehouses_types(
    built_project: Callable[[str], BuiltProject], tmp_path: Path
) -> None:
    """`duckapi run --engine spark` over an input that declares no types (the staging view
    stg_orders) types it as the DuckDB warehouse holds it, mapped to Spark's types: the
    answer is byte-identical to the DuckDB run's, which equals the served answer."""
    from tests.spark_support import require_java

    require_java()
    built = built_project("inferred_inputs")
    source = tmp_path / "stg_orders.csv"
    source.write_text("order_id,customer_id,amount_cents,status\n1,10,500,paid\n2,10,700,paid\n3,11,100,open\n")
    env = {**os.environ, "DUCKAPI_TARGET_PATH": str(tmp_path / "target")}
    answers = {}
    for engine in ("duckdb", "spark"):
        out = tmp_path / f"{engine}.json"
        done = subprocess.run(
            [sys.executable, "-m", "duckapi.cli", "run", "--project", str(built.settings.project_dir), "--db",
             str(built.settings.db_path), "--engine", engine, "--endpoint", "order_status", str(source), "--output", str(out)],
            env=env, capture_output=True, text=True, timeout=600,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        answers[engine] = out.read_bytes()
    assert answers["spark"] == answers["duckdb"]
    assert json.loads(answers["duckdb"]) == [{"status": "open", "orders": 1, "amount_cents": 100},
                                             {"status": "paid", "orders": 2, "amount_cents": 1200}]
