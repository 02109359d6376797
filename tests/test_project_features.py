"""Project-driven behaviour on small dbt projects: selection and pruning, vars,
materialisation, introspection, a project without a seed, and reload."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import duckdb
import pytest
from fastapi.testclient import TestClient

from duckapi.dbt import project
from duckapi.api.app import create_app
from duckapi.settings import BUNDLED_PROJECT
from tests.conftest import settings_in
from tests.oracle import ANIMALS, analyse
from tests.servers import running_server

FEATURES = Path(__file__).parent / "projects" / "features"
ROWS = [{"k": "a", "v": 1}, {"k": "b", "v": 7}, {"k": "a", "v": -3}, {"k": "c", "v": None}, {"k": "b", "v": 10}]


def _copy(source: Path, folder: Path) -> Path:
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb"))
    return folder


@pytest.fixture(scope="module")
def features(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    work = tmp_path_factory.mktemp("features")
    settings = settings_in(work, project_dir=FEATURES)
    manifest = project.build(settings)
    with TestClient(create_app(settings, manifest)) as client:
        yield client


def _post(client: TestClient, url: str, rows: Any) -> Any:
    return client.post(url, content=json.dumps(rows), headers={"content-type": "application/json"})


def test_a_pruned_part_is_never_executed(features: TestClient) -> None:
    everything = _post(features, "/features/", ROWS)
    assert everything.status_code == 422 and "boom: model boom ran" in everything.json()["detail"]
    selected = _post(features, "/features/?select=d1,d2,d3", ROWS)
    assert selected.status_code == 200, selected.text
    (row,) = selected.json()
    assert list(row) == ["d1", "d2", "d3"]
    sql = features.get("/features/sql?select=d1").text
    assert "error(" not in sql and "__dbt__cte__eph" not in sql and "random()" in sql
    assert '"duckapi__d2" as (\nselect cast(null as' in sql  # unselected parts are typed empty relations
    assert "error(" in features.get("/features/sql").text


def test_a_table_model_is_computed_once_per_request(features: TestClient) -> None:
    first = _post(features, "/features/?select=d1,d2,d3", ROWS).json()[0]
    assert first["d1"]["r"] == first["d2"]["r"] == first["d3"]["r"]
    second = _post(features, "/features/?select=d1,d2,d3", ROWS).json()[0]
    assert second["d1"]["r"] != first["d1"]["r"]  # once per request, not once per process
    # the view and ephemeral models between input and table are inlined and still right
    assert first["d1"]["n"] == 3 and first["d3"]["total"] == 18 and first["d2"]["doubled"] == 36


def test_vars_override_per_request_and_variants_are_cached(features: TestClient) -> None:
    base = _post(features, "/features/?select=d1,d3", ROWS).json()[0]
    assert base["d1"]["n"] == 3
    url = '/features/?select=d1,d3&vars={"min_v": 5}'
    high = _post(features, url, ROWS)
    assert high.status_code == 200, high.text
    assert high.json()[0]["d1"]["n"] == 2 and high.json()[0]["d3"]["total"] == 17
    service = features.app.state.service
    variants = len(service._variants)
    started = time.perf_counter()
    assert _post(features, url, ROWS).json()[0]["d1"]["n"] == 2
    assert len(service._variants) == variants and time.perf_counter() - started < 2  # no second dbt compile
    assert _post(features, "/features/?select=d1", ROWS).json()[0]["d1"]["n"] == 3  # defaults untouched


@pytest.mark.parametrize(
    "query,words",
    [('vars={"nope": 1}', "var(s) nope cannot be set per request on /features/; settable: min_v, label"),
     ("vars=[1]", "must be a JSON object"), ('vars={"min_v": "5"}', "var min_v must have the JSON type of its default 0"),
     ('vars={"label": 5}', "var label must have the JSON type"), ("vars={bad", "must be a JSON object"),
     ("select=d1,zzz", "unknown part(s) zzz in select; valid: d1, d2, d3, boom"),
     ("select=", "unknown part(s) '' in select; valid: d1, d2, d3, boom"),
     ("select=d1,", "unknown part(s) '' in select; valid: d1, d2, d3, boom")],
)
def test_bad_vars_and_parts_are_422(features: TestClient, query: str, words: str) -> None:
    response = _post(features, f"/features/?{query}", ROWS)
    assert response.status_code == 422 and words in response.json()["detail"]
    if query.startswith("select="):  # GET /<path>/sql reads ?select= as POST does
        response = features.get(f"/features/sql?{query}")
        assert response.status_code == 422 and words in response.json()["detail"]


def test_a_hostile_var_cannot_reach_files_and_its_failure_is_cached(features: TestClient) -> None:
    assert _post(features, '/features/?select=d1&vars={"label": "east"}', ROWS).json()[0]["d1"]["label"] == "east"
    hostile = "x' || (select count(*) from read_csv('/etc/hostname')) || '"
    url = "/features/?select=d1&vars=" + json.dumps({"label": hostile})
    response = _post(features, url, ROWS)
    assert response.status_code == 422 and "disabled by configuration" in response.json()["detail"]
    assert str(FEATURES) not in response.json()["detail"]  # no server paths in answers
    started = time.perf_counter()
    assert _post(features, url, ROWS).status_code == 422
    assert time.perf_counter() - started < 2  # the failed variant is cached, not recompiled


def test_models_lists_contract_parts_vars_and_materialisations(features: TestClient) -> None:
    (model,) = features.get("/models").json()
    assert model["path"] == "/features/" and model["model"] == "result"
    (events,) = model["inputs"]
    assert events["name"] == "events" and events["relation"].endswith('"main"."events"')
    assert events["columns"] == [
        {"name": "k", "data_type": "varchar", "not_null": True}, {"name": "v", "data_type": "bigint", "not_null": False}
    ]
    assert model["references"] == []
    assert model["parts"] == ["d1", "d2", "d3", "boom"]
    assert model["vars"] == {"min_v": 0, "label": "all"}
    assert model["materialized"]["shared"] == "table" and model["materialized"]["filtered"] == "view"
    assert "eph" not in model["materialized"]  # ephemeral: inlined by dbt into d2


def test_openapi_request_schema_comes_from_the_contract(features: TestClient) -> None:
    document = features.get("/openapi.json").json()
    post = document["paths"]["/features/"]["post"]
    items = post["requestBody"]["content"]["application/json"]["schema"]["items"]
    assert items["required"] == ["k"]
    assert items["properties"]["k"] == {"type": "string"}
    assert items["properties"]["v"] == {"anyOf": [{"type": "integer", "format": "int64"}, {"type": "null"}]}
    assert {p["name"] for p in post["parameters"]} == {"select", "vars"}
    assert "/features/sql" in document["paths"] and "/models" in document["paths"]


def test_nullable_contract_columns_accept_null_and_not_null_ones_do_not(features: TestClient) -> None:
    assert _post(features, "/features/?select=d1", [{"k": "x", "v": None}]).json()[0]["d1"]["n"] == 0
    bad = _post(features, "/features/?select=d1", [{"k": None, "v": 1}])
    assert bad.status_code == 422 and bad.json()["field"] == "k"


def test_bundled_project_builds_and_serves_without_a_seed(tmp_path: Path) -> None:
    folder = _copy(BUNDLED_PROJECT, tmp_path / "seedless")
    shutil.rmtree(folder / "seeds")
    (folder / "tests" / "analysis_matches_expected.sql").unlink()
    (folder / "models" / "group_event_values.sql").write_text("{{ duckapi.no_rows() }}\n")
    settings = settings_in(tmp_path, project_dir=folder)
    manifest = project.build(settings)
    assert not any(uid.startswith("seed.") for uid in manifest["nodes"])
    with TestClient(create_app(settings, manifest)) as client:
        assert client.post("/analyse_data/", json=ANIMALS).json() == analyse(ANIMALS)


def _wait_for(check: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting for the reload"
        time.sleep(0.2)


def test_reload_picks_up_changes_and_survives_a_broken_project(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = _copy(FEATURES, tmp_path / "project")
    settings = replace(settings_in(tmp_path, project_dir=folder), reload=True, reload_interval=0.2)
    project.compile_manifest(settings)
    with TestClient(create_app(settings)) as client:
        assert client.get("/models").json()[0]["parts"] == ["d1", "d2", "d3", "boom"]
        # Tutorial step: a new model, referenced by the served one, becomes a part.
        (folder / "models" / "d4.sql").write_text("select max(v) as top from {{ ref('filtered') }}\n")
        result = (folder / "models" / "result.sql").read_text()
        (folder / "models" / "result.sql").write_text(
            result.replace("as boom", "as boom,\n    (select top from {{ ref('d4') }}) as d4")
        )
        _wait_for(lambda: "d4" in client.get("/models").json()[0]["parts"])
        assert _post(client, "/features/?select=d4", ROWS).json() == [{"d4": 10}]

        # A broken model: the old version keeps serving and the error is logged.
        (folder / "models" / "d4.sql").write_text("select max(v) as top from {{ ref('no_such_model') }}\n")
        _wait_for(lambda: "reload failed" in caplog.text)
        assert _post(client, "/features/?select=d4", ROWS).json() == [{"d4": 10}]
        assert "no_such_model" in caplog.text


def test_serve_refuses_an_untyped_input_missing_from_the_warehouse(tmp_path: Path) -> None:
    """An input with no contract and no data_type takes its types from the warehouse; with
    the warehouse not built (an empty file: serve builds a missing one itself), start-up
    stops naming the input's file and the full command that builds it."""
    folder = _copy(FEATURES, tmp_path / "nocontract")
    schema = folder / "models" / "schema.yml"
    text = schema.read_text().replace("contract: {enforced: true}", "contract: {enforced: false}")
    schema.write_text("\n".join(line for line in text.splitlines() if "data_type:" not in line) + "\n")
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    env = {**os.environ, "DUCKAPI_TARGET_PATH": str(tmp_path / "target"), "DUCKAPI_DB_PATH": str(empty), "PORT": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "duckapi.cli", "serve", "--project", str(folder)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 1
    message = " ".join(done.stderr.split())
    assert "models/events.sql" in message and "declares no type" in message
    assert f"`duckapi build --project {folder}" in message  # the full command for this project


def test_tutorial_new_analysis_appears_after_sighup(tmp_path: Path) -> None:
    """The README tutorial, on a copy of the bundled project, against a real server."""
    folder = _copy(BUNDLED_PROJECT, tmp_path / "project")
    env = {"DUCKAPI_TARGET_PATH": str(tmp_path / "target"), "DUCKAPI_DB_PATH": str(tmp_path / "dev.duckdb")}
    with running_server(["--project", str(folder)], env, tmp_path) as server:
        def parts() -> list[str]:
            try:
                status, body = server.request("GET", "/models", timeout=5)
            except OSError:
                return []
            return json.loads(body)[0]["parts"] if status == 200 else []

        assert "hist_groups" in parts()
        (folder / "models" / "analyses" / "group_max.sql").write_text(
            "select group_id, max(event_value) as max_value\nfrom {{ ref('group_event_values') }}\ngroup by group_id\n"
        )
        analysis = folder / "models" / "analysis.sql"
        analysis.write_text(analysis.read_text().rstrip() + ",\n    {{ duckapi.list_of_structs(ref('group_max'), "
                            "['group_id', 'max_value']) }} as group_max\n")
        assert server.proc is not None
        server.proc.send_signal(signal.SIGHUP)
        _wait_for(lambda: "group_max" in parts())
        status, answer = server.post_rows(ANIMALS)
        assert status == 200 and answer[0]["group_max"] == [
            {"group_id": "🐇", "max_value": 23}, {"group_id": "🐰", "max_value": 5}, {"group_id": "🦆", "max_value": 17}
        ]
        status, body = server.request("POST", "/analyse_data/?select=group_max", json.dumps(ANIMALS).encode(),
                                      {"Content-Type": "application/json"})
        assert status == 200 and list(json.loads(body)[0]) == ["group_max"]
