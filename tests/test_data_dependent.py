"""Data-dependent models (their SQL rendered from the data by run_query while dbt
compiles) answer what dbt computes over the request's rows: dbt's own build is the oracle.

tests/projects/data_dependent/ renders a pivot over a column's distinct values, a scalar
used as a literal, such a model in the middle of a pipeline, two stacked, and one that
reads only reference data while rendering. For a list of rows, a copy of the project
whose seed holds exactly those rows is built by `dbt build`; posting those rows to the
project served from the default seed must answer each served model's rows as that build
computed them (in duckapi's order: ascending by columns, left to right), with the same
columns in the same order. Where dbt's build over the rows fails, duckapi refuses them
with dbt's message.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import duckdb
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

import duckapi
from duckapi.dbt import project
from duckapi.api.app import create_app
from duckapi.api.outputs import MEDIA_TYPES
from duckapi.errors import ProjectError, RequestError
from duckapi.serving.rendering import Renderings
from tests.conftest import settings_in
from tests.spark_support import require_java

PROJECT = Path(__file__).resolve().parent / "projects" / "data_dependent"
PATHS = [
    "/group_pivot/", "/above_max_threshold/", "/pivot_summary/", "/top_pivot/", "/by_reference_threshold/", "/pivot_star/",
    "/events_star/",
]
MODELS = [p.strip("/") for p in PATHS]

Rows = tuple[tuple[str, int], ...]


def seed_rows() -> Rows:
    with (PROJECT / "seeds" / "example_events.csv").open(newline="") as f:
        return tuple((r["group_id"], int(r["event_value"])) for r in csv.DictReader(f))


DEFAULT = seed_rows()
#: Other groups than the seed's (other pivot columns), another maximum and average.
OTHER: Rows = (("x", 7), ("x", 9), ("y", 1), ("y", 2), ("z", 30), ("b", 4))
#: The seed's groups with other values: group_pivot's rendering query gives what it gives
#: over the seed, so its variant is reused, and must still answer dbt's rows.
SAME_GROUPS: Rows = (("d", 3), ("a", 100), ("b", 1), ("c", 2), ("d", 3))
#: Values that need quoting as string literals and as column names (the top groups too),
#: and names DuckDB takes as the same column ("A" and "a": the second is renamed a_1).
QUOTED: Rows = (
    ("it's", 5), ('say "hi"', 6), ("two\nlines", 7), ("a", 1), ("it's", 1), ("A", 2), ("a\\b", 1), ("ü🦆", 3),
)
EMPTY: Rows = ()
#: More rows than duckapi binds as parameters (engines/duckdb.py BOUND_ROWS): a registered table.
MANY: Rows = tuple((f"g{i % 7}", i * (i % 3)) for i in range(300))


def as_dicts(rows: Rows) -> list[dict[str, Any]]:
    return [{"group_id": g, "event_value": v} for g, v in rows]


def copy_project(folder: Path, rows: Rows) -> Path:
    """The project in `folder`, its seed holding exactly `rows` (the package's symlink
    copied as the folder it points to)."""
    target = folder / "data_dependent"
    shutil.copytree(PROJECT, target, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb*", ".user.yml"))
    with (target / "seeds" / "example_events.csv").open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["group_id", "event_value"])
        writer.writerows(rows)
    return target


def ordered(answer: list[dict[str, Any]]) -> list[list[tuple[str, Any]]]:
    """Rows with their columns in order (dict equality would ignore it)."""
    return [list(row.items()) for row in answer]


@dataclass(frozen=True)
class Oracle:
    """What `dbt build` over some rows gave: each served model's rows (JSON objects in
    duckapi's order), for the models it built, and its error if it failed."""

    answers: dict[str, list[dict[str, Any]]]
    error: str | None
    manifest: dict[str, Any]


def read_build(db_path: Path, manifest: dict[str, Any], rows: Rows, error: str | None) -> Oracle:
    relations = {n["name"]: n["relation_name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    answers = {}
    with duckdb.connect(str(db_path), read_only=True) as con:
        # The seed round trip kept the rows exactly (quotes and newlines included).
        events = con.sql(f"select group_id, event_value from {relations['events']}").fetchall()
        assert sorted(events) == sorted(rows)
        built = {r[0] for r in con.sql("select table_name from information_schema.tables").fetchall()}
        for model in MODELS:
            if model in built:
                text = con.sql(f"select to_json(o)::varchar from {relations[model]} as o order by o").fetchall()
                answers[model] = [json.loads(t) for (t,) in text]
    return Oracle(answers, error, manifest)


def build_over(folder: Path, rows: Rows) -> Oracle:
    settings = settings_in(folder, project_dir=copy_project(folder, rows))
    error = None
    try:
        manifest = project.build(settings)
    except ProjectError as exc:  # some models failed over these rows: the others are built
        error = str(exc)
        manifest = project.load_manifest(settings)
    return read_build(settings.db_path, manifest, rows, error)


@dataclass
class Served:
    client: TestClient
    settings: Any
    manifest: dict[str, Any]

    def post(self, path: str, rows: Rows) -> Any:
        return self.client.post(path, json=as_dicts(rows))

    def answer(self, path: str, rows: Rows) -> list[dict[str, Any]]:
        response = self.post(path, rows)
        assert response.status_code == 200, response.text
        return response.json()

    def renderings(self, path: str) -> Renderings:
        renderings = self.client.app.state.service.state.endpoints[path].renderings
        assert renderings is not None, f"{path} is not data-dependent"
        return renderings

    @property
    def project(self) -> duckapi.Project:
        return self.client.app.state.project


@pytest.fixture(scope="module")
def oracles() -> dict[Rows, Oracle]:
    """dbt's builds, one per distinct row set (every served model at once), on first use."""
    return {}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, oracles: dict[Rows, Oracle]) -> Iterator[Served]:
    """The project built from its seed and served in-process; that build is also dbt's
    answer over the seed's rows."""
    folder = tmp_path_factory.mktemp("served")
    settings = settings_in(folder, project_dir=copy_project(folder, DEFAULT))
    manifest = project.build(settings)
    oracles[DEFAULT] = read_build(settings.db_path, manifest, DEFAULT, None)
    with TestClient(create_app(settings, manifest)) as client:
        yield Served(client, settings, manifest)


@pytest.fixture(scope="module")
def dbt_over(tmp_path_factory: pytest.TempPathFactory, oracles: dict[Rows, Oracle], served: Served) -> Callable[[Rows], Oracle]:
    def get(rows: Rows) -> Oracle:
        if rows not in oracles:
            oracles[rows] = build_over(tmp_path_factory.mktemp("oracle"), rows)
        return oracles[rows]

    return get


def check(served: Served, oracle: Oracle, path: str, rows: Rows) -> list[dict[str, Any]]:
    model = path.strip("/")
    assert model in oracle.answers, f"dbt did not build {model}: {oracle.error}"
    answer = served.answer(path, rows)
    assert ordered(answer) == ordered(oracle.answers[model])
    return answer


# --- answers equal dbt's --------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
def test_seed_rows_answer_as_dbt_built(served: Served, dbt_over: Callable[[Rows], Oracle], path: str) -> None:
    check(served, dbt_over(DEFAULT), path, DEFAULT)


def test_pivot_columns_follow_the_rows(served: Served, dbt_over: Callable[[Rows], Oracle]) -> None:
    seed = check(served, dbt_over(DEFAULT), "/group_pivot/", DEFAULT)
    other = check(served, dbt_over(OTHER), "/group_pivot/", OTHER)
    assert list(seed[0]) == ["a", "b", "c", "d"]
    assert other == [{"b": 4, "x": 16, "y": 3, "z": 30}]
    # The Arrow answer has the columns rendered for these rows too.
    response = served.client.post("/group_pivot/", json=as_dicts(OTHER), headers={"accept": MEDIA_TYPES["arrow"]})
    assert response.status_code == 200, response.text
    table = pa.ipc.open_stream(response.content).read_all()
    assert table.column_names == ["b", "x", "y", "z"] and table.to_pylist() == other
    # Each rendered variant is other SQL: its answers carry a digest of their own.
    seed_digest = served.client.post("/group_pivot/", json=as_dicts(DEFAULT)).headers["duckapi-project"]
    assert response.headers["duckapi-project"] != seed_digest
    assert served.project.run("/group_pivot/", as_dicts(OTHER)).project_digest == response.headers["duckapi-project"]


def test_many_rows(served: Served, dbt_over: Callable[[Rows], Oracle]) -> None:
    oracle = dbt_over(MANY)
    assert len(check(served, oracle, "/group_pivot/", MANY)[0]) == 7
    check(served, oracle, "/top_pivot/", MANY)


def test_scalar_rendered_as_literal(served: Served, dbt_over: Callable[[Rows], Oracle]) -> None:
    assert check(served, dbt_over(DEFAULT), "/above_max_threshold/", DEFAULT) == [
        {"group_id": "c", "event_value": 10, "largest_value": 10}
    ]
    assert check(served, dbt_over(OTHER), "/above_max_threshold/", OTHER) == [
        {"group_id": "z", "event_value": 30, "largest_value": 30}
    ]


def test_data_dependent_model_in_the_middle(served: Served, dbt_over: Callable[[Rows], Oracle]) -> None:
    answer = check(served, dbt_over(OTHER), "/pivot_summary/", OTHER)
    assert list(answer[0]) == [
        "group_id", "value_1", "value_2", "value_4", "value_7", "value_9", "value_30", "total", "marker",
    ]


def test_stacked_data_dependent_models(served: Served, dbt_over: Callable[[Rows], Oracle]) -> None:
    # The average total (13.25 here, 7 over the seed) picks the top groups, which are the columns.
    assert check(served, dbt_over(DEFAULT), "/top_pivot/", DEFAULT) == [{"a": 8, "c": 11, "top_group_count": 2}]
    assert check(served, dbt_over(OTHER), "/top_pivot/", OTHER) == [{"x": 16, "z": 30, "top_group_count": 2}]


def test_values_needing_quotes(served: Served, dbt_over: Callable[[Rows], Oracle]) -> None:
    oracle = dbt_over(QUOTED)
    pivot = check(served, oracle, "/group_pivot/", QUOTED)
    assert list(pivot[0]) == ["A", "a_1", "a\\b", "it's", 'say "hi"', "two\nlines", "ü🦆"]
    top = check(served, oracle, "/top_pivot/", QUOTED)
    assert list(top[0]) == ["it's", 'say "hi"', "two\nlines", "top_group_count"]


# --- known keys: no dbt call ------------------------------------------------------------


def test_rows_seen_before_reuse_the_rendering(served: Served, dbt_over: Callable[[Rows], Oracle]) -> None:
    for path in PATHS:
        served.answer(path, DEFAULT)  # rendered by now, whatever ran before
    renderings = {path: served.renderings(path) for path in PATHS if path not in ("/by_reference_threshold/", "/events_star/")}
    before = {path: (r.renders, r.hits) for path, r in renderings.items()}
    for path in PATHS:
        check(served, dbt_over(DEFAULT), path, DEFAULT)
    for path, r in renderings.items():
        assert (r.renders, r.hits) == (before[path][0], before[path][1] + 1), path
    # Other rows whose rendering queries give what the seed's gave: the seed's variant,
    # with no dbt call, answering these rows as dbt does.
    pivot = renderings["/group_pivot/"]
    renders, hits = pivot.renders, pivot.hits
    check(served, dbt_over(SAME_GROUPS), "/group_pivot/", SAME_GROUPS)
    assert (pivot.renders, pivot.hits) == (renders, hits + 1)
    # The same through the Python API (the same project as the app's).
    assert json.loads(served.project.run("group_pivot", as_dicts(SAME_GROUPS)).json) == dbt_over(SAME_GROUPS).answers[
        "group_pivot"
    ]
    assert (pivot.renders, pivot.hits) == (renders, hits + 2)


def test_a_distinct_probe_is_keyed_by_the_set_of_values(served: Served, dbt_over: Callable[[Rows], Oracle]) -> None:
    """group_pivot's query is `select distinct group_id from events order by group_id`:
    keyed by the set of group_ids without a statement, the same for 300 rows (an Arrow
    table) and for 7 rows with the same groups (Python lists), and for rows with the
    same groups in another order."""
    [probe] = served.renderings("/group_pivot/").base.introspection.probes
    assert probe.distinct == (0, "group_id")
    assert served.renderings("/top_pivot/").base.introspection.probes[0].distinct is None  # avg(): a statement
    check(served, dbt_over(MANY), "/group_pivot/", MANY)
    pivot = served.renderings("/group_pivot/")
    renders, hits = pivot.renders, pivot.hits
    few: Rows = tuple((f"g{i}", i) for i in reversed(range(7)))
    check(served, dbt_over(few), "/group_pivot/", few)
    assert (pivot.renders, pivot.hits) == (renders, hits + 1)


def test_new_keys_queue_then_answer_503(served: Served) -> None:
    """New keys render one at a time behind a short queue: with no room to wait
    (DUCKAPI_VARS_COMPILE_QUEUE=0), requests for other new keys while one renders are
    answered 503 with Retry-After, and the one rendering is answered."""
    settings = replace(served.settings, vars_compile_queue=0)
    with TestClient(create_app(settings, served.manifest)) as client:
        bodies = [as_dicts(((f"queued{i}", i + 1),)) for i in range(3)]
        with ThreadPoolExecutor(3) as pool:
            responses = list(pool.map(lambda body: client.post("/group_pivot/", json=body), bodies))
        statuses = sorted(r.status_code for r in responses)
        assert statuses[0] == 200 and statuses[-1] == 503, [r.text for r in responses]
        for body, response in zip(bodies, responses):
            if response.status_code == 503:
                assert int(response.headers["retry-after"]) >= 1 and "renderings over new data" in response.text
            else:
                [(group, value)] = [(r["group_id"], r["event_value"]) for r in body]
                assert response.json() == [{group: value}]
        # Once the worker is free, a refused key renders like any other.
        refused = next(b for b, r in zip(bodies, responses) if r.status_code == 503)
        again = client.post("/group_pivot/", json=refused)
        assert again.status_code == 200 and again.json() == [{refused[0]["group_id"]: refused[0]["event_value"]}]


def test_a_rendering_over_the_size_limit_is_refused(served: Served) -> None:
    """Rendered SQL is data turned into SQL text: too many distinct values make more of
    it than DUCKAPI_MAX_RENDERED_SQL_BYTES allows, and the request is refused (422 naming
    the limit); the same request under the limit is answered."""
    rows = tuple((f"group{i:03}", i) for i in range(40))
    limit = replace(served.settings, max_rendered_sql_bytes=2_000)
    with TestClient(create_app(limit, served.manifest)) as client:
        response = client.post("/group_pivot/", json=as_dicts(rows))
        assert response.status_code == 422, response.text
        assert "DUCKAPI_MAX_RENDERED_SQL_BYTES" in response.text and "2,000" in response.text
        assert client.post("/group_pivot/", json=as_dicts(rows[:2])).json() == [{"group000": 0, "group001": 1}]
    assert served.answer("/group_pivot/", rows) == [{g: v for g, v in rows}]


def test_request_vars_render_with_the_data(served: Served, tmp_path: Path) -> None:
    """A var set per request (`?vars=`) is rendered together with the data: the answer is
    what `dbt build --vars` computes over the same rows."""
    settings = settings_in(tmp_path, project_dir=copy_project(tmp_path, OTHER))
    project.run_dbt(settings, "build", ["--vars", json.dumps({"average_share": 0.2})])
    expected = read_build(settings.db_path, project.load_manifest(settings), OTHER, None).answers["top_pivot"]
    response = served.client.post('/top_pivot/?vars={"average_share": 0.2}', json=as_dicts(OTHER))
    assert response.status_code == 200, response.text
    assert ordered(response.json()) == ordered(expected)
    # A fifth of the average lets in more groups than the default does over the same rows.
    assert len(expected[0]) > len(served.answer("/top_pivot/", OTHER)[0])


# --- no rows ------------------------------------------------------------------------


def test_no_rows(served: Served, dbt_over: Callable[[Rows], Oracle]) -> None:
    oracle = dbt_over(EMPTY)
    # dbt cannot build the pivot over no rows (no columns); the others it builds.
    assert oracle.error is not None and "group_pivot" in oracle.error
    assert "SELECT clause without selection list" in oracle.error
    assert "group_pivot" not in oracle.answers
    assert check(served, oracle, "/above_max_threshold/", EMPTY) == []
    assert check(served, oracle, "/pivot_summary/", EMPTY) == []
    assert check(served, oracle, "/top_pivot/", EMPTY) == [{"top_group_count": 0}]
    assert check(served, oracle, "/by_reference_threshold/", EMPTY) == []
    # duckapi refuses them with dbt's message, over HTTP and in the Python API, and the
    # failure is kept for its key: no second dbt call.
    renderings = served.renderings("/group_pivot/")
    response = served.post("/group_pivot/", EMPTY)
    assert response.status_code == 422, response.text
    detail = response.text
    assert "dbt cannot render group_pivot" in detail and "SELECT clause without selection list" in detail
    # An error from a pipeline says where it came from too (the compiled SQL it rendered from).
    assert response.headers["duckapi-project"] and response.headers["duckapi-data-version"] != "none"
    renders = renderings.renders
    with pytest.raises(RequestError, match="dbt cannot render group_pivot") as refused:
        served.project.run("/group_pivot/", []).json
    assert "SELECT clause without selection list" in str(refused.value)
    assert renderings.renders == renders


# --- reference data only: not data-dependent ----------------------------------------------


def test_reference_data_only_is_not_data_dependent(served: Served, dbt_over: Callable[[Rows], Oracle]) -> None:
    endpoint = served.client.app.state.service.state.endpoints["/by_reference_threshold/"]
    assert endpoint.renderings is None
    assert not endpoint.pipeline.introspection.dependent
    assert served.project.endpoints["/by_reference_threshold/"].to_dict()["data_dependent"] == {}
    # Its compiled SQL has the seed's threshold; every request runs it, no dbt call.
    answer = check(served, dbt_over(OTHER), "/by_reference_threshold/", OTHER)
    assert [r["is_big"] for r in answer] == [True, True, True, False, False, True]
    assert endpoint.renderings is None
    sql = served.client.get("/by_reference_threshold/sql").text
    assert "Data-dependent" not in sql and ">= 4" in sql


def test_star_over_a_data_dependent_model_follows_its_columns(served: Served, dbt_over: Callable[[Rows], Oracle]) -> None:
    """star() reads a relation's columns while rendering (dbt-duckdb describes it): over the
    pivot, whose columns are the data's groups, the model is data-dependent and answers
    dbt's columns for each request; over the input, whose columns never change, it is not."""
    listed = {e["path"]: e["data_dependent"] for e in served.client.get("/models").json()}
    assert list(listed["/pivot_star/"]) == ["group_pivot", "pivot_star"]
    assert listed["/pivot_star/"]["pivot_star"] == []  # no query over rows: it describes the pivot
    assert listed["/events_star/"] == {}
    assert served.client.app.state.service.state.endpoints["/events_star/"].renderings is None
    answer = check(served, dbt_over(OTHER), "/pivot_star/", OTHER)
    assert list(answer[0]) == ["b", "x", "y", "z", "marker"]
    check(served, dbt_over(OTHER), "/events_star/", OTHER)
    # star() quotes names without escaping them (as dbt_utils.star does): over a group with a
    # double quote dbt's own build fails, and so does duckapi, with dbt's message.
    oracle = dbt_over(QUOTED)
    assert "pivot_star" not in oracle.answers and "zero-length delimited identifier" in (oracle.error or "")
    response = served.post("/pivot_star/", QUOTED)
    assert response.status_code == 422, response.text
    assert "dbt cannot render pivot_star" in response.text and "zero-length delimited identifier" in response.text


# --- description ------------------------------------------------------------------------


def test_models_lists_data_dependent_models(served: Served) -> None:
    response = served.client.get("/models")
    assert response.status_code == 200
    listed = {e["path"]: e["data_dependent"] for e in response.json()}
    assert listed["/by_reference_threshold/"] == {}

    [query] = listed["/group_pivot/"]["group_pivot"]
    assert "select distinct group_id" in query and "events" in query
    assert list(listed["/group_pivot/"]) == ["group_pivot"]

    [query] = listed["/above_max_threshold/"]["above_max_threshold"]
    assert "max(event_value)" in query and "events" in query

    # The model in the middle is data-dependent; the one downstream of it has no query of its own.
    assert list(listed["/pivot_summary/"]) == ["pivot_mid"]
    [query] = listed["/pivot_summary/"]["pivot_mid"]
    assert "select distinct event_value" in query

    assert list(listed["/top_pivot/"]) == ["top_groups", "top_pivot"]
    [average] = listed["/top_pivot/"]["top_groups"]
    assert "avg(total)" in average and "events" in average
    [groups] = listed["/top_pivot/"]["top_pivot"]
    assert "select distinct group_id" in groups and "top_groups" in groups

    assert served.project.endpoints["/top_pivot/"].to_dict()["data_dependent"] == listed["/top_pivot/"]

    openapi = served.client.get("/openapi.json").json()["paths"]
    assert "Data-dependent: dbt renders `top_groups`, `top_pivot`" in openapi["/top_pivot/"]["post"]["description"]
    assert "Data-dependent" not in openapi["/by_reference_threshold/"]["post"]["description"]


def test_sql_names_the_data_dependent_models(served: Served) -> None:
    response = served.client.get("/group_pivot/sql")
    assert response.status_code == 200, response.text
    lines = response.text.splitlines()
    assert lines[0].startswith("-- Data-dependent:")
    assert any(line.startswith("-- group_pivot: ") and "select distinct group_id" in line for line in lines)
    summary = served.client.get("/pivot_summary/sql").text
    assert summary.startswith("-- Data-dependent:") and "-- pivot_mid: " in summary


@pytest.mark.parametrize("path", ["/group_pivot/", "/pivot_summary/", "/top_pivot/"])
def test_parts_selection_is_refused(served: Served, path: str) -> None:
    response = served.client.post(path + "?select=events", json=as_dicts(DEFAULT))
    assert response.status_code == 422, response.text
    assert "data-dependent" in response.text
    assert served.client.get(path + "sql?select=events").status_code == 422


def test_off_refuses_at_start_up(served: Served) -> None:
    settings = replace(served.settings, data_dependent="off")
    with pytest.raises(ProjectError) as refused:  # PipelineError is a ProjectError
        duckapi.Project(settings, served.manifest)
    message = str(refused.value)
    for model in ("group_pivot", "above_max_threshold", "pivot_mid", "top_groups", "top_pivot", "pivot_star"):
        assert model in message
    assert "DUCKAPI_DATA_DEPENDENT=off" in message
    assert "by_reference_threshold" not in message and "events_star" not in message


# --- batch: `duckapi run` on DuckDB and on Spark ------------------------------------------

#: A file's rows for the batch runs: groups the served project never saw, one needing quotes.
BATCH: Rows = (("zz", 3), ("yy", 7), ("zz", 4), ("o'k", 2))


def duckapi_run(served: Served, folder: Path, engine: str, endpoint: str) -> bytes:
    """`duckapi run` as a user runs it, in a process of its own, over a CSV of BATCH."""
    source = folder / "events.csv"
    with source.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["group_id", "event_value"])
        writer.writerows(BATCH)
    out = folder / f"{engine}-{endpoint}.json"
    env = {**os.environ, "DUCKAPI_TARGET_PATH": str(folder / f"target-{engine}")}
    result = subprocess.run(
        [sys.executable, "-m", "duckapi.cli", "run", "--project", str(served.settings.project_dir), "--db",
         str(served.settings.db_path), "--engine", engine, "--endpoint", endpoint, str(source), "--output", str(out)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out.read_bytes()


@pytest.mark.parametrize("endpoint", ["group_pivot", "top_pivot"])
def test_batch_renders_over_the_files_on_duckdb_and_spark(
    served: Served, dbt_over: Callable[[Rows], Oracle], tmp_path: Path, endpoint: str,
) -> None:
    """The run's own rows decide the SQL: dbt's answer over them on DuckDB, and for the
    stacked pair of data-dependent models Spark's bytes equal DuckDB's."""
    on_duckdb = duckapi_run(served, tmp_path, "duckdb", endpoint)
    assert ordered(json.loads(on_duckdb)) == ordered(dbt_over(BATCH).answers[endpoint])
    if endpoint == "top_pivot":  # Spark once (a JVM and a dbt-spark run cost ~35 s): the stacked pair
        require_java()
        assert duckapi_run(served, tmp_path, "spark", endpoint) == on_duckdb


# --- `duckapi test`: a unit test of a data-dependent model ----------------------------------


def test_unit_test_renders_over_its_given_rows(dbt_over: Callable[[Rows], Oracle], tmp_path: Path) -> None:
    """A unit test of the pivot, given rows whose groups the warehouse never held, passes
    when it expects dbt's build over those rows (rendered over them, not the warehouse's)
    and fails when it expects the pivot of the warehouse's own groups."""
    expected = dbt_over(OTHER).answers["group_pivot"]
    stale = dbt_over(DEFAULT).answers["group_pivot"]
    folder = copy_project(tmp_path, DEFAULT)
    tests = [{"name": name, "model": "group_pivot", "given": [{"input": "ref('events')", "rows": as_dicts(OTHER)}],
              "expect": {"rows": rows}}
             for name, rows in (("pivot_of_the_given_groups", expected), ("pivot_of_the_warehouse_groups", stale))]
    (folder / "models" / "unit_tests.yml").write_text(json.dumps({"unit_tests": tests}))  # JSON is YAML
    settings = settings_in(tmp_path, project_dir=folder)
    project.run_dbt(settings, "build", ["--exclude-resource-type", "unit_test"])
    junit = tmp_path / "junit.xml"
    done = subprocess.run(
        [sys.executable, "-m", "duckapi.cli", "test", "--project", str(folder), "--db", str(settings.db_path),
         "--select", "group_pivot", "--junit-xml", str(junit)],
        env={**os.environ, "DUCKAPI_TARGET_PATH": str(tmp_path / "duckapi-target")}, capture_output=True, text=True,
        timeout=600,
    )
    assert done.returncode == 1 and done.stdout.splitlines()[-1] == "1 passed, 1 failed", done.stdout + done.stderr
    assert "PASS duckdb group_pivot.pivot_of_the_given_groups" in done.stdout
    assert "FAIL duckdb group_pivot.pivot_of_the_warehouse_groups" in done.stdout
