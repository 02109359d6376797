"""Compiling a dbt manifest into a servable pipeline, and the errors that stop start-up."""

from __future__ import annotations

import copy
import json
import random
from dataclasses import replace
from typing import Any

import pyarrow as pa
import pytest

from duckapi.engines.duckdb import BOUND_ROWS, DuckDBEngine
from duckapi.pipeline import PipelineError, build_pipelines
from duckapi.pipeline.relations import check_input_types
from duckapi.settings import Settings
from tests.conftest import Built
from tests.oracle import analyse
from tests.payloads import random_rows

ANALYSES = [
    "group_sums", "group_sets", "group_event_value_histogram", "group_histogram",
    "hist_event_values", "hist_group_event_values", "hist_groups",
]


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.table(
        {"group_id": pa.array([r["group_id"] for r in rows], pa.string()),
         "event_value": pa.array([r["event_value"] for r in rows], pa.int64())}
    )


def test_bundled_project_compiles_to_one_endpoint(built: Built) -> None:
    pipelines = build_pipelines(built.manifest)
    assert list(pipelines) == ["/analyse_data/"]
    pipeline = pipelines["/analyse_data/"]
    assert pipeline.endpoint.output == "analysis" and pipeline.inputs[0].name == "group_event_values"
    assert [(c.name, c.data_type, c.not_null) for c in pipeline.inputs[0].columns] == [
        ("group_id", "varchar", True), ("event_value", "bigint", True)
    ]
    order = [n.name for n in pipeline.nodes]
    assert sorted(order) == sorted(ANALYSES + ["analysis"])
    assert order[-1] == "analysis"
    assert order.index("group_event_value_histogram") < order.index("hist_group_event_values")
    assert order.index("group_histogram") < order.index("hist_groups")


def test_statement_reads_only_the_request(built: Built) -> None:
    pipeline = build_pipelines(built.manifest)["/analyse_data/"]
    sql = pipeline.select_sql()
    for node in (pipeline.inputs[0].node, *pipeline.nodes):
        assert node.relation_name and node.relation_name not in sql
    assert "example_data" not in sql  # the seed behind the input model is cut off
    assert sql.count("__duckapi_input") == 1


@pytest.mark.parametrize("rows", [0, 9, BOUND_ROWS, BOUND_ROWS + 1, 5000])
def test_engine_runs_the_pipeline_over_arrow_rows(built: Built, rows: int) -> None:
    """Both ways rows reach DuckDB (bound parameters, registered Arrow) give the same answer."""
    pipeline = build_pipelines(built.manifest)["/analyse_data/"]
    data = random_rows(random.Random(rows), rows, groups=12, big=True)
    engine = DuckDBEngine(Settings())
    try:
        assert json.loads(engine.execute_json(pipeline, (_table(data),))) == analyse(data)
        arrow = engine.execute_arrow(pipeline, (_table(data),))
        assert arrow.column_names == ANALYSES
        assert arrow.to_pylist() == analyse(data)
    finally:
        engine.close()


# -- start-up errors, on small hand-made manifests ---------------------------------

def _model(name: str, deps: list[str], sql: str = "select 1", **config: Any) -> dict[str, Any]:
    return {
        "unique_id": f"model.p.{name}", "resource_type": "model", "name": name,
        "relation_name": f'"db"."main"."{name}"', "compiled_code": sql,
        "depends_on": {"nodes": [f"model.p.{d}" for d in deps]},
        "config": {"materialized": "view", **config}, "columns": {},
        "original_file_path": f"models/{name}.sql",
    }


def _manifest() -> dict[str, Any]:
    source = _model("events", [], contract={"enforced": True})
    source["columns"] = {"x": {"name": "x", "data_type": "bigint", "constraints": [{"type": "not_null"}]}}
    out = _model("out", ["events"], 'select sum(x) as s from "db"."main"."events"',
                 meta={"duckapi": {"path": "/out", "input": "events"}})
    return {"nodes": {n["unique_id"]: n for n in (source, out)}}


def test_hand_made_manifest_compiles_and_runs() -> None:
    pipeline = build_pipelines(_manifest())["/out/"]
    engine = DuckDBEngine(Settings())
    try:
        assert json.loads(engine.execute_json(pipeline, (pa.table({"x": pa.array([1, 2, 3], pa.int64())}),))) == [{"s": 6}]
    finally:
        engine.close()


def test_no_served_model_names_the_convention() -> None:
    manifest = _manifest()
    del manifest["nodes"]["model.p.out"]["config"]["meta"]
    with pytest.raises(PipelineError, match=r"no served model.*meta"):
        build_pipelines(manifest)


def test_input_without_types_takes_the_warehouses() -> None:
    """An input with no contract and no data_type reads its columns and types from the
    warehouse (not_null from its YAML); missing from the warehouse, start-up names it and
    says how to build it; a declared type the warehouse holds otherwise names both."""
    manifest = _manifest()
    events = manifest["nodes"]["model.p.events"]
    events["config"]["contract"] = {"enforced": False}
    del events["columns"]["x"]["data_type"]
    held = {'"db"."main"."events"': [("x", "BIGINT"), ("note", "VARCHAR")]}
    [item] = build_pipelines(manifest, warehouse=held.get)["/out/"].inputs
    assert [(c.name, c.data_type, c.not_null) for c in item.columns] == [("x", "BIGINT", True), ("note", "VARCHAR", False)]
    with pytest.raises(PipelineError, match=r"models/events\.sql.*no type for x.*no relation \"db\"\.\"main\"\.\"events\".*duckapi build"):
        build_pipelines(manifest, warehouse=lambda relation: None)
    events["columns"]["x"]["data_type"] = "varchar(10)"
    with pytest.raises(PipelineError, match=r"column x is declared varchar\(10\) but the warehouse holds it as BIGINT"):
        build_pipelines(manifest, warehouse=held.get)
    events["columns"]["x"]["data_type"] = "int8"  # bigint by another name: agrees
    assert build_pipelines(manifest, warehouse=held.get)["/out/"].inputs[0].columns[0].data_type == "int8"
    held['"db"."main"."events"'] = [("x", "DECIMAL(18,3)")]
    del events["columns"]["x"]["data_type"]
    check_input_types(build_pipelines(manifest, warehouse=held.get)["/out/"].inputs)  # taken exactly
    held['"db"."main"."events"'] = [("x", "INTERVAL")]
    inputs = build_pipelines(manifest, warehouse=held.get)["/out/"].inputs  # a unit test takes any type
    with pytest.raises(PipelineError, match=r"input events column x: type INTERVAL \(INTERVAL\) is not one duckapi takes"):
        check_input_types(inputs)  # a served input only the types requests can carry


def test_cycle_is_reported_with_files() -> None:
    manifest = _manifest()
    nodes = manifest["nodes"]
    nodes["model.p.a"] = _model("a", ["b", "events"])
    nodes["model.p.b"] = _model("b", ["a"])
    nodes["model.p.out"]["depends_on"]["nodes"].append("model.p.a")
    with pytest.raises(PipelineError, match=r"cycle.*models/a\.sql"):
        build_pipelines(manifest)


def test_output_that_ignores_its_input_is_rejected() -> None:
    manifest = _manifest()
    manifest["nodes"]["model.p.out"]["depends_on"]["nodes"] = []
    with pytest.raises(PipelineError, match=r"models/out\.sql.*does not depend"):
        build_pipelines(manifest)


def test_uncompiled_model_is_rejected() -> None:
    manifest = copy.deepcopy(_manifest())
    manifest["nodes"]["model.p.out"]["compiled_code"] = None
    with pytest.raises(PipelineError, match=r"models/out\.sql.*no compiled SQL"):
        build_pipelines(manifest)


def test_non_finite_doubles_become_null_so_the_answer_stays_json() -> None:
    manifest = _manifest()
    manifest["nodes"]["model.p.out"]["compiled_code"] = (
        "select max(x)::double * 1e308 as big, -max(x)::double * 1e308 as small, "
        "'NaN and Infinity' as text, max(x) as x from \"db\".\"main\".\"events\""
    )
    pipeline = build_pipelines(manifest)["/out/"]
    engine = DuckDBEngine(Settings())
    try:
        answer = engine.execute_json(pipeline, (pa.table({"x": pa.array([10], pa.int64())}),))
    finally:
        engine.close()
    assert json.loads(answer) == [{"big": None, "small": None, "text": "NaN and Infinity", "x": 10}]


def test_only_a_model_that_returns_at_most_one_row_skips_the_sort(built: Built) -> None:
    engine = DuckDBEngine(Settings())
    try:
        analysis = build_pipelines(built.manifest)["/analyse_data/"]
        assert engine.at_most_one_row(analysis)  # a collation: one SELECT without FROM
        hand_made = build_pipelines(_manifest())["/out/"]
        assert not engine.at_most_one_row(hand_made)  # reads a relation: any number of rows
        unnested = copy.deepcopy(_manifest())
        unnested["nodes"]["model.p.out"]["compiled_code"] = "select unnest([1, 2]) as s"
        assert not engine.at_most_one_row(build_pipelines(unnested)["/out/"])
    finally:
        engine.close()
    assert "order by o" in hand_made.select_sql() and "order by o" not in replace(analysis, single_row=True).select_sql()
