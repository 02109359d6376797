"""Request-settable vars: only those a served model lists under `meta.duckapi.vars`,
compiled one new combination at a time behind a short queue; known ones never wait."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from fastapi.testclient import TestClient

from duckapi.dbt import project
from duckapi.api.app import create_app
from duckapi.pipeline import PipelineError
from duckapi.serving.service import CompileBusy, ProjectState
from tests.conftest import settings_in

FEATURES = Path(__file__).parent / "projects" / "features"
ROWS = [{"k": "a", "v": 1}, {"k": "b", "v": 7}]


@pytest.fixture(scope="module")
def features(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = settings_in(tmp_path_factory.mktemp("safe-vars"), project_dir=FEATURES, vars_compile_queue=1)
    with TestClient(create_app(settings, project.build(settings))) as client:
        yield client


def post(client: TestClient, query: str) -> Any:
    return client.post(f"/features/?select=d1&{query}", content=json.dumps(ROWS), headers={"content-type": "application/json"})


def test_settable_vars_are_listed_with_their_defaults(features: TestClient) -> None:
    (model,) = features.get("/models").json()
    assert model["vars"] == {"min_v": 0, "label": "all"}
    vars_param = next(p for p in features.get("/openapi.json").json()["paths"]["/features/"]["post"]["parameters"]
                      if p["name"] == "vars")
    assert vars_param["content"]["application/json"]["schema"] == {
        "type": "object", "properties": {"min_v": {"type": "number"}, "label": {"type": "string"}},
        "additionalProperties": False,
    }


def test_a_var_not_listed_is_a_422_naming_the_settable_ones(features: TestClient) -> None:
    response = post(features, 'vars={"min_v": 1, "other": 2}')
    assert response.status_code == 422
    assert response.json()["detail"] == "var(s) other cannot be set per request on /features/; settable: min_v, label"


def test_no_settable_vars_means_none_may_be_set(features: TestClient) -> None:
    state: ProjectState = features.app.state.service.state
    served = state.endpoints["/features/"]
    endpoint = served.pipeline.endpoint
    object.__setattr__(endpoint, "vars", ())
    features.app.state.project._described = None  # described per state: this one was changed in place
    try:
        response = post(features, 'vars={"min_v": 1}')
        assert response.status_code == 422 and "settable: none" in response.json()["detail"]
        assert features.get("/models").json()[0]["vars"] == {}
    finally:
        object.__setattr__(endpoint, "vars", ("min_v", "label"))
        features.app.state.project._described = None


def test_a_listed_var_the_project_does_not_declare_stops_start_up(tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "features"
    shutil.copytree(FEATURES, copy, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb"))
    schema = copy / "models" / "schema.yml"
    schema.write_text(schema.read_text().replace("vars: [min_v, label]", "vars: [min_v, nope]"))
    settings = settings_in(tmp_path / "w", project_dir=copy)
    with pytest.raises(PipelineError, match="names nope, which dbt_project.yml does not declare"):
        create_app(settings, project.build(settings))


def test_new_vars_queue_behind_one_compile_and_known_ones_never_wait(features: TestClient) -> None:
    service = features.app.state.service
    assert post(features, 'vars={"min_v": 5}').status_code == 200  # a known variant from now on
    real = service._compile_variant
    release = threading.Event()

    def slow_compile(dbt_vars: dict[str, Any]) -> Any:
        release.wait(30)
        return real(dbt_vars)

    service._compile_variant = slow_compile
    results: dict[int, Any] = {}

    def ask(n: int) -> None:
        try:
            results[n] = service.state_for({"min_v": 100 + n}, "/features/")
        except CompileBusy as exc:
            results[n] = exc

    try:
        threads = [threading.Thread(target=ask, args=(n,)) for n in range(2)]  # one compiling, one waiting
        for thread in threads:
            thread.start()
            time.sleep(0.2)
        # the queue (1 waiting) is full: a third new combination is refused at once, with Retry-After
        started = time.perf_counter()
        busy = post(features, 'vars={"min_v": 200}')
        assert busy.status_code == 503 and int(busy.headers["retry-after"]) >= 1
        assert "retry in" in busy.json()["detail"]
        # a known combination does not wait for the compile under way
        assert post(features, 'vars={"min_v": 5}').status_code == 200
        assert time.perf_counter() - started < 2
    finally:
        release.set()
        for thread in threads:
            thread.join(60)
        service._compile_variant = real
    assert all(isinstance(results[n], ProjectState) for n in range(2))
    assert post(features, 'vars={"min_v": 200}').status_code == 200  # room again


def test_a_failed_variant_is_cached(features: TestClient) -> None:
    service = features.app.state.service
    calls = []
    real = service._compile_variant
    service._compile_variant = lambda v: calls.append(v) or real(v)
    try:
        hostile = json.dumps({"label": "x' || (select 1 from read_csv('/etc/hostname')) || '"})
        assert post(features, f"vars={hostile}").status_code == 422
        assert post(features, f"vars={hostile}").status_code == 422
    finally:
        service._compile_variant = real
    assert len(calls) == 1


def test_vars_reach_dbt_as_the_same_values() -> None:
    """`--vars` is JSON that dbt reads as YAML: astral characters, controls, NEL and
    separators survive it unchanged (YAML has no surrogate pairs and drops a raw NEL)."""
    import yaml

    from duckapi.dbt.project import vars_argument

    value = {"s": ["\U0001F986 x\u0081\u0011\u0085\u2028\x7f\t\n\"'\\", "\ufeffé"], "n": [1, 2.5, None, True]}
    assert yaml.safe_load(vars_argument(value)) == value
